/**
 * Hostile-input guard and well-formedness check run on descriptor text before any XML parser sees
 * it: a size cap, strict UTF-8 with no binary/control characters, no DOCTYPE or ENTITY
 * declarations (so no external entities, no entity expansion, no external DTD — XML 1.0 §2.8,
 * §4.2), start tags of a name and quoted unique attributes, end tags matching their start tags,
 * one root element, and a nesting-depth limit. It also records the line of every start tag in document order, which the
 * tree builder uses to give elements line numbers.
 *
 * The scan is linear in the input and allocates one number per element.
 */
import { locatedError } from './errors.js';

/** Limits of the guard. */
export interface XmlLimits {
  /** Maximum size in bytes (UTF-8). Default 16 MiB: the largest real descriptor in the corpus is 41 kB. */
  readonly maxBytes?: number;
  /** Maximum element nesting depth. Default 256. */
  readonly maxDepth?: number;
}

/** Default size cap (bytes). */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Default nesting limit. */
export const DEFAULT_MAX_DEPTH = 256;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes descriptor bytes as UTF-8 (the encoding every producer in the corpus uses), dropping a
 * BOM; rejects invalid UTF-8 and sizes beyond the cap before decoding.
 */
export function decodeDescriptor(bytes: Uint8Array, source: string, limits: XmlLimits = {}): string {
  const max = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.byteLength > max) {
    throw locatedError('OVF_XML_TOO_LARGE', { source }, `size ${bytes.byteLength} bytes exceeds the cap of ${max} bytes`);
  }
  try {
    return fatalUtf8.decode(bytes);
  } catch (err) {
    throw locatedError('OVF_XML_ENCODING', { source }, 'bytes are not valid utf-8', err);
  }
}

function lineAt(text: string, index: number, lineStarts: number[]): { line: number; column: number } {
  // Binary search in the precomputed line starts.
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((lineStarts[mid] ?? 0) <= index) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: index - (lineStarts[lo] ?? 0) + 1 };
}

function computeLineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

// XML 1.0 §2.2 Char: tab, LF, CR and >= 0x20 (C1 controls are legal but never in descriptors we accept).
const FORBIDDEN_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

// XML 1.0 §2.3 Name (ASCII subset plus any non-ASCII letter), §3.1 STag/Attribute.
const NAME = '[A-Za-z_:\\u00C0-\\uFFFD][-A-Za-z0-9_:.\\u00B7-\\uFFFD]*';
const START_TAG = new RegExp(`^(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*$`);
const ATTR_NAME = new RegExp(`(${NAME})\\s*=`, 'g');

/**
 * Checks one start tag's inside (between `<` and `>` or `/>`): a name, then `name="value"`
 * attributes, no attribute twice (XML 1.0 §3.1 WFC Unique Att Spec). Returns the element name.
 */
function checkStartTag(inner: string, where: () => { source: string; line: number; column: number }): string {
  const m = START_TAG.exec(inner);
  if (!m) throw locatedError('OVF_XML_MALFORMED', where(), `malformed start tag '<${inner.length > 60 ? inner.slice(0, 60) + '…' : inner}>'`);
  const attrs = m[2] as string;
  const eq = attrs.indexOf('=');
  if (eq !== -1 && attrs.indexOf('=', eq + 1) !== -1) {
    const seen = new Set<string>();
    // Attribute values cannot hold '=' followed by a name match outside quotes: strip them first.
    for (const a of attrs.replace(/"[^"]*"|'[^']*'/g, '""').matchAll(ATTR_NAME)) {
      const an = a[1] as string;
      if (seen.has(an)) throw locatedError('OVF_XML_MALFORMED', where(), `attribute '${an}' is repeated`);
      seen.add(an);
    }
  }
  return m[1] as string;
}

/** What the guard learnt about the text. */
export interface GuardResult {
  /** Text without a leading BOM. */
  readonly text: string;
  /** Line of each start tag, in document order. */
  readonly tagLines: readonly number[];
  /** Offsets of line starts (for turning offsets into lines). */
  readonly lineStarts: readonly number[];
}

/**
 * Checks descriptor text against the hostile-input rules; throws a located `OVF_XML_…` error on
 * the first violation.
 */
