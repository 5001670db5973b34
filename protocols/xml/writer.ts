/**
 * Serialising XML text: escaping (XML 1.0 §2.4, §3.3.3) and a tiny element builder that writes
 * indented documents. Writers build a tree of {@link XmlNode}s and call {@link renderXml}.
 */

/** An element to write. `attrs` keep insertion order; `undefined` values are skipped. */
export interface XmlNode {
  readonly name: string;
  readonly attrs?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly children?: ReadonlyArray<XmlNode | undefined | false>;
  readonly text?: string | number;
}

/** Escapes character data. */
export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes an attribute value for double quotes (whitespace kept as references, §3.3.3). */
export function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

/** Shorthand for building an {@link XmlNode}. */
export function el(name: string, attrs?: XmlNode['attrs'], children?: XmlNode['children'] | string | number): XmlNode {
  if (typeof children === 'string' || typeof children === 'number') return { name, attrs, text: children };
  return { name, attrs, children };
}

function render(node: XmlNode, indent: string, out: string[]): void {
  let open = `${indent}<${node.name}`;
  for (const [k, v] of Object.entries(node.attrs ?? {})) {
    if (v !== undefined) open += ` ${k}="${escapeAttr(String(v))}"`;
  }
  const kids = (node.children ?? []).filter((c): c is XmlNode => c !== undefined && c !== false);
  if (node.text !== undefined) {
    out.push(`${open}>${escapeText(String(node.text))}</${node.name}>`);
  } else if (kids.length === 0) {
    out.push(`${open}/>`);
  } else {
    out.push(`${open}>`);
    for (const k of kids) render(k, indent + '  ', out);
    out.push(`${indent}</${node.name}>`);
  }
}

/** Renders a document (with an XML declaration when `declaration` is true) ending in a newline. */
export function renderXml(root: XmlNode, declaration = true): string {
  const out: string[] = declaration ? ['<?xml version="1.0" encoding="UTF-8"?>'] : [];
  render(root, '', out);
  return out.join('\n') + '\n';
}
