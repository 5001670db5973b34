/**
 * OVA packages we write, read by independent tools: GNU tar lists the descriptor first, OpenSSL
 * verifies the `.cert` signature over the manifest with the signer's certificate, `sha256sum`
 * agrees with the manifest; and `intercloud ova verify` accepts the package signed with cloud-a's
 * certificate from the services' PKI against its Intercloud Root (exit 0), and refuses it for
 * another cloud (exit 3).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packOva, parseCertFile, parseManifest } from '../../../protocols/ova/index.js';
import { service } from '../../helpers/services.js';

const run = promisify(execFile);
const REPO = new URL('../../../', import.meta.url).pathname;
const DESCRIPTOR = `<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:href="disk1.img" ovf:id="f1"/></References><DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20"/></DiskSection><VirtualSystem ovf:id="vm"/></Envelope>\n`;

describe('OVA read by independent tools', () => {
  let dir: string;
  let ova: string;
  const pki = service('pki');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ic-ova-int-'));
    const disk = join(dir, 'disk1.img');
    await writeFile(disk, Buffer.alloc(1 << 20, 0x5a));
    const a = pki.clouds['cloud-a'];
    if (!a) throw new Error("services.json pki has no 'cloud-a': run 'scripts/services up pki'");
    ova = join(dir, 'vm.ova');
    await packOva({ out: ova, descriptor: { name: 'vm.ovf', text: DESCRIPTOR }, files: [{ name: 'disk1.img', path: disk }], signer: { keyPem: await readFile(a.key, 'utf8'), certificatePem: await readFile(a.cert, 'utf8') } });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('GNU tar lists the descriptor first and extracts the files', async () => {
    const { stdout } = await run('tar', ['-tf', ova]);
    expect(stdout.trim().split('\n')).toEqual(['vm.ovf', 'vm.mf', 'vm.cert', 'disk1.img']);
    await run('tar', ['-xf', ova, '-C', dir]);
  });

  it('sha256sum agrees with the manifest and OpenSSL verifies the signature', async () => {
    const manifest = parseManifest(await readFile(join(dir, 'vm.mf'), 'utf8'), 'vm.mf');
    for (const e of manifest) {
      const { stdout } = await run('sha256sum', [join(dir, e.file)]);
      expect(stdout.split(' ')[0]).toBe(e.digest);
    }
    const cert = parseCertFile(await readFile(join(dir, 'vm.cert'), 'utf8'), 'vm.cert');
    await writeFile(join(dir, 'sig.bin'), cert.signature);
    await writeFile(join(dir, 'signer.pem'), cert.certificatePem);
    await run('openssl', ['x509', '-in', join(dir, 'signer.pem'), '-pubkey', '-noout', '-out', join(dir, 'pub.pem')]);
    const { stdout } = await run('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig.bin'), join(dir, 'vm.mf')]);
    expect(stdout.trim()).toBe('Verified OK');
    // And the certificate chains to the services' root according to OpenSSL too.
    const chain = await run('openssl', ['verify', '-CAfile', pki.root, join(dir, 'signer.pem')]);
    expect(chain.stdout).toContain(': OK');
  });

  it('intercloud ova verify accepts it for cloud-a (exit 0) and refuses it for cloud-b (exit 3)', async () => {
    const cli = join(REPO, 'scripts/intercloud');
    const good = await run(cli, ['ova', 'verify', ova, '--root', pki.root, '--cloud', 'cloud-a', '--require-signature', '--json']);
    expect(JSON.parse(good.stdout)).toMatchObject({ verdict: 'good', signed: true, signer: { cloudId: 'cloud-a' } });
    const bad = await run(cli, ['ova', 'verify', ova, '--root', pki.root, '--cloud', 'cloud-b', '--json']).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ verdict: 'rejected', error: { code: 'OVF_OVA_UNTRUSTED' } });
  });
});