export function guardXml(input: string, source: string, limits: XmlLimits = {}): GuardResult {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  // A string's UTF-8 size is at least its length; check the cheap bound first.
  if (input.length > maxBytes || Buffer.byteLength(input, 'utf8') > maxBytes) {
    throw locatedError('OVF_XML_TOO_LARGE', { source }, `size exceeds the cap of ${maxBytes} bytes`);
  }
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const lineStarts = computeLineStarts(text);
  const at = (i: number) => ({ source, ...lineAt(text, i, lineStarts) });

  const bad = FORBIDDEN_CHAR.exec(text);
  if (bad) {
    throw locatedError('OVF_XML_ENCODING', at(bad.index), `binary or control character u+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')} is not allowed in xml`);
  }

  const tagLines: number[] = [];
  const names: string[] = [];
  let depth = 0;
  let rootClosed = false;
  let i = 0;
  const n = text.length;
  const outside = (from: number, to: number) => {
    // Only whitespace may appear outside the root element (XML 1.0 §2.1 document, Misc).
    for (let k = from; k < to; k++) {
      const c = text.charCodeAt(k);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        throw locatedError('OVF_XML_MALFORMED', at(k), depth === 0 && rootClosed ? 'content after the root element (junk or a second document)' : 'text before the root element');
      }
    }
  };
  while (i < n) {
    const lt = text.indexOf('<', i);
    if (depth === 0) outside(i, lt === -1 ? n : lt);
    if (lt === -1) break;
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt + 4);
      if (end === -1) throw locatedError('OVF_XML_MALFORMED', at(lt), 'unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<![CDATA[', lt)) {
      if (depth === 0) throw locatedError('OVF_XML_MALFORMED', at(lt), 'cdata outside the root element');
      const end = text.indexOf(']]>', lt + 9);
      if (end === -1) throw locatedError('OVF_XML_MALFORMED', at(lt), 'unterminated cdata section');
      i = end + 3;
    } else if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt + 2);
      if (end === -1) throw locatedError('OVF_XML_MALFORMED', at(lt), 'unterminated processing instruction');
      i = end + 2;
    } else if (text.startsWith('<!', lt)) {
      // XML 1.0 §2.8 doctypedecl / §4.2 EntityDecl: refused outright.
      const what = /^<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)?/i.exec(text.slice(lt, lt + 12))?.[1] ?? 'declaration';
      throw locatedError('OVF_XML_DOCTYPE', at(lt), `'<!${what}' is refused: descriptors must not carry dtds or entity declarations`);
    } else if (text.charCodeAt(lt + 1) === 0x2f /* / */) {
      const end = text.indexOf('>', lt);
      if (end === -1) throw locatedError('OVF_XML_MALFORMED', at(lt), 'unterminated end tag');
      // XML 1.0 §3 element type match: the end tag names the open element.
      const closing = text.slice(lt + 2, end).trimEnd();
      const open = names.pop();
      if (open === undefined) throw locatedError('OVF_XML_MALFORMED', at(lt), `end tag '</${closing}>' without a start tag`);
      if (closing !== open) throw locatedError('OVF_XML_MALFORMED', at(lt), `end tag '</${closing}>' does not match start tag '<${open}>'`);
      depth--;
      if (depth === 0) rootClosed = true;
      i = end + 1;
    } else {
      // Start tag: find its '>' outside quoted attribute values.
      let k = lt + 1;
      let quote = 0;
      for (; k < n; k++) {
        const c = text.charCodeAt(k);
        if (quote !== 0) {
          if (c === quote) quote = 0;
        } else if (c === 0x22 || c === 0x27) quote = c;
        else if (c === 0x3e /* > */) break;
        else if (c === 0x3c /* < */) throw locatedError('OVF_XML_MALFORMED', at(k), "'<' inside a start tag");
      }
      if (k >= n) throw locatedError('OVF_XML_MALFORMED', at(lt), 'unterminated start tag');
      if (depth === 0 && rootClosed) throw locatedError('OVF_XML_MALFORMED', at(lt), 'a second root element (two documents concatenated?)');
      tagLines.push(lineAt(text, lt, lineStarts).line);
      const selfClosing = text.charCodeAt(k - 1) === 0x2f; /* / */
      const name = checkStartTag(text.slice(lt + 1, selfClosing ? k - 1 : k), () => at(lt));
      if (!selfClosing) {
        names.push(name);
        depth++;
        if (depth > maxDepth) throw locatedError('OVF_XML_TOO_DEEP', at(lt), `elements nest deeper than ${maxDepth} levels`);
      } else if (depth === 0) {
        rootClosed = true;
      }
      i = k + 1;
    }
  }
  if (tagLines.length === 0) throw locatedError('OVF_XML_MALFORMED', { source }, 'no root element');
  if (depth !== 0) throw locatedError('OVF_XML_MALFORMED', at(n === 0 ? 0 : n - 1), `document ends with ${depth} element(s) still open`);
  return { text, tagLines, lineStarts };
}
