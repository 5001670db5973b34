/**
 * OVA packages on disk (DMTF DSP0243 §5.3): a tar whose first entry is the OVF descriptor,
 * followed by the manifest (`.mf`, SHA-256) and optionally the certificate (`.cert`), then the
 * referenced files. Packing and verifying stream every file (tar-stream): disks are never held in
 * memory; only the descriptor, manifest and certificate are buffered, each under a cap.
 * This is the I/O side; the codecs are in `manifest.ts`.
 */
import { createHash, sign as cryptoSign, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { IntercloudError } from '../errors/index.js';
import { parseCertificatesPem, verifyCertificatePem, type Crl, type PeerIdentity } from '../trust/index.js';
import { DEFAULT_MAX_BYTES } from '../xml/index.js';
import type { OvaErrorCode } from './errors.js';
import { checkEntryName, formatCertFile, formatManifest, parseCertFile, parseManifest, type ManifestEntry } from './manifest.js';

const SMALL_CAP = 1024 * 1024;

function ovaError(code: OvaErrorCode, source: string, problem: string, details: Record<string, unknown> = {}, cause?: unknown): IntercloudError<OvaErrorCode> {
  return new IntercloudError(code, `'${source}': ${problem}`, { cause, details: { source, problem, ...details } });
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Options of {@link packOva}. */
export interface PackOvaOptions {
  /** The `.ova` to write. */
  readonly out: string;
  /** The descriptor: its entry name and text. */
  readonly descriptor: { readonly name: string; readonly text: string };
  /** Files the descriptor references, in References order: entry name and local path. */
  readonly files: ReadonlyArray<{ readonly name: string; readonly path: string }>;
  /** Sign the manifest with the cloud's key; the certificate (chain) goes into the `.cert`. */
  readonly signer?: { readonly keyPem: string; readonly certificatePem: string };
}

/** What {@link packOva} wrote. */
export interface PackedOva {
  readonly manifest: readonly ManifestEntry[];
  readonly entries: readonly string[];
  readonly signed: boolean;
}

/**
 * Writes an OVA: descriptor, `.mf`, `.cert` (when signing), then the files streamed from disk.
 * Each file is read twice (hash, then copy) so the manifest can precede the files.
 */
export async function packOva(options: PackOvaOptions): Promise<PackedOva> {
  const source = basename(options.out);
  const descName = checkEntryName(options.descriptor.name, source);
  if (!descName.endsWith('.ovf')) throw ovaError('OVF_OVA_LAYOUT', source, `descriptor entry '${descName}' must end in '.ovf'`);
  const base = descName.slice(0, -4);
  const descBytes = Buffer.from(options.descriptor.text, 'utf8');
  const manifest: ManifestEntry[] = [{ algorithm: 'SHA256', file: descName, digest: createHash('sha256').update(descBytes).digest('hex') }];
  const seen = new Set([descName]);
  const sizes: number[] = [];
  for (const f of options.files) {
    const name = checkEntryName(f.name, source);
    if (seen.has(name)) throw ovaError('OVF_OVA_LAYOUT', source, `file '${name}' is listed twice`);
    seen.add(name);
    sizes.push((await stat(f.path)).size);
    manifest.push({ algorithm: 'SHA256', file: name, digest: await sha256File(f.path) });
  }
  const mfName = `${base}.mf`;
  const mfBytes = Buffer.from(formatManifest(manifest), 'utf8');
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(options.out));
  const add = (name: string, data: Buffer) =>
    new Promise<void>((res, rej) => {
      pack.entry({ name, size: data.length, mode: 0o644 }, data, (err) => (err ? rej(err) : res()));
    });
  await add(descName, descBytes);
  await add(mfName, mfBytes);
  const entries = [descName, mfName];
  if (options.signer) {
    // DSP0243 §5.2: the signature covers the manifest file's bytes.
    const signature = cryptoSign('sha256', mfBytes, options.signer.keyPem);
    const certName = `${base}.cert`;
    await add(certName, Buffer.from(formatCertFile(mfName, signature, options.signer.certificatePem), 'utf8'));
    entries.push(certName);
  }
  for (const [i, f] of options.files.entries()) {
    const name = manifest[i + 1]?.file as string;
    await new Promise<void>((res, rej) => {
      const entry = pack.entry({ name, size: sizes[i] as number, mode: 0o644 }, (err) => (err ? rej(err) : res()));
      pipeline(createReadStream(f.path), entry).catch(rej);
    });
    entries.push(name);
  }
  pack.finalize();
  await written;
  return { manifest, entries, signed: options.signer !== undefined };
}

/** Options of {@link verifyOva}. */
export interface VerifyOvaOptions {
  /** PEM of the trust anchors (the Intercloud Root); without it a signature is checked but not trusted. */
  readonly rootsPem?: string;
  readonly crls?: readonly Crl[];
  /** Validation time for the certificate; default now. */
  readonly now?: Date;
  /** Expect the signer to be this cloud (URI SAN). */
  readonly expectCloudId?: string;
  /** Fail when the package carries no `.cert`. */
  readonly requireSignature?: boolean;
  /** Fail when the package carries no `.mf` (default true). */
  readonly requireManifest?: boolean;
  /** Also extract every file into this directory while verifying. */
  readonly extractTo?: string;
  /** Descriptor size cap. */
  readonly maxDescriptorBytes?: number;
}

/** A verified OVA. */
export interface VerifiedOva {
  readonly descriptorName: string;
  readonly descriptor: string;
  readonly files: ReadonlyArray<{ readonly name: string; readonly sizeBytes: number; readonly sha256: string }>;
  readonly manifest?: readonly ManifestEntry[];
  /** Whether a `.cert` signature verified over the manifest. */
  readonly signed: boolean;
  /** The signer, when its certificate chained to `rootsPem`. */
  readonly signer?: PeerIdentity;
}

/** Hashes what flows through, optionally keeping it (small entries). */
class Tap extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  readonly kept: Buffer[] = [];
  constructor(private readonly keepUpTo: number, private readonly onOver: () => Error) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    if (this.keepUpTo > 0) {
      if (this.size > this.keepUpTo) return cb(this.onOver());
      this.kept.push(chunk);
    }
    cb(null, chunk);
  }
}

