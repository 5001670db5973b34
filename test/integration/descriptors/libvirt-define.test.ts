/**
 * Every libvirt domain XML we write (from every readable fixture) passes `virt-xml-validate`
 * (libvirt's own RelaxNG schema) and is accepted by `virsh define` on the real libvirt that
 * `scripts/services up libvirt` starts (cloud-a, QEMU driver under TCG).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDescriptor } from '../../../protocols/convert/index.js';
import { writeLibvirtDomain } from '../../../protocols/libvirt-xml/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';
import { decodeDescriptor } from '../../../protocols/xml/index.js';
import { service } from '../../helpers/services.js';
import { allFixtures, fixtureBytes } from '../../unit/descriptors/fixtures.js';

const run = promisify(execFile);

/** Every VM the readers get out of the corpus. */
function corpusVms(): Array<{ label: string; vm: VirtualMachine }> {
  const out: Array<{ label: string; vm: VirtualMachine }> = [];
  for (const f of allFixtures()) {
    let vms: readonly VirtualMachine[];
    try {
      vms = readDescriptor(decodeDescriptor(fixtureBytes(f.dir, f.name), f.name), { source: f.name, name: 'image' }).value.vms;
    } catch (err) {
      // Broken fixtures are covered by the unit tests; here only what we write matters.
      expect((err as { code?: string }).code).toMatch(/^OVF_/);
      continue;
    }
    vms.forEach((vm, i) => out.push({ label: `${f.dir}/${f.name}#${i}`, vm }));
  }
  return out;
}

describe('libvirt domain XML we write', () => {
  let dir: string;
  let uri: string;
  const vms = corpusVms();

  beforeAll(async () => {
    const cloudA = service('libvirt').instances['cloud-a'];
    if (!cloudA) throw new Error("services.json has no libvirt instance 'cloud-a': run 'scripts/services up libvirt'");
    uri = cloudA.uri;
    dir = await mkdtemp(join(tmpdir(), 'ic-desc-int-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('covers the corpus', () => {
    expect(vms.length).toBeGreaterThan(80);
  });

  it('passes virt-xml-validate for every VM of the corpus', async () => {
    for (const [i, { label, vm }] of vms.entries()) {
      const file = join(dir, `v${i}.xml`);
      await writeFile(file, writeLibvirtDomain(vm, { domainType: 'kvm' }).value);
      // virt-xml-validate exits 0 and says '<file> validates' when the schema accepts the file.
      const failure = await run('virt-xml-validate', [file, 'domain']).then(
        () => '',
        (e: { stderr: string }) => `${label}: ${e.stderr}`,
      );
      expect(failure).toBe('');
    }
  });

  it('is accepted by virsh define on cloud-a for every x86 VM of the corpus', async () => {
    // This host emulates x86 only and has no swtpm: other architectures are validated above but
    // not defined, and TPMs are dropped with a reported loss (asserted).
    let defined = 0;
    for (const [i, { label, vm }] of vms.entries()) {
      if (vm.arch !== undefined && vm.arch !== 'x86_64' && vm.arch !== 'i686') continue;
      const name = `ic-desc-it-${process.pid}-${i}`;
      const { value, report } = writeLibvirtDomain({ ...vm, name }, { domainType: 'qemu', tpm: false });
      if (vm.tpm) expect(report.entries.some((e) => e.path === 'tpm' && e.severity === 'loss')).toBe(true);
      const file = join(dir, `d${i}.xml`);
      await writeFile(file, value);
      const failure = await run('virsh', ['-c', uri, 'define', file]).then(
        () => '',
        (e: { stderr: string }) => `${label}: ${e.stderr}`,
      );
      expect(failure).toBe('');
      defined++;
      await run('virsh', ['-c', uri, 'undefine', '--nvram', name]);
    }
    expect(defined).toBeGreaterThan(80);
  }, 300_000);
});
