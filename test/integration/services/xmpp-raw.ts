/**
 * A deliberately tiny XMPP client for the services smoke tests: just enough of RFC 6120 to do
 * STARTTLS (§5), SASL (§6) and resource binding (§7) against Prosody and send a few IQs. It
 * matches on the raw text it receives; the real session lives in protocols/xmpp.
 */
import net from 'node:net';
import tls from 'node:tls';

/** TLS material for the connection. */
export interface RawTlsOptions {
  ca: Buffer;
  servername: string;
  cert?: Buffer;
  key?: Buffer;
}

/** The stream header's namespace and sender (server-to-server streams name the sending domain). */
export interface RawStreamOptions {
  ns?: 'jabber:client' | 'jabber:server';
  from?: string;
}

/** A connection that accumulates what the server sent and waits for patterns in it. */
export class RawXmpp {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private closed: Error | undefined;

  private constructor(private socket: net.Socket | tls.TLSSocket, private readonly stream: RawStreamOptions) {
    this.attach(socket);
  }

  /**
   * Opens TCP to host:port and sends the initial stream header for `domain` (a client stream, or
   * with `ns: 'jabber:server'` and `from` a server-to-server one, RFC 6120 §4.7.1).
   */
  static async connect(host: string, port: number, domain: string, stream: RawStreamOptions = {}): Promise<RawXmpp> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const x = new RawXmpp(socket, stream);
    x.openStream(domain);
    return x;
  }

  /** Everything received since the last stream (re)start. */
  get received(): string {
    return this.buffer;
  }

  /** Resolves once the server closed the connection (or after `timeoutMs`, false). */
  async closedByPeer(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('error', (err) => {
      this.closed = err;
      this.wake();
    });
    socket.on('close', () => {
      this.closed ??= new Error('xmpp connection closed');
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Sends a stream header (RFC 6120 §4.7). */
  openStream(domain: string): void {
    this.buffer = '';
    this.send(
      `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='${this.stream.ns ?? 'jabber:client'}' ` +
        `${this.stream.from === undefined ? '' : `from='${this.stream.from}' `}` +
        `xmlns:stream='http://etherx.jabber.org/streams'>`,
    );
  }

  /** Writes raw XML. */
  send(xml: string): void {
    this.socket.write(xml);
  }

  /** Resolves with the first match of `re` in what was received since the last stream (re)start. */
  async until(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.buffer.match(re);
      if (m) return m;
      if (this.closed) throw new Error(`closed before ${String(re)} arrived: ${this.buffer.slice(-300)}`, { cause: this.closed });
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${String(re)}; got: ${this.buffer.slice(-300)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** RFC 6120 §5.4: STARTTLS, then a new stream over TLS; returns the verified TLS socket. */
  async starttls(domain: string, opts: RawTlsOptions): Promise<tls.TLSSocket> {
    await this.until(/<\/stream:features>/);
    this.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await this.until(/<proceed[^>]*\/>/);
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, ...opts });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.socket = secure;
    this.closed = undefined;
    this.attach(secure);
    this.openStream(domain);
    return secure;
  }

  /** The SASL mechanisms offered in the current stream features (RFC 6120 §6.4.1). */
  async mechanisms(): Promise<string[]> {
    const m = await this.until(/<mechanisms[^>]*>([\s\S]*?)<\/mechanisms>/);
    return [...(m[1] ?? '').matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((x) => x[1] ?? '');
  }

  /** Sends `<auth/>` and resolves with 'success' or the failure condition (RFC 6120 §6.4.5). */
  async auth(mechanism: string, initialResponse: string): Promise<string> {
    this.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mechanism}'>` +
        `${Buffer.from(initialResponse).toString('base64')}</auth>`,
    );
    const m = await this.until(/<success[^>]*(?:\/>|>[^<]*<\/success>)|<failure[^>]*>\s*<([a-z-]+)/);
    return m[0].startsWith('<success') ? 'success' : (m[1] ?? 'failure');
  }

  /** After SASL success: restart the stream and bind `resource`; returns the full JID (§7). */
  async bind(domain: string, resource: string): Promise<string> {
    this.openStream(domain);
    await this.until(/<\/stream:features>/);
    const reply = await this.iq(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
      'bind1',
    );
    const jid = reply.match(/<jid>([^<]+)<\/jid>/);
    if (!jid?.[1]) throw new Error(`no jid in bind result: ${reply}`);
    return jid[1];
  }

  /** Sends an IQ with id `id` and resolves with the whole matching reply stanza. */
  async iq(xml: string, id: string): Promise<string> {
    this.send(xml);
    const m = await this.until(new RegExp(`<iq[^>]*id=['"]${id}['"][^>]*(?:/>|>[\\s\\S]*?</iq>)`));
    return m[0];
  }

  /** Closes the stream and the socket. */
  close(): void {
    if (!this.socket.destroyed) {
      this.socket.end('</stream:stream>');
      this.socket.destroy();
    }
  }
}
