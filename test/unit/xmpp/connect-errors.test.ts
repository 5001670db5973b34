/**
 * Error codes say what happened when connecting (issue 13): refused, timed out, stream error,
 * not `XMPP_CONNECT` for every failure — told apart by what the connection saw and the error's
 * structured fields, never its name or message. The servers here are in-process loopback
 * sockets that misbehave on purpose; no XMPP server is involved.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { xml } from '@xmpp/client';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { GatewaySession, XMPP_ERRORS, classifyConnectError, parseStreamError } from '../../../protocols/xmpp/index.js';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A loopback server that answers each connection with `reply` (or nothing). */
async function fakeServer(reply?: string): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => { if (reply !== undefined) socket.write(reply); });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const port = await fakeServer();
  servers.pop()!.close();
  return port;
}

function observer(port: number, connectTimeoutMs = 5_000): GatewaySession {
  return new GatewaySession({
    cloudId: 'cloud-a', service: `xmpp://127.0.0.1:${port}`, domain: 'intercloud.test', pubsubJid: 'pubsub.intercloud.test',
    tls: { ca: '' }, observer: true, connectTimeoutMs, reconnect: { initialDelayMs: 60_000 },
    trust: { certificateSha256: '0'.repeat(64), sign: async () => '', verify: async () => { throw new Error('unused'); }, audit: async () => undefined },
  });
}

const STREAM_OPEN = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='intercloud.test' id='x' version='1.0'>";

describe('a failed connect says what happened', () => {
  it('nothing listens: XMPP_UNREACHABLE, with the errno', async () => {
    const s = observer(await closedPort());
    await expect(s.start()).rejects.toMatchObject({ code: 'XMPP_UNREACHABLE', retryable: true, details: { errno: 'ECONNREFUSED' } });
  });

  it('the server accepts and never answers: XMPP_CONNECT_TIMEOUT', async () => {
    const s = observer(await fakeServer(), 300);
    await expect(s.start()).rejects.toMatchObject({ code: 'XMPP_CONNECT_TIMEOUT', retryable: true, details: { tcpConnected: true } });
  });

  it('the server closes the stream with a stream error: XMPP_STREAM_ERROR with its condition', async () => {
    const reply = `${STREAM_OPEN}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such domain</text></stream:error></stream:stream>`;
    const s = observer(await fakeServer(reply));
    await expect(s.start()).rejects.toMatchObject({ code: 'XMPP_STREAM_ERROR', retryable: false, details: { condition: 'host-unknown', text: 'no such domain' } });
  });
});

describe('classifyConnectError', () => {
  it('keeps a coded error, and otherwise goes by what was seen, not by the error\'s text', () => {
    const tls = new IntercloudError('XMPP_TLS', 'tls failed');
    expect(classifyConnectError(tls, { tcpConnected: true }, 's')).toBe(tls);
    // A message that "looks like" a timeout or a refusal changes nothing.
    const lying = Object.assign(new Error('ECONNREFUSED timeout SASLError'), { name: 'TimeoutError' });
    expect(classifyConnectError(lying, { tcpConnected: true }, 's').code).toBe('XMPP_CONNECT');
    expect(classifyConnectError(lying, { tcpConnected: false }, 's').code).toBe('XMPP_UNREACHABLE');
    expect(classifyConnectError(lying, { tcpConnected: true, timedOut: true }, 's').code).toBe('XMPP_CONNECT_TIMEOUT');
    expect(classifyConnectError(lying, { tcpConnected: true, streamError: { condition: 'system-shutdown' } }, 's'))
      .toMatchObject({ code: 'XMPP_STREAM_ERROR', retryable: true, details: { condition: 'system-shutdown' } });
  });

  it('reads a stream error element, and nothing else', () => {
    const el = xml('error', { xmlns: 'http://etherx.jabber.org/streams' }, xml('conflict', { xmlns: 'urn:ietf:params:xml:ns:xmpp-streams' }));
    expect(parseStreamError(el)).toEqual({ condition: 'conflict' });
    expect(parseStreamError(xml('error', { xmlns: 'jabber:client' }))).toBeUndefined();
  });
});

describe('xmpp error codes', () => {
  it('are all XMPP_-prefixed and documented in the area README', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../../protocols/xmpp/README.md'), 'utf8');
    for (const code of Object.keys(XMPP_ERRORS)) {
      expect(code).toMatch(/^XMPP_[A-Z_]+$/);
      expect(readme, code).toContain(`| \`${code}\` |`);
    }
  });
});
