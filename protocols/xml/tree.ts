/**
 * A small namespace-resolved element tree built from fast-xml-parser's ordered output, after the
 * hostile-input guard (which also checks well-formedness) has passed.
 * Namespaces in XML 1.0 §5–6: prefixes resolve through `xmlns`/`xmlns:p` in scope; `xml:` is built in.
 */
import { XMLParser } from 'fast-xml-parser';
import { locatedError } from './errors.js';
import { guardXml, type XmlLimits } from './guard.js';

/** One attribute, with its resolved namespace (unprefixed attributes have none, §6.2). */
export interface XmlAttribute {
  readonly local: string;
  readonly ns: string | undefined;
  readonly prefix: string | undefined;
  readonly value: string;
}

/** One element. */
export interface XmlElement {
  /** Local name (`Envelope`). */
  readonly local: string;
  /** Namespace URI, `undefined` for no namespace. */
  readonly ns: string | undefined;
  /** Prefix as written (`ovf`), `undefined` when unprefixed. */
  readonly prefix: string | undefined;
  readonly attributes: readonly XmlAttribute[];
  readonly children: readonly XmlElement[];
  /** Concatenated character data directly inside this element, entities decoded, untrimmed. */
  readonly text: string;
  /** 1-based line of the start tag. */
  readonly line: number;
  /** Path of local names with 1-based sibling indexes: `Envelope/VirtualSystem[1]/Name[1]`. */
  readonly path: string;
  /** In-scope namespace declarations (prefix → uri; `''` for the default namespace). */
  readonly scope: ReadonlyMap<string, string>;
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Entities are decoded below (only the five predefined ones and character references exist,
  // since the guard refuses DTDs).
  processEntities: false,
  htmlEntities: false,
});

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

const ENTITY_RE = /&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_][\w.-]*);?/g;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes XML 1.0 §4.1 character references and §4.6 predefined entities; anything else is an error. */
function decodeEntities(raw: string, fail: (problem: string) => never): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(ENTITY_RE, (whole, name: string) => {
    if (!whole.endsWith(';')) fail(`'&' not starting an entity reference: '${whole}'`);
    if (name.startsWith('#')) {
      const cp = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (!Number.isFinite(cp) || cp > 0x10ffff || cp < 0x9 || (cp < 0x20 && cp !== 0x9 && cp !== 0xa && cp !== 0xd)) fail(`character reference '${whole}' is not an xml character`);
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[name];
    if (v === undefined) fail(`undeclared entity '${whole}'`);
    return v as string;
  });
}

/** An element of the tree; its path is computed on demand (only errors need it). */
class TreeElement implements XmlElement {
  readonly children: XmlElement[] = [];
  text = '';
  constructor(
    readonly local: string,
    readonly ns: string | undefined,
    readonly prefix: string | undefined,
    readonly attributes: readonly XmlAttribute[],
    readonly line: number,
    readonly scope: ReadonlyMap<string, string>,
    private readonly parent: TreeElement | undefined,
  ) {}

  get path(): string {
    if (!this.parent) return this.local;
    let n = 1;
    for (const c of this.parent.children) {
      if (c === this) break;
      if (c.local === this.local) n++;
    }
    return `${this.parent.path}/${this.local}[${n}]`;
  }
}

/**
 * Parses descriptor text into an element tree. Runs {@link guardXml} first (hostile input and
 * well-formedness, with line/column), then fast-xml-parser, then resolves namespaces. Throws located
 * `OVF_XML_…` errors naming `source`, the line and the element.
 */
