/**
 * XEP-0030 Service Discovery: disco#info queries and results, disco#items results.
 */
import { xml, type Element } from '@xmpp/client';
import { NS } from './namespaces.js';

/** One identity (XEP-0030 §3.1). */
export interface DiscoIdentity {
  readonly category: string;
  readonly type: string;
  readonly name?: string;
  readonly lang?: string;
}

/** One field of an extended-information data form (XEP-0128, XEP-0004). */
export interface DataFormField {
  readonly var: string;
  readonly values: readonly string[];
}

/** An extended-information form: its FORM_TYPE and other fields. */
export interface DataForm {
  readonly formType: string;
  readonly fields: readonly DataFormField[];
}

/** What a disco#info result says about an entity. */
export interface DiscoInfo {
  readonly identities: readonly DiscoIdentity[];
  readonly features: readonly string[];
  readonly forms?: readonly DataForm[];
}

/** One disco#items item (XEP-0030 §4.1). */
export interface DiscoItem {
  readonly jid: string;
  readonly node?: string;
  readonly name?: string;
}

/** `<query xmlns=disco#info [node]/>` for an iq get (XEP-0030 §3.1). */
export function buildDiscoInfoQuery(node?: string): Element {
  return xml('query', { xmlns: NS.DISCO_INFO, node });
}

/** `<query xmlns=disco#items [node]/>` for an iq get (XEP-0030 §4.1). */
export function buildDiscoItemsQuery(node?: string): Element {
  return xml('query', { xmlns: NS.DISCO_ITEMS, node });
}

/** The `<query/>` of a disco#info result (XEP-0030 §3.1, XEP-0128 forms). */
export function buildDiscoInfoResult(info: DiscoInfo, node?: string): Element {
  return xml(
    'query',
    { xmlns: NS.DISCO_INFO, node },
    ...info.identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name, 'xml:lang': i.lang })),
    ...info.features.map((f) => xml('feature', { var: f })),
    ...(info.forms ?? []).map((form) =>
      xml(
        'x',
        { xmlns: NS.DATA_FORMS, type: 'result' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, form.formType)),
        ...form.fields.map((f) => xml('field', { var: f.var }, ...f.values.map((v) => xml('value', {}, v)))),
      ),
    ),
  );
}

/** Reads a disco#info `<query/>`; returns `undefined` when the element is not one. */
export function parseDiscoInfo(query: Element | undefined): DiscoInfo | undefined {
  if (!query || !query.is('query', NS.DISCO_INFO)) return undefined;
  const identities = query.getChildren('identity').map((i): DiscoIdentity => ({
    category: i.attrs['category'] ?? '',
    type: i.attrs['type'] ?? '',
    ...(i.attrs['name'] === undefined ? {} : { name: i.attrs['name'] }),
    ...(i.attrs['xml:lang'] === undefined ? {} : { lang: i.attrs['xml:lang'] }),
  }));
  const features = query.getChildren('feature').map((f) => f.attrs['var'] ?? '').filter((v) => v !== '');
  const forms: DataForm[] = [];
  for (const x of query.getChildren('x', NS.DATA_FORMS)) {
    const fields = x.getChildren('field').map((f): DataFormField => ({
      var: f.attrs['var'] ?? '',
      values: f.getChildren('value').map((v) => v.text()),
    }));
    const formType = fields.find((f) => f.var === 'FORM_TYPE')?.values[0];
    if (formType !== undefined) forms.push({ formType, fields: fields.filter((f) => f.var !== 'FORM_TYPE') });
  }
  return { identities, features, ...(forms.length > 0 ? { forms } : {}) };
}

/** Reads a disco#items `<query/>`. */
export function parseDiscoItems(query: Element | undefined): DiscoItem[] {
  if (!query || !query.is('query', NS.DISCO_ITEMS)) return [];
  return query.getChildren('item').map((i) => ({
    jid: i.attrs['jid'] ?? '',
    ...(i.attrs['node'] === undefined ? {} : { node: i.attrs['node'] }),
    ...(i.attrs['name'] === undefined ? {} : { name: i.attrs['name'] }),
  }));
}
