/**
 * `intercloud ovf inspect|convert` on real fixtures, through the CLI entry point.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../../agent/cli/main.js';
import { readLibvirtDomain } from '../../../protocols/libvirt-xml/index.js';
import { FIXTURES } from './fixtures.js';

const TEST2 = join(FIXTURES, 'ovf', 'virt-manager__tests__virtconv-files__ovf_input__test2.ovf');

describe('intercloud ovf', () => {
  let out: string[];
  let err: string[];
  beforeEach(() => {
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    process.exitCode = undefined;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it('inspect --json prints the VMs and the report', async () => {
    expect(await runCli(['ovf', 'inspect', TEST2, '--json'])).toBe(0);
    const doc = JSON.parse(out.join('')) as { format: string; vms: Array<{ name: string; memoryBytes: number }>; report: { entries: unknown[] } };
    expect(doc.format).toBe('ovf');
    expect(doc.vms[0]).toMatchObject({ name: 'w2k3 32bit', memoryBytes: 1024 * 2 ** 20 });
    expect(Array.isArray(doc.report.entries)).toBe(true);
  });

  it('convert --to libvirt writes a domain and the report on stderr', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ic-cli-'));
    try {
      const file = join(dir, 'vm.xml');
      expect(await runCli(['ovf', 'convert', '--to', 'libvirt', '--domain-type', 'qemu', '--out', file, TEST2])).toBe(0);
      const vm = readLibvirtDomain(await readFile(file, 'utf8'), { source: 'vm.xml' }).value;
      expect(vm.disks.map((d) => d.bus)).toEqual(['scsi']);
      expect(err.join('')).toContain('disks[0].file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('inspect rejects a broken descriptor with its code', async () => {
    const code = await runCli(['ovf', 'inspect', join(FIXTURES, 'ovf', 'govmomi__ovf__fixtures__empty.ovf')]);
    expect(code).toBe(1);
    expect(err.join('')).toContain('OVF_NO_CONTENT');
  });
});
