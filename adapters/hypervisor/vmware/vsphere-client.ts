/**
 * HTTPS I/O with a vSphere endpoint (vCenter or vcsim): SOAP calls with the session cookie, the
 * property collector, task polling, and datastore `/folder` and NFC transfers as streams. The
 * server certificate is verified against the pinned CA/certificate; verification is never off.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { el } from '../../../protocols/xml/index.js';
import type { XmlNode } from '../../../protocols/xml/index.js';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { isIntercloudError, messageOf } from '../../../protocols/errors/index.js';
import { abortedError, hvError } from '../errors.js';
import type { HypervisorErrorCode } from '../errors.js';
import { list, moRef, moRefNode, obj, parseResponse, requestEnvelope, text, typed } from './soap.js';
import type { MoRef, SoapObject, SoapValue } from './soap.js';

/** How to reach and log in to vSphere. */
export interface VsphereEndpoint {
  /** `https://HOST:PORT/sdk`. */
  url: string;
  user: string;
  password: string;
  /** PEM of the CA (or the self-signed certificate) the server's certificate must chain to. */
  ca: string;
  /** Give up a request after this many ms (default 60 000). */
  timeoutMs?: number;
}

/** OpenSSL verification failures Node reports as `err.code` on a TLS socket. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
]);

/** One property-collector result: the object and the properties asked for. */
export interface ObjectProps {
  readonly obj: MoRef;
  readonly props: Readonly<Record<string, SoapValue>>;
}

/** The vim25 ServiceContent fields the adapter uses. */
export interface ServiceContent {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  viewManager: MoRef;
  sessionManager: MoRef;
  fileManager: MoRef;
  ovfManager: MoRef;
  virtualDiskManager: MoRef;
}

const SERVICE_INSTANCE: MoRef = { type: 'ServiceInstance', value: 'ServiceInstance' };

/** A logged-in vSphere session, re-established on demand. */
export class VsphereClient {
  private readonly base: URL;
  private readonly agent: https.Agent;
  private cookie: string | undefined;
  private content: ServiceContent | undefined;
  private loggingIn: Promise<void> | undefined;
  private readonly views = new Map<string, MoRef>();

