/**
 * Error codes of the descriptor XML layer (`OVF_XML_…`), shared by the OVF, libvirt and
 * virt-image readers. Every error names the source file, and the line and/or element path.
 */
import { defineErrorCodes, IntercloudError } from '../errors/index.js';

/** Every code the XML layer raises. */
export const XML_ERRORS = defineErrorCodes('ovf', {
  OVF_XML_TOO_LARGE: { doc: 'a descriptor is larger than the size cap', retryable: false },
  OVF_XML_ENCODING: { doc: 'a descriptor is not valid utf-8 text (binary bytes, nul or control characters)', retryable: false },
  OVF_XML_DOCTYPE: { doc: 'a descriptor has a doctype or entity declaration (refused: xxe, entity expansion, external dtd)', retryable: false },
  OVF_XML_TOO_DEEP: { doc: 'a descriptor nests elements deeper than the depth limit', retryable: false },
  OVF_XML_MALFORMED: { doc: 'a descriptor is not well-formed xml (bad tag, junk after the root, unknown entity)', retryable: false },
  OVF_XML_UNBOUND_PREFIX: { doc: 'an element or attribute uses a namespace prefix that is not declared', retryable: false },
});

/** An XML-layer error code. */
export type XmlErrorCode = keyof typeof XML_ERRORS;

/** Where in a descriptor a problem is. */
export interface XmlLocation {
  /** The file (or other source label) the text came from. */
  readonly source: string;
  /** 1-based line, when known. */
  readonly line?: number;
  /** 1-based column, when known. */
  readonly column?: number;
  /** Element path such as `Envelope/VirtualSystem[1]/Item[3]`, when known. */
  readonly element?: string;
}

/**
 * A descriptor error: `<source>:<line>[:<col>] <element>: <problem>` with the location in
 * `details` (`source`, `line`, `column`, `element`, `problem`).
 */
export function locatedError<C extends string>(code: C, at: XmlLocation, problem: string, cause?: unknown): IntercloudError<C> {
  const where = `'${at.source}'${at.line !== undefined ? ` line ${at.line}${at.column !== undefined ? ` column ${at.column}` : ''}` : ''}${at.element !== undefined ? ` element '${at.element}'` : ''}`;
  return new IntercloudError(code, `${where}: ${problem}`, {
    cause,
    details: { source: at.source, line: at.line, column: at.column, element: at.element, problem },
  });
}
