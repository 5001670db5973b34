/**
 * Pure codecs of the OVF package's manifest (`.mf`) and certificate (`.cert`) files, and the
 * entry-name rule of OVA archives (DMTF DSP0243 §5.1–5.3).
 *
 * Manifest line: `SHA256(<file name>)= <hex digest>` (SHA1 lines of older producers are read but
 * never trusted). Certificate file: `SHA256(<manifest name>)= <hex signature>` then the signer's
 * certificate chain in PEM.
 */
import { IntercloudError } from '../errors/index.js';
import type { OvaErrorCode } from './errors.js';

/** One manifest line. */
export interface ManifestEntry {
  readonly algorithm: 'SHA256' | 'SHA1' | 'SHA512';
  readonly file: string;
  /** Lowercase hex. */
  readonly digest: string;
}

const LINE = /^(SHA1|SHA256|SHA512)\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$/;

function ovaError(code: OvaErrorCode, source: string, problem: string, details: Record<string, unknown> = {}): IntercloudError<OvaErrorCode> {
  return new IntercloudError(code, `'${source}': ${problem}`, { details: { source, problem, ...details } });
}

/** Parses a manifest; every non-empty line must be a digest line. */
export function parseManifest(text: string, source: string): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const m = LINE.exec(raw);
    if (!m) throw ovaError('OVF_OVA_MANIFEST', source, `line ${i + 1} is not 'SHA256(file)= digest'`, { line: i + 1 });
    out.push({ algorithm: m[1] as ManifestEntry['algorithm'], file: m[2] as string, digest: (m[3] as string).toLowerCase() });
  });
  return out;
}

/** Formats SHA-256 manifest lines in the given order. */
export function formatManifest(entries: ReadonlyArray<{ file: string; digest: string }>): string {
  return entries.map((e) => `SHA256(${e.file})= ${e.digest}\n`).join('');
}

/** A parsed `.cert` file. */
export interface CertFile {
  /** The manifest file name the signature covers. */
  readonly manifest: string;
  readonly algorithm: 'SHA256';
  /** The signature bytes. */
  readonly signature: Buffer;
  /** The PEM certificate chain, signer first. */
  readonly certificatePem: string;
}

/** Parses a `.cert` file (DSP0243 §5.2). */
export function parseCertFile(text: string, source: string): CertFile {
  const [first, ...rest] = text.split(/\r?\n/);
  const m = /^(SHA256)\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(first ?? '');
  if (!m) throw ovaError('OVF_OVA_SIGNATURE', source, "first line is not 'SHA256(manifest.mf)= signature'", { line: 1 });
  const certificatePem = rest.join('\n').trim();
  if (!certificatePem.includes('-----BEGIN CERTIFICATE-----')) throw ovaError('OVF_OVA_SIGNATURE', source, 'no pem certificate after the signature line', { line: 2 });
  return { manifest: m[2] as string, algorithm: 'SHA256', signature: Buffer.from(m[3] as string, 'hex'), certificatePem: certificatePem + '\n' };
}

/** Formats a `.cert` file. */
export function formatCertFile(manifest: string, signature: Uint8Array, certificatePem: string): string {
  return `SHA256(${manifest})= ${Buffer.from(signature).toString('hex')}\n${certificatePem.trim()}\n`;
}

/**
 * Checks a tar entry name: relative, forward slashes, no `.`/`..` segments, no NUL or backslash
 * (so extraction can never leave the target directory). Throws `OVF_OVA_PATH`.
 */
export function checkEntryName(name: string, source: string): string {
  const bad = (why: string): never => {
    throw ovaError('OVF_OVA_PATH', source, `entry '${name}' ${why}`, { entry: name });
  };
  if (name === '' || name.length > 1024) bad('has an empty or overlong name');
  if (name.includes('\0') || name.includes('\\')) bad('contains a nul or backslash');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) bad('is an absolute path');
  for (const seg of name.split('/')) {
    if (seg === '..') bad("climbs out of the package with '..'");
  }
  return name.replace(/^(\.\/)+/, '');
}