/**
 * Reads an OVA as a stream, checking the layout, entry names, the manifest digests of every file
 * and the signature (and, with `rootsPem`, the signer's certificate against the Intercloud Root).
 */
export async function verifyOva(path: string, options: VerifyOvaOptions = {}): Promise<VerifiedOva> {
  const source = basename(path);
  const extract = tar.extract();
  const input = createReadStream(path);
  // The feeding pipeline settles to its error (or undefined) so an early refusal below never
  // leaves it as an unhandled rejection; its error is reported when the loop did not fail first.
  const fed: Promise<unknown> = pipeline(input, extract).then(
    () => undefined,
    (err: unknown) => err,
  );
  let descriptorName: string | undefined;
  let descriptor = '';
  let mf: { name: string; bytes: Buffer } | undefined;
  let cert: { name: string; text: string } | undefined;
  const files: Array<{ name: string; sizeBytes: number; sha256: string }> = [];
  const seen = new Set<string>();
  const target = options.extractTo === undefined ? undefined : resolve(options.extractTo);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      if (header.type === 'directory') {
        entry.resume();
        continue;
      }
      const name = checkEntryName(header.name, source);
      if (header.type !== 'file' && header.type !== 'contiguous-file') {
        throw ovaError('OVF_OVA_LAYOUT', source, `entry '${name}' is a ${header.type}, only regular files are allowed`, { entry: name });
      }
      if (seen.has(name)) throw ovaError('OVF_OVA_LAYOUT', source, `entry '${name}' appears twice`, { entry: name });
      seen.add(name);
      if (descriptorName === undefined) {
        // DSP0243 §5.3: the descriptor is the first entry.
        if (!name.endsWith('.ovf')) throw ovaError('OVF_OVA_LAYOUT', source, `first entry '${name}' is not the '.ovf' descriptor`, { entry: name });
        descriptorName = name;
      }
      const small = name === descriptorName ? (options.maxDescriptorBytes ?? DEFAULT_MAX_BYTES) : name.endsWith('.mf') || name.endsWith('.cert') ? SMALL_CAP : 0;
      const tap = new Tap(small, () => ovaError('OVF_OVA_TOO_LARGE', source, `entry '${name}' exceeds ${small} bytes`, { entry: name }));
      let sink: NodeJS.WritableStream;
      if (target !== undefined && small === 0) {
        const out = resolve(target, name);
        if (!out.startsWith(target + sep)) throw ovaError('OVF_OVA_PATH', source, `entry '${name}' resolves outside the target directory`, { entry: name });
        await mkdir(dirname(out), { recursive: true });
        sink = createWriteStream(out);
      } else {
        sink = new Transform({ transform: (_c, _e, cb) => cb() });
        (sink as Transform).resume();
      }
      await pipeline(entry as unknown as Readable, tap, sink);
      const body = Buffer.concat(tap.kept);
      if (name === descriptorName) descriptor = body.toString('utf8');
      else if (name.endsWith('.mf')) mf = { name, bytes: body };
      else if (name.endsWith('.cert')) cert = { name, text: body.toString('utf8') };
      if (!name.endsWith('.mf') && !name.endsWith('.cert')) files.push({ name, sizeBytes: tap.size, sha256: tap.hash.digest('hex') });
    }
    const feedError = await fed;
    if (feedError !== undefined) throw feedError;
  } catch (err) {
    input.destroy();
    extract.destroy();
    await fed;
    if (err instanceof IntercloudError) throw err;
    throw ovaError('OVF_OVA_LAYOUT', source, `not a readable tar archive: ${err instanceof Error ? err.message : String(err)}`, {}, err);
  }
  if (descriptorName === undefined) throw ovaError('OVF_OVA_LAYOUT', source, 'archive holds no descriptor');

  let manifest: ManifestEntry[] | undefined;
  if (mf) {
    manifest = parseManifest(mf.bytes.toString('utf8'), `${source}:${mf.name}`);
    const listed = new Map<string, ManifestEntry>();
    for (const e of manifest) {
      if (e.algorithm !== 'SHA256') throw ovaError('OVF_OVA_MANIFEST', source, `manifest line for '${e.file}' uses ${e.algorithm}; only SHA256 is accepted`, { entry: e.file });
      listed.set(checkEntryName(e.file, source).replace(/^(\.\/)+/, ''), e);
    }
    for (const f of files) {
      const e = listed.get(f.name);
      if (!e) throw ovaError('OVF_OVA_MANIFEST', source, `file '${f.name}' is not in the manifest`, { entry: f.name });
      if (e.digest !== f.sha256) throw ovaError('OVF_OVA_MANIFEST', source, `sha-256 of '${f.name}' is '${f.sha256}', manifest says '${e.digest}'`, { entry: f.name, expected: e.digest, actual: f.sha256 });
      listed.delete(f.name);
    }
    const missing = [...listed.keys()];
    if (missing.length > 0) throw ovaError('OVF_OVA_MANIFEST', source, `manifest lists '${missing[0]}' which is not in the archive`, { entry: missing[0] });
  } else if (options.requireManifest !== false) {
    throw ovaError('OVF_OVA_MANIFEST', source, 'package has no .mf manifest');
  }

  let signed = false;
  let signer: PeerIdentity | undefined;
  if (cert) {
    const parsed = parseCertFile(cert.text, `${source}:${cert.name}`);
    if (!mf || basename(parsed.manifest) !== basename(mf.name)) throw ovaError('OVF_OVA_SIGNATURE', source, `certificate signs '${parsed.manifest}', which is not the package's manifest`);
    let ok = false;
    try {
      ok = cryptoVerify('sha256', mf.bytes, new X509Certificate(parsed.certificatePem).publicKey, parsed.signature);
    } catch (err) {
      throw ovaError('OVF_OVA_SIGNATURE', source, `cannot check the signature: ${err instanceof Error ? err.message : String(err)}`, {}, err);
    }
    if (!ok) throw ovaError('OVF_OVA_SIGNATURE', source, `signature in '${cert.name}' does not match the manifest`);
    signed = true;
    if (options.rootsPem !== undefined) {
      try {
        signer = verifyCertificatePem(parsed.certificatePem, {
          roots: parseCertificatesPem(options.rootsPem),
          now: options.now ?? new Date(),
          ...(options.crls ? { crls: options.crls } : {}),
          ...(options.expectCloudId ? { expectCloudId: options.expectCloudId } : {}),
        });
      } catch (err) {
        const code = err instanceof IntercloudError ? err.code : 'unknown';
        throw ovaError('OVF_OVA_UNTRUSTED', source, `signing certificate is not trusted (${code})`, { trustCode: code }, err);
      }
    }
  } else if (options.requireSignature) {
    throw ovaError('OVF_OVA_SIGNATURE', source, 'package is not signed (no .cert)');
  }
  return { descriptorName, descriptor, files, ...(manifest ? { manifest } : {}), signed, ...(signer ? { signer } : {}) };
}

/** Local path of an href relative to a descriptor file (for packing); refuses hrefs that climb out. */
export function localFileOf(descriptorPath: string, href: string): { name: string; path: string } {
  const name = checkEntryName(href, basename(descriptorPath));
  return { name, path: join(dirname(descriptorPath), name) };
}
