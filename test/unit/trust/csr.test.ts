import { describe, expect, it } from 'vitest';
import { createCsr, csrToPem, generateKeyPair, issueGatewayCertificate, parseCsrDer, parseCsrPem } from '../../../protocols/trust/index.js';
import { NOW, codeOf, flipByte, makeRoot } from './fixtures.js';

describe('certification requests', () => {
  it('a CSR round-trips and the CA certifies the key it proves', () => {
    const keys = generateKeyPair();
    const csr = parseCsrPem(csrToPem(createCsr({ commonName: 'cloud-b' }, keys.publicKey, keys.privateKey)));
    const cert = issueGatewayCertificate(makeRoot(), { cloudId: 'cloud-b', publicKey: csr.publicKey, now: NOW });
    expect(cert.spki.equals(keys.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('an RSA CSR is accepted', () => {
    const keys = generateKeyPair('rsa');
    expect(parseCsrDer(createCsr({ commonName: 'r' }, keys.publicKey, keys.privateKey)).publicKey.asymmetricKeyType).toBe('rsa');
  });

  it('a CSR signed by another key than the one it carries is TRUST_CSR_SIGNATURE', () => {
    const carried = generateKeyPair();
    const signer = generateKeyPair();
    const der = createCsr({ commonName: 'cloud-b' }, carried.publicKey, signer.privateKey);
    expect(codeOf(() => parseCsrDer(der))).toBe('TRUST_CSR_SIGNATURE');
  });

  it('a CSR whose subject was changed after signing is TRUST_CSR_SIGNATURE', () => {
    const keys = generateKeyPair();
    const der = createCsr({ commonName: 'cloud-b' }, keys.publicKey, keys.privateKey);
    const at = der.indexOf(Buffer.from('cloud-b'));
    expect(codeOf(() => parseCsrDer(flipByte(der, at + 6, 0x03)))).toBe('TRUST_CSR_SIGNATURE');
  });

  it('a CSR that is not a CSR is TRUST_MALFORMED_PEM / TRUST_MALFORMED_CERT', () => {
    expect(codeOf(() => parseCsrPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'))).toBe('TRUST_MALFORMED_PEM');
    expect(codeOf(() => parseCsrDer(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])))).toBe('TRUST_MALFORMED_CERT');
  });
});
