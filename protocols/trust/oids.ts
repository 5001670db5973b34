/** Object identifiers the trust area reads and writes. */
export const OID = {
  // RFC 5280 §4.1.2.4 / X.520 attribute types
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  // RFC 5280 §4.2.1 certificate extensions
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  cRLReason: '2.5.29.21',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  // RFC 5280 §4.2.1.12 key purposes
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  // RFC 6120 §13.7.1.4 id-on-xmppAddr
  xmppAddr: '1.3.6.1.5.5.7.8.5',
  // RFC 5480 / RFC 5758 §3.2 ECDSA, RFC 4055 RSA
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  // RFC 2985 §5.4.2 PKCS #9 extensionRequest (in a CSR's attributes)
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;
