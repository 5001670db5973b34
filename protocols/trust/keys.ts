/**
 * Keys and signatures through Node's `crypto` (OpenSSL): ECDSA P-256 with SHA-256
 * (RFC 5758 §3.2, RFC 5480) and RSA PKCS #1 v1.5 with SHA-256 (RFC 4055). node-forge 1.4
 * has no ECDSA and its RSA is pure JavaScript, so every key generation, signature and
 * verification in the trust area goes through here.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { decode, encode, nul, oid, readOid, seq, TYPE as asn1Type, type Asn1 } from './der.js';
import { isIntercloudError } from '../errors/index.js';
import { trustError } from './errors.js';
import { OID } from './oids.js';

/** The key types a CA or gateway may use. */
export type KeyType = 'ec' | 'rsa';

/** A freshly generated key pair. */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** Generates an ECDSA P-256 (default) or RSA-3072 key pair. */
export function generateKeyPair(type: KeyType = 'ec'): KeyPair {
  return type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 3072 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** The type of `key`, or TRUST_UNSUPPORTED_ALGORITHM for anything but P-256 or RSA ≥ 2048. */
export function keyTypeOf(key: KeyObject): KeyType {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return 'ec';
  if (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return 'rsa';
  throw trustError('TRUST_UNSUPPORTED_ALGORITHM', `unsupported key '${key.asymmetricKeyType ?? 'unknown'}' (want ec p-256 or rsa >= 2048)`, {
    details: { keyType: key.asymmetricKeyType, curve: details?.namedCurve, modulusLength: details?.modulusLength },
  });
}

/** The AlgorithmIdentifier a signature by `key` carries (RFC 5758 §3.2: no parameters for ECDSA). */
export function signatureAlgorithmFor(key: KeyObject): Asn1 {
  return keyTypeOf(key) === 'ec' ? seq(oid(OID.ecdsaWithSha256)) : seq(oid(OID.sha256WithRsa), nul());
}

/** The JOSE-style name of the signature algorithm of `key` (ES256 / RS256). */
export function algorithmName(key: KeyObject): 'ES256' | 'RS256' {
  return keyTypeOf(key) === 'ec' ? 'ES256' : 'RS256';
}

/** Signs `data` with `privateKey` (ECDSA signatures DER-encoded as X.509 wants). */
export function signBytes(data: Uint8Array, privateKey: KeyObject): Buffer {
  keyTypeOf(privateKey);
  return sign('sha256', data, privateKey);
}

/** Verifies a signature; never throws for a wrong signature, only returns false. */
export function verifyBytes(data: Uint8Array, signature: Uint8Array, publicKey: KeyObject): boolean {
  try {
    return verify('sha256', data, publicKey, signature);
  } catch (err) {
    // OpenSSL rejects a signature that is not even DER (e.g. truncated): that is a bad signature.
    if (err instanceof Error) return false;
    throw err;
  }
}

const ALG_EC = encode(seq(oid(OID.ecdsaWithSha256)));
const ALG_RSA = encode(seq(oid(OID.sha256WithRsa), nul()));
const ALG_RSA_NO_NULL = encode(seq(oid(OID.sha256WithRsa)));

/**
 * True when the AlgorithmIdentifier DER `algorithm` names SHA-256 with the kind of `key`;
 * a mismatch (e.g. an RSA OID over an EC key) must not reach `verify`.
 */
export function algorithmMatchesKey(algorithm: Uint8Array, key: KeyObject): boolean {
  const alg = Buffer.from(algorithm);
  return key.asymmetricKeyType === 'ec' ? alg.equals(ALG_EC) : alg.equals(ALG_RSA) || alg.equals(ALG_RSA_NO_NULL);
}

/** SubjectPublicKeyInfo DER of a public key (RFC 5280 §4.1.2.7). */
export function spkiDer(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' });
}

/** The forge node of a SubjectPublicKeyInfo. */
export function spkiNode(publicKey: KeyObject): Asn1 {
  return decode(spkiDer(publicKey), 'subject public key info');
}

/**
 * The key type of SubjectPublicKeyInfo DER, read from the DER alone (RFC 5480 §2, RFC 3279
 * §2.3.1): ECDSA on P-256, or RSA with a modulus of at least 2048 bits; anything else is
 * TRUST_UNSUPPORTED_ALGORITHM. Loading a KeyObject costs ~150 µs with OpenSSL 3, so the
 * verifier checks a peer's key policy this way and loads the key only when it must.
 */
export function spkiKeyType(spki: Uint8Array): KeyType {
  const [algorithm, key] = (decode(spki, 'subject public key info').value as Asn1[]);
  const [algOid, params] = (algorithm?.value ?? []) as Asn1[];
  const unsupported = (what: string): never => {
    throw trustError('TRUST_UNSUPPORTED_ALGORITHM', `unsupported subject public key (${what}); want ec p-256 or rsa >= 2048`);
  };
  const id = readOid(algOid, 'public key algorithm');
  if (id === OID.ecPublicKey) {
    if (params === undefined || params.type !== asn1Type.OID || readOid(params, 'named curve') !== OID.prime256v1) unsupported('ec curve');
    return 'ec';
  }
  if (id !== OID.rsaEncryption) unsupported(`algorithm ${id}`);
  const bitString = typeof key?.value === 'string' ? key.value : '';
  const rsaKey = decode(Buffer.from(bitString, 'latin1').subarray(1), 'rsa public key').value as Asn1[];
  const modulus = typeof rsaKey[0]?.value === 'string' ? Buffer.from(rsaKey[0].value, 'latin1') : Buffer.alloc(0);
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  const bitsLength = modulus.length === i ? 0 : (modulus.length - i) * 8 - Math.clz32(modulus[i]!) + 24;
  if (bitsLength < 2048) unsupported(`rsa modulus of ${bitsLength} bits`);
  return 'rsa';
}

/** A public key from SubjectPublicKeyInfo DER; anything unusable is TRUST_UNSUPPORTED_ALGORITHM. */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw trustError('TRUST_UNSUPPORTED_ALGORITHM', 'cannot load the subject public key', { cause: err });
  }
  keyTypeOf(key);
  return key;
}

/**
 * Key identifier by RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING
 * value (without tag, length and unused-bits byte).
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const node = decode(spki, 'subject public key info');
  const bitString = (node.value as Asn1[])[1];
  const value = typeof bitString?.value === 'string' ? Buffer.from(bitString.value, 'latin1').subarray(1) : Buffer.alloc(0);
  return createHash('sha1').update(value).digest();
}

/** A private key from PEM (PKCS #8 or SEC1/PKCS #1). */
export function privateKeyFromPem(pem: string): KeyObject {
  try {
    const key = createPrivateKey(pem);
    keyTypeOf(key);
    return key;
  } catch (err) {
    if (isIntercloudError(err)) throw err;
    throw trustError('TRUST_MALFORMED_PEM', 'cannot load the private key pem', { cause: err });
  }
}

/** PEM (PKCS #8) of a private key. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
