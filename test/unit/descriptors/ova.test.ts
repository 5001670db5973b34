/**
 * OVA packages: pack and verify with a SHA-256 manifest and a signature by a cloud certificate
 * issued by a test Intercloud Root; tampered, mis-signed, untrusted and path-climbing archives are
 * refused with their codes; disks stream (bounded memory).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { packOva, parseManifest, verifyOva, checkEntryName } from '../../../protocols/ova/index.js';
import { certificateToPem, createRootCertificate, generateKeyPair, issueGatewayCertificate, privateKeyToPem } from '../../../protocols/trust/index.js';

const DESCRIPTOR = `<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:href="disk1.vmdk" ovf:id="f1"/></References><VirtualSystem ovf:id="vm"/></Envelope>\n`;

function pki(cloudId: string) {
  const now = new Date();
  const rootKeys = generateKeyPair();
  const root = createRootCertificate({ ...rootKeys, now });
  const leafKeys = generateKeyPair();
  const leaf = issueGatewayCertificate({ certificate: root, privateKey: rootKeys.privateKey }, { cloudId, publicKey: leafKeys.publicKey, now });
  return { rootPem: certificateToPem(root.der), certPem: certificateToPem(leaf.der), keyPem: privateKeyToPem(leafKeys.privateKey), otherKeyPem: privateKeyToPem(generateKeyPair().privateKey) };
}

async function rawTar(out: string, entries: Array<{ name: string; data?: string; type?: 'file' | 'symlink'; linkname?: string }>): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(out));
  for (const e of entries) {
    await new Promise<void>((res, rej) => {
      if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '/etc/passwd' }, (err) => (err ? rej(err) : res()));
      else pack.entry({ name: e.name }, e.data ?? '', (err) => (err ? rej(err) : res()));
    });
  }
  pack.finalize();
  await done;
}

async function codeOf(p: Promise<unknown>): Promise<IntercloudError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(IntercloudError);
    return e as IntercloudError;
  }
  throw new Error('expected a rejection');
}

describe('ova', () => {
  let dir: string;
  let disk: string;
  const a = pki('cloud-a');
  const other = pki('cloud-b');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ic-ova-'));
    disk = join(dir, 'disk1.vmdk');
    await writeFile(disk, Buffer.alloc(300_000, 7));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('packs descriptor first, then manifest and certificate, and verifies the signer against the root', async () => {
    const out = join(dir, 'signed.ova');
    const packed = await packOva({ out, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [{ name: 'disk1.vmdk', path: disk }], signer: { keyPem: a.keyPem, certificatePem: a.certPem } });
    expect(packed.entries).toEqual(['vm.ovf', 'vm.mf', 'vm.cert', 'disk1.vmdk']);
    const v = await verifyOva(out, { rootsPem: a.rootPem, requireSignature: true, expectCloudId: 'cloud-a' });
    expect(v.descriptor).toBe(DESCRIPTOR);
    expect(v.signed).toBe(true);
    expect(v.signer?.cloudId).toBe('cloud-a');
    expect(v.files.map((f) => f.name)).toEqual(['vm.ovf', 'disk1.vmdk']);
    expect(v.manifest?.map((m) => m.file)).toEqual(['vm.ovf', 'disk1.vmdk']);
  });

  it('extracts while verifying', async () => {
    const out = join(dir, 'x.ova');
    await packOva({ out, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [{ name: 'disk1.vmdk', path: disk }] });
    const target = join(dir, 'extract');
    await verifyOva(out, { extractTo: target });
    expect(await readFile(join(target, 'disk1.vmdk'))).toEqual(await readFile(disk));
  });

  it('refuses a file whose digest does not match the manifest, naming it', async () => {
    const out = join(dir, 'tampered.ova');
    const mf = `SHA256(vm.ovf)= ${'0'.repeat(64)}\n`;
    await rawTar(out, [{ name: 'vm.ovf', data: DESCRIPTOR }, { name: 'vm.mf', data: mf }]);
    const e = await codeOf(verifyOva(out));
    expect(e.code).toBe('OVF_OVA_MANIFEST');
    expect(e.details['entry']).toBe('vm.ovf');
  });

  it('refuses a file missing from the manifest and a malformed manifest', async () => {
    const out = join(dir, 'unlisted.ova');
    await rawTar(out, [{ name: 'vm.ovf', data: DESCRIPTOR }, { name: 'vm.mf', data: '' }]);
    expect((await codeOf(verifyOva(out))).code).toBe('OVF_OVA_MANIFEST');
    expect(() => parseManifest('MD5(x)= 00\n', 'm.mf')).toThrow(IntercloudError);
  });

  it('refuses a signature made with another key', async () => {
    const out = join(dir, 'badsig.ova');
    await packOva({ out, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [], signer: { keyPem: a.otherKeyPem, certificatePem: a.certPem } });
    expect((await codeOf(verifyOva(out, { rootsPem: a.rootPem }))).code).toBe('OVF_OVA_SIGNATURE');
  });

  it('refuses a signer certificate from another root, keeping the trust verdict as cause', async () => {
    const out = join(dir, 'untrusted.ova');
    await packOva({ out, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [], signer: { keyPem: other.keyPem, certificatePem: other.certPem } });
    const e = await codeOf(verifyOva(out, { rootsPem: a.rootPem }));
    expect(e.code).toBe('OVF_OVA_UNTRUSTED');
    expect((e.cause as IntercloudError).code).toBe('TRUST_UNKNOWN_ISSUER');
  });

  it('refuses an unsigned package when a signature is required', async () => {
    const out = join(dir, 'unsigned.ova');
    await packOva({ out, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [] });
    expect((await codeOf(verifyOva(out, { requireSignature: true }))).code).toBe('OVF_OVA_SIGNATURE');
  });

  it("refuses '../' entries before writing anything", async () => {
    const out = join(dir, 'climb.ova');
    await rawTar(out, [{ name: 'vm.ovf', data: DESCRIPTOR }, { name: '../evil', data: 'x' }]);
    const target = join(dir, 'climb-target');
    const e = await codeOf(verifyOva(out, { extractTo: target }));
    expect(e.code).toBe('OVF_OVA_PATH');
    expect(e.details['entry']).toBe('../evil');
    expect((await readdir(dir)).includes('evil')).toBe(false);
    expect(() => checkEntryName('a/../../b', 'x')).toThrow(IntercloudError);
    expect(() => checkEntryName('/etc/passwd', 'x')).toThrow(IntercloudError);
  });

  it('refuses a descriptor that is not first, and symlinks', async () => {
    const notFirst = join(dir, 'order.ova');
    await rawTar(notFirst, [{ name: 'disk1.vmdk', data: 'x' }, { name: 'vm.ovf', data: DESCRIPTOR }]);
    expect((await codeOf(verifyOva(notFirst))).code).toBe('OVF_OVA_LAYOUT');
    const link = join(dir, 'link.ova');
    await rawTar(link, [{ name: 'vm.ovf', data: DESCRIPTOR }, { name: 'disk1.vmdk', type: 'symlink' }]);
    expect((await codeOf(verifyOva(link))).code).toBe('OVF_OVA_LAYOUT');
  });

  it('refuses an archive that is not a tar', async () => {
    const junk = join(dir, 'junk.ova');
    await writeFile(junk, Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 256)));
    expect((await codeOf(verifyOva(junk))).code).toMatch(/^OVF_OVA_(LAYOUT|PATH)$/);
  });

  it('streams a 256 MiB disk through pack and verify in bounded memory', async () => {
    const big = join(dir, 'big.img');
    await writeFile(big, '');
    await truncate(big, 256 * 1024 * 1024);
    const out = join(dir, 'big.ova');
    const rss0 = process.memoryUsage().rss;
    await packOva({ out, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [{ name: 'disk1.vmdk', path: big }] });
    const v = await verifyOva(out);
    expect(v.files[1]?.sizeBytes).toBe(256 * 1024 * 1024);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(96 * 1024 * 1024);
  }, 60_000);
});