  constructor(private readonly endpoint: VsphereEndpoint, readonly prefix: string) {
    this.base = new URL(endpoint.url);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 8, ca: endpoint.ca });
  }

  // ---- raw HTTPS ---------------------------------------------------------------------------

  private netError(err: NodeJS.ErrnoException, what: string): IntercloudError<HypervisorErrorCode> {
    if (err.code !== undefined && TLS_CODES.has(err.code)) {
      return hvError('VMWARE_TLS', `${this.prefix}: the certificate of '${this.base.host}' does not verify against the pinned ca (${err.code})`, {
        cause: err, details: { tlsCode: err.code, host: this.base.host },
      });
    }
    return hvError('VMWARE_UNREACHABLE', `${this.prefix}: ${what} '${this.base.host}' failed: ${messageOf(err)}`, {
      cause: err, details: { errno: err.code, host: this.base.host },
    });
  }

  /** One HTTPS request; resolves with the response (its body unread). */
  request(method: string, path: string, options: { headers?: Record<string, string | number>; body?: string | Readable; signal?: AbortSignal | undefined } = {}): Promise<IncomingMessage> {
    const { signal } = options;
    return new Promise<IncomingMessage>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortedError(this.prefix, `${method} ${path}`, signal));
        return;
      }
      const headers: Record<string, string | number> = { ...options.headers };
      if (this.cookie) headers['Cookie'] = this.cookie;
      const req = https.request({
        protocol: 'https:', hostname: this.base.hostname, port: this.base.port || 443, path, method, headers, agent: this.agent,
        timeout: this.endpoint.timeoutMs ?? 60_000,
      });
      let settled = false;
      let response: IncomingMessage | undefined;
      // Until the response body is consumed, an abort destroys the request (or the response).
      const onAbort = (): void => {
        const err = abortedError(this.prefix, `${method} ${path}`, signal);
        if (response) response.destroy(err);
        else req.destroy(err);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('timeout', () => req.destroy(hvError('VMWARE_UNREACHABLE', `${this.prefix}: '${method} ${path}' timed out`, { details: { host: this.base.host } })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        signal?.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        reject(isIntercloudError(err) ? err : this.netError(err, `${method} to`));
      });
      req.on('response', (res) => {
        settled = true;
        response = res;
        res.once('close', () => signal?.removeEventListener('abort', onAbort));
        resolve(res);
      });
      const body = options.body;
      if (body === undefined) req.end();
      else if (typeof body === 'string') req.end(body);
      else if (body.errored) req.destroy(body.errored);
      else {
        body.once('error', (err) => req.destroy(err));
        body.pipe(req);
      }
    });
  }

  private static async readBody(res: IncomingMessage): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of res) parts.push(c as Buffer);
    return Buffer.concat(parts).toString('utf8');
  }

  // ---- SOAP --------------------------------------------------------------------------------

  /** Calls a vim25 method without logging in first (for RetrieveServiceContent and Login). */
  private async rawCall(method: string, self: MoRef, args: ReadonlyArray<XmlNode | undefined | false>, signal?: AbortSignal): Promise<SoapValue | undefined> {
    const body = requestEnvelope(method, self, args);
    const res = await this.request('POST', this.base.pathname, {
      headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '"urn:vim25/6.5"', 'Content-Length': Buffer.byteLength(body) },
      body,
      signal,
    });
    const setCookie = res.headers['set-cookie']?.[0];
    if (setCookie) this.cookie = setCookie.split(';')[0];
    const xml = await VsphereClient.readBody(res);
    const parsed = parseResponse(xml, method);
    if ('fault' in parsed) {
      const f = parsed.fault;
      const code: HypervisorErrorCode = f.faultName === 'InvalidLogin' ? 'VMWARE_AUTH' : 'VMWARE_FAULT';
      throw hvError(code, `${this.prefix}: '${method}' failed with fault '${f.faultName}': ${f.faultString}`, {
        details: { method, faultName: f.faultName, faultString: f.faultString, httpStatus: res.statusCode, object: self },
      });
    }
    if ((res.statusCode ?? 500) >= 300) {
      throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: '${method}' answered http ${res.statusCode}`, { details: { method, httpStatus: res.statusCode } });
    }
    return parsed.value;
  }

  private async login(signal?: AbortSignal): Promise<void> {
    if (!this.content) {
      const c = obj(await this.rawCall('RetrieveServiceContent', SERVICE_INSTANCE, [], signal));
      const ref = (k: string): MoRef => {
        const r = moRef(c[k]);
        if (!r) throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: the service content has no '${k}'`, { details: { field: k } });
        return r;
      };
      this.content = {
        rootFolder: ref('rootFolder'), propertyCollector: ref('propertyCollector'), viewManager: ref('viewManager'),
        sessionManager: ref('sessionManager'), fileManager: ref('fileManager'), ovfManager: ref('ovfManager'),
        virtualDiskManager: ref('virtualDiskManager'),
      };
    }
    await this.rawCall('Login', this.content.sessionManager, [el('userName', {}, this.endpoint.user), el('password', {}, this.endpoint.password)], signal);
    this.views.clear();
  }

  /** Logs in when there is no session yet (concurrent callers share one login). */
  async session(signal?: AbortSignal): Promise<ServiceContent> {
    if (!this.cookie || !this.content) {
      this.loggingIn ??= this.login(signal).finally(() => { this.loggingIn = undefined; });
      await this.loggingIn;
    }
    return this.content!;
  }

  /** Calls a vim25 method in the session; logs in again once if the session expired. */
  async call(method: string, self: MoRef, args: ReadonlyArray<XmlNode | undefined | false>, signal?: AbortSignal): Promise<SoapValue | undefined> {
    await this.session(signal);
    try {
      return await this.rawCall(method, self, args, signal);
    } catch (err) {
      if ((err as IntercloudError).details?.['faultName'] === 'NotAuthenticated') {
        this.cookie = undefined;
        await this.session(signal);
        return this.rawCall(method, self, args, signal);
      }
      throw err;
    }
  }

  // ---- property collector ------------------------------------------------------------------

  /** A container view of every object of `type` under the root folder (cached per session). */
  async view(type: string, signal?: AbortSignal): Promise<MoRef> {
    const sc = await this.session(signal);
    const cached = this.views.get(type);
    if (cached) return cached;
    const v = moRef(await this.call('CreateContainerView', sc.viewManager, [
      moRefNode('container', sc.rootFolder), el('type', {}, type), el('recursive', {}, 'true'),
    ], signal));
    if (!v) throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: CreateContainerView returned no view`, { details: { type } });
    this.views.set(type, v);
    return v;
  }

  /** Properties `paths` of every object of `type` (through a container view), or of the given objects. */
  async retrieve(type: string, paths: readonly string[], objects?: readonly MoRef[], signal?: AbortSignal): Promise<ObjectProps[]> {
    const sc = await this.session(signal);
    const objectSets = objects
      ? objects.map((o) => el('objectSet', {}, [moRefNode('obj', o), el('skip', {}, 'false')]))
      : [el('objectSet', {}, [
        moRefNode('obj', await this.view(type, signal)),
        el('skip', {}, 'true'),
        typed('selectSet', 'TraversalSpec', [el('name', {}, 'view'), el('type', {}, 'ContainerView'), el('path', {}, 'view'), el('skip', {}, 'false')]),
      ])];
    const spec = el('specSet', {}, [
      el('propSet', {}, [el('type', {}, type), ...paths.map((p) => el('pathSet', {}, p))]),
      ...objectSets,
    ]);
    const out: ObjectProps[] = [];
    let result = obj(await this.call('RetrievePropertiesEx', sc.propertyCollector, [spec, el('options', {}, [])], signal));
    for (;;) {
      for (const o of list(result['objects'])) {
        const oo = obj(o);
        const ref = moRef(oo['obj']);
        if (!ref) continue;
        const props: Record<string, SoapValue> = {};
        for (const p of list(oo['propSet'])) {
          const po = obj(p);
          const val = po['val'];
          if (val !== undefined) props[text(po['name'])] = val;
        }
        out.push({ obj: ref, props });
      }
      const token = text(result['token']);
      if (!token) break;
      result = obj(await this.call('ContinueRetrievePropertiesEx', sc.propertyCollector, [el('token', {}, token)], signal));
    }
    return out;
  }

  /** Waits for a task to finish; resolves with its result, rejects with `VMWARE_TASK_FAILED` (fault kept). */
  async waitTask(task: MoRef, what: string, signal?: AbortSignal): Promise<SoapValue | undefined> {
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      const [t] = await this.retrieve('Task', ['info'], [task], signal);
      const info = obj(t?.props['info']);
      const state = text(info['state']);
      if (state === 'success') return info['result'];
      if (state === 'error') {
        const e = obj(info['error']);
        const fault = obj(e['fault']);
        const faultName = fault._type ?? 'Unknown';
        throw hvError('VMWARE_TASK_FAILED', `${this.prefix}: ${what} failed with fault '${faultName}': ${text(e['localizedMessage'])}`, {
          details: { task: task.value, faultName, localizedMessage: text(e['localizedMessage']) },
        });
      }
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => {
        throw abortedError(this.prefix, what, signal);
      });
    }
  }

  /** The datastore file URL path of `[ds] path` (vSphere datastore HTTP access, `/folder`). */
  folderPath(datastore: string, datacenter: string, path: string): string {
    const q = new URLSearchParams({ dcPath: datacenter, dsName: datastore });
    return `/folder/${path.split('/').map(encodeURIComponent).join('/')}?${q.toString()}`;
  }

  /** Logs out and closes idle sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.cookie && this.content) {
      try {
        await this.rawCall('Logout', this.content.sessionManager, []);
      } finally {
        this.cookie = undefined;
        this.views.clear();
        this.agent.destroy();
      }
    } else {
      this.agent.destroy();
    }
  }
}

/** An object's property as an object. */
export function prop(o: ObjectProps | undefined, path: string): SoapObject {
  return obj(o?.props[path]);
}
