/**
 * XEP-0115 Entity Capabilities: the verification string (§5.1) and the `<c/>` element
 * carried in presence (§4).
 */
import { createHash } from 'node:crypto';
import { xml, type Element } from '@xmpp/client';
import type { DiscoInfo } from './disco.js';
import { NS } from './namespaces.js';

/** What a `<c/>` element in presence announces. */
export interface CapsAnnouncement {
  readonly node: string;
  readonly ver: string;
  readonly hash: string;
}

// XEP-0115 §5.1 sorts by "i;octet" collation: compare the UTF-8 bytes.
function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The verification string S of XEP-0115 §5.1 (before hashing): identities
 * `category/type/lang/name<` sorted, features `var<` sorted, then each extended form
 * (sorted by FORM_TYPE) as `FORM_TYPE<` and its fields sorted by var, values sorted.
 */
export function capsVerificationString(info: DiscoInfo): string {
  let s = '';
  const identities = info.identities
    .map((i) => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`)
    .sort(octetCompare);
  for (const i of identities) s += `${i}<`;
  for (const f of [...info.features].sort(octetCompare)) s += `${f}<`;
  const forms = [...(info.forms ?? [])].sort((a, b) => octetCompare(a.formType, b.formType));
  for (const form of forms) {
    s += `${form.formType}<`;
    const fields = [...form.fields].sort((a, b) => octetCompare(a.var, b.var));
    for (const field of fields) {
      s += `${field.var}<`;
      for (const v of [...field.values].sort(octetCompare)) s += `${v}<`;
    }
  }
  return s;
}

/** The `ver` attribute: base64 of SHA-1 over the verification string (XEP-0115 §5.1 step 8–9). */
export function capsVer(info: DiscoInfo): string {
  return createHash('sha1').update(capsVerificationString(info), 'utf8').digest('base64');
}

/** `<c xmlns=caps hash='sha-1' node ver/>` for presence (XEP-0115 §4). */
export function buildCaps(node: string, info: DiscoInfo): Element {
  return xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node, ver: capsVer(info) });
}

/** Reads the `<c/>` of a presence stanza, if any. */
export function parseCaps(presence: Element): CapsAnnouncement | undefined {
  const c = presence.getChild('c', NS.CAPS);
  if (!c) return undefined;
  const { node, ver, hash } = c.attrs;
  if (node === undefined || ver === undefined || hash === undefined) return undefined;
  return { node, ver, hash };
}