export function parseXml(input: string, source: string, limits: XmlLimits = {}): XmlElement {
  // The guard has checked well-formedness (tags, attributes, nesting, one root); entities are
  // checked while decoding below.
  const { text, tagLines } = guardXml(input, source, limits);
  const ordered = parser.parse(text) as OrderedNode[];
  let tagIndex = 0;
  const failAt = (el: { line: number; path: string }, code: 'OVF_XML_MALFORMED' | 'OVF_XML_UNBOUND_PREFIX', problem: string): never => {
    throw locatedError(code, { source, line: el.line, element: el.path }, problem);
  };
  const decode = (raw: string, el: { line: number; path: string }): string =>
    raw.includes('&') ? decodeEntities(raw, (p) => failAt(el, 'OVF_XML_MALFORMED', p)) : raw;

  const build = (node: OrderedNode, parentScope: ReadonlyMap<string, string>, parent: TreeElement | undefined): TreeElement => {
    let qname = '';
    for (const k in node) {
      if (k !== ':@') {
        qname = k;
        break;
      }
    }
    const line = tagLines[tagIndex++] ?? 0;
    const colon = qname.indexOf(':');
    const prefix = colon === -1 ? undefined : qname.slice(0, colon);
    const local = colon === -1 ? qname : qname.slice(colon + 1);
    // Until the element exists, errors are located through a stand-in with the same path.
    const here = {
      line,
      get path(): string {
        return parent ? `${parent.path}/${local}[${parent.children.filter((c) => c.local === local).length + 1}]` : local;
      },
    };
    const rawAttrs = node[':@'];
    let scope = parentScope;
    const attrEntries = rawAttrs ? Object.entries(rawAttrs) : [];
    for (const [k, v] of attrEntries) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) {
        if (scope === parentScope) scope = new Map(parentScope);
        (scope as Map<string, string>).set(k === 'xmlns' ? '' : k.slice(6), decode(v, here));
      }
    }
    const ns = prefix === undefined ? scope.get('') || undefined : prefix === 'xml' ? XML_NS : scope.get(prefix);
    if (prefix !== undefined && ns === undefined) failAt(here, 'OVF_XML_UNBOUND_PREFIX', `element prefix '${prefix}' is not declared`);
    const attributes: XmlAttribute[] = [];
    for (const [k, v] of attrEntries) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
      const c = k.indexOf(':');
      const ap = c === -1 ? undefined : k.slice(0, c);
      const ans = ap === undefined ? undefined : ap === 'xml' ? XML_NS : scope.get(ap);
      if (ap !== undefined && ans === undefined) failAt(here, 'OVF_XML_UNBOUND_PREFIX', `attribute prefix '${ap}' of '${k}' is not declared`);
      attributes.push({ local: c === -1 ? k : k.slice(c + 1), ns: ans, prefix: ap, value: decode(v, here) });
    }
    const el = new TreeElement(local, ns, prefix, attributes, line, scope, parent);
    if (parent) parent.children.push(el);
    let textParts = '';
    for (const child of (node[qname] as OrderedNode[] | undefined) ?? []) {
      if ('#text' in child) textParts += String(child['#text']);
      else build(child, scope, el);
    }
    el.text = decode(textParts, el);
    return el;
  };

  const roots = ordered.filter((n) => !('#text' in n));
  const root = roots[0];
  if (root === undefined || roots.length !== 1) throw locatedError('OVF_XML_MALFORMED', { source }, `expected one root element, found ${roots.length}`);
  return build(root, new Map([['xml', XML_NS]]), undefined);
}

/** Children of `el` with local name `local` (and namespace `ns` when given). */
export function childrenNamed(el: XmlElement, local: string, ns?: string): XmlElement[] {
  return el.children.filter((c) => c.local === local && (ns === undefined || c.ns === ns));
}

/** First child of `el` with local name `local` (and namespace `ns` when given). */
export function childNamed(el: XmlElement, local: string, ns?: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local && (ns === undefined || c.ns === ns));
}

/** An attribute value by local name, optionally restricted to namespaces in `nsList` (or no namespace with `null`). */
export function attr(el: XmlElement, local: string, nsList?: ReadonlyArray<string | null>): string | undefined {
  for (const a of el.attributes) {
    if (a.local !== local) continue;
    if (nsList === undefined || nsList.includes(a.ns ?? null)) return a.value;
  }
  return undefined;
}

/** Trimmed text of the first child named `local`, or `undefined`. */
export function childText(el: XmlElement, local: string, ns?: string): string | undefined {
  const c = childNamed(el, local, ns);
  return c === undefined ? undefined : c.text.trim();
}
