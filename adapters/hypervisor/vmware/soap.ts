/**
 * The few vSphere Web Services (vim25) SOAP 1.1 messages the VMware adapter needs, built and read
 * as text — pure, no I/O. Requests follow the vim25 WSDL's element order; responses are turned into
 * plain values ({@link SoapValue}) with the `xsi:type` kept, since the API is polymorphic.
 * References: VMware vSphere Web Services SDK Programming Guide (vim25), SOAP 1.1 §4.4 (Fault).
 */
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { el, parseXml, renderXml } from '../../../protocols/xml/index.js';
import type { XmlElement, XmlNode } from '../../../protocols/xml/index.js';
import { hvError } from '../errors.js';

/** A managed object reference (`<_this type="VirtualMachine">vm-42</_this>`). */
export interface MoRef {
  readonly type: string;
  readonly value: string;
}

/** A decoded response value: text for simple types, an object for complex ones, arrays when repeated. */
export type SoapValue = string | SoapObject | SoapValue[];
/** A complex value; `_type` is its `xsi:type` when the response gave one. */
export interface SoapObject {
  _type?: string;
  [key: string]: SoapValue | undefined;
}

const XSI = 'http://www.w3.org/2001/XMLSchema-instance';

/** `<name type="T">value</name>`: a managed object reference argument. */
export function moRefNode(name: string, ref: MoRef): XmlNode {
  return el(name, { type: ref.type }, ref.value);
}

/** A typed value: `<name xsi:type="T">…</name>`. */
export function typed(name: string, type: string, children: ReadonlyArray<XmlNode | undefined | false>): XmlNode {
  return el(name, { 'xsi:type': type }, children);
}

/** The SOAP envelope of one vim25 method call on `self` with the given argument elements. */
export function requestEnvelope(method: string, self: MoRef, args: ReadonlyArray<XmlNode | undefined | false>): string {
  return renderXml(
    el('soapenv:Envelope', {
      'xmlns:soapenv': 'http://schemas.xmlsoap.org/soap/envelope/',
      'xmlns:xsd': 'http://www.w3.org/2001/XMLSchema',
      'xmlns:xsi': XSI,
    }, [el('soapenv:Body', {}, [el(method, { xmlns: 'urn:vim25' }, [moRefNode('_this', self), ...args])])]),
  );
}

/** Turns an element into a {@link SoapValue}. */
export function toValue(e: XmlElement): SoapValue {
  const xsiType = e.attributes.find((a) => a.local === 'type' && a.ns === XSI)?.value;
  const moType = e.attributes.find((a) => a.local === 'type' && a.ns === undefined)?.value;
  if (e.children.length === 0) {
    if (moType !== undefined) return { _type: 'ManagedObjectReference', type: moType, value: e.text };
    if (xsiType !== undefined && !/^xsd:/.test(xsiType)) return { _type: xsiType.replace(/^\w+:/, ''), value: e.text };
    return e.text;
  }
  const out: SoapObject = {};
  if (xsiType !== undefined) out._type = xsiType.replace(/^\w+:/, '');
  for (const c of e.children) {
    const v = toValue(c);
    const prev = out[c.local];
    if (prev === undefined) out[c.local] = v;
    // toValue never returns an array, so an array here is a repeated element.
    else if (Array.isArray(prev)) prev.push(v);
    else out[c.local] = [prev, v];
  }
  return out;
}

/** A value as a list (a repeated element, a single one, or none). */
export function list(v: SoapValue | undefined): SoapValue[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** A value as an object (`{}` when absent or text). */
export function obj(v: SoapValue | undefined): SoapObject {
  return v !== undefined && typeof v === 'object' && !Array.isArray(v) ? v : {};
}

/** A value as text (`''` when absent). */
export function text(v: SoapValue | undefined): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof v['value'] === 'string') return v['value'];
  return '';
}

/** A value as a managed object reference. */
export function moRef(v: SoapValue | undefined): MoRef | undefined {
  const o = obj(v);
  return o._type === 'ManagedObjectReference' && typeof o['type'] === 'string' && typeof o['value'] === 'string' ? { type: o['type'], value: o['value'] } : undefined;
}

/** A SOAP fault: vSphere's fault type name (`InvalidLogin`, `ManagedObjectNotFound` …) and string. */
export interface SoapFault {
  readonly faultName: string;
  readonly faultString: string;
  readonly detail: SoapValue | undefined;
}

/**
 * Reads a response envelope: the method's `returnval` (absent for void methods), or the fault.
 * Throws `VMWARE_RESPONSE_INVALID` on anything that is not a SOAP envelope.
 */
export function parseResponse(xml: string, method: string): { fault: SoapFault } | { value: SoapValue | undefined } {
  let root: XmlElement;
  try {
    root = parseXml(xml, `${method} response`, { maxBytes: 64 * 1024 * 1024, maxDepth: 128 });
  } catch (err) {
    if (isIntercloudError(err)) throw hvError('VMWARE_RESPONSE_INVALID', `vsphere answered '${method}' with malformed xml`, { cause: err });
    throw err;
  }
  const body = root.local === 'Envelope' ? root.children.find((c) => c.local === 'Body') : undefined;
  if (!body) throw hvError('VMWARE_RESPONSE_INVALID', `vsphere answered '${method}' without a soap body`, { details: { method } });
  const fault = body.children.find((c) => c.local === 'Fault');
  if (fault) {
    const faultString = fault.children.find((c) => c.local === 'faultstring')?.text ?? '';
    const detail = fault.children.find((c) => c.local === 'detail');
    const inner = detail?.children[0];
    // The fault type is the detail's xsi:type (`InvalidLoginFault` element of type `InvalidLogin`).
    const xsiType = inner?.attributes.find((a) => a.local === 'type' && a.ns === XSI)?.value.replace(/^\w+:/, '');
    const faultName = xsiType ?? inner?.local.replace(/Fault$/, '') ?? 'Unknown';
    return { fault: { faultName, faultString, detail: inner ? toValue(inner) : undefined } };
  }
  const resp = body.children[0];
  if (!resp) throw hvError('VMWARE_RESPONSE_INVALID', `vsphere answered '${method}' with an empty body`, { details: { method } });
  const rets = resp.children.filter((c) => c.local === 'returnval');
  if (rets.length === 0) return { value: undefined };
  if (rets.length === 1) return { value: toValue(rets[0]!) };
  return { value: rets.map(toValue) };
}

/**
 * Writes a decoded value back as an element (the inverse of {@link toValue}): `_type` becomes
 * `xsi:type`, references get their `type` attribute, repeated elements are written in order. Used
 * to pass a server-built object (an import spec) back to the server unchanged.
 */
export function fromValue(name: string, v: SoapValue): XmlNode[] {
  if (Array.isArray(v)) return v.flatMap((x) => fromValue(name, x));
  if (typeof v === 'string') return [el(name, {}, v)];
  if (v._type === 'ManagedObjectReference') return [el(name, { type: text(v['type']) }, text(v['value']))];
  const attrs = v._type !== undefined ? { 'xsi:type': v._type } : {};
  const keys = Object.keys(v).filter((k) => k !== '_type');
  if (keys.length === 1 && keys[0] === 'value' && typeof v['value'] === 'string') return [el(name, attrs, v['value'])];
  const children: XmlNode[] = [];
  for (const k of keys) {
    const c = v[k];
    if (c !== undefined) children.push(...fromValue(k, c));
  }
  return [el(name, attrs, children)];
}
