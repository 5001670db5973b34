/**
 * The source's proof that a broker holds the identity an accept named, before it presents its
 * own certificate there (issue 13): a TLS 1.3 handshake without a client certificate against
 * local TLS servers that, like the brokers, require one.
 */
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { probeBrokerIdentity } from '../../../protocols/amqp/index.js';
import {
  certificateToPem, createRootCertificate, generateKeyPair, issueServerCertificate, privateKeyToPem,
} from '../../../protocols/trust/index.js';

const rootKeys = generateKeyPair();
const root = { certificate: createRootCertificate({ ...rootKeys, now: new Date(Date.now() - 86_400_000) }), privateKey: rootKeys.privateKey };
const ROOT_PEM = certificateToPem(root.certificate.der);
const otherKeys = generateKeyPair();
const other = { certificate: createRootCertificate({ ...otherKeys, now: new Date(Date.now() - 86_400_000) }), privateKey: otherKeys.privateKey };

function serverCert(issuer: typeof root, dns: string): { cert: string; key: string } {
  const keys = generateKeyPair();
  const c = issueServerCertificate(issuer, { dns: [dns], publicKey: keys.publicKey, now: new Date(Date.now() - 60_000) });
  return { cert: certificateToPem(c.der), key: privateKeyToPem(keys.privateKey) };
}

const servers: Array<Server | TcpServer> = [];
afterEach(() => { for (const s of servers.splice(0)) s.close(); });

/** A TLS server requiring a client certificate, like the brokers (the probe has none to give). */
async function broker(issuer: typeof root, dns: string): Promise<{ port: number }> {
  const s = createServer({ ...serverCert(issuer, dns), ca: [ROOT_PEM], requestCert: true, rejectUnauthorized: true }, (sock: TLSSocket) => sock.destroy());
  s.on('tlsClientError', () => undefined);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port };
}

const probe = (port: number, identity: string) => probeBrokerIdentity({ host: '127.0.0.1', port, identity, ca: ROOT_PEM, timeoutMs: 5_000 });

describe('probeBrokerIdentity', () => {
  it('resolves when the server proves the identity, without our certificate', async () => {
    const b = await broker(root, 'broker.cloud-b.intercloud.test');
    await expect(probe(b.port, 'broker.cloud-b.intercloud.test')).resolves.toBeUndefined();
  });

  it('refuses a server whose certificate carries another identity as XFER_BROKER_IDENTITY', async () => {
    const b = await broker(root, 'broker.cloud-a.intercloud.test');
    await expect(probe(b.port, 'broker.cloud-b.intercloud.test')).rejects.toMatchObject({ code: 'XFER_BROKER_IDENTITY', retryable: false });
  });

  it('refuses a certificate from another root', async () => {
    const b = await broker(other, 'broker.cloud-b.intercloud.test');
    await expect(probe(b.port, 'broker.cloud-b.intercloud.test')).rejects.toMatchObject({ code: 'XFER_BROKER_IDENTITY' });
  });

  it('refuses a server that does not speak TLS', async () => {
    const s = createTcpServer((sock) => sock.end("<?xml version='1.0'?><stream:stream>"));
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    await expect(probe((s.address() as AddressInfo).port, 'broker.cloud-b.intercloud.test')).rejects.toMatchObject({ code: 'XFER_BROKER_IDENTITY' });
  });

  it('reports a broker that is not listening as the retryable XFER_BROKER', async () => {
    const s = createTcpServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    await expect(probe(port, 'broker.cloud-b.intercloud.test')).rejects.toMatchObject({ code: 'XFER_BROKER', retryable: true });
  });
});
