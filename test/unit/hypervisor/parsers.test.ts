/** Pure parts of the hypervisor adapters: virsh/qemu-img output, host keys, shell quoting, streams. */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../../adapters/hypervisor/libvirt/command-runner.js';
import { hostKeyMatches, knownHostKeys, sha256Fingerprint } from '../../../adapters/hypervisor/libvirt/host-key.js';
import {
  clipExtents, parseDomstate, parseNames, parseNodeinfo, parseNodememstats, parsePhysical, parsePoolInfo,
  parseBackingFile, parseQemuImgInfo, parseQemuImgMap, parseVolList, sumDomstatsVcpus,
} from '../../../adapters/hypervisor/libvirt/virsh-output.js';
import { ExactLength } from '../../../adapters/hypervisor/streams.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

describe('virsh and qemu-img output', () => {
  it('reads nodeinfo, nodememstats, pool-info, vol-info and domstats as libvirt 9 prints them', () => {
    expect(parseNodeinfo('CPU model:           x86_64\nCPU(s):              2\nCPU frequency:       2995 MHz\nMemory size:         24684096 KiB\n'))
      .toEqual({ cpus: 2, memoryBytes: 24684096 * 1024 });
    expect(parseNodememstats('total  :             24684096 KiB\nfree   :             22000000 KiB\nbuffers:                10000 KiB\ncached :               500000 KiB\n'))
      .toEqual({ totalBytes: 24684096 * 1024, freeBytes: (22000000 + 10000 + 500000) * 1024 });
    expect(parsePoolInfo('Name:           default\nState:          running\nCapacity:       270553174016 bytes\nAllocation:     24648220672 bytes\nAvailable:      245904953344 bytes\n'))
      .toEqual({ capacityBytes: 270553174016, availableBytes: 245904953344 });
    expect(parsePhysical('Name:           zz-odd\nType:           file\nCapacity:       196616 bytes\nPhysical:       196616 bytes\n')).toBe(196616);
    expect(sumDomstatsVcpus('Domain: \'a\'\n  vcpu.current=2\n  vcpu.maximum=2\n  vcpu.0.state=1\n\nDomain: \'b\'\n  vcpu.current=1\n')).toBe(3);
  });

  it('maps every libvirt domain state to a power state', () => {
    expect(parseDomstate('running\n')).toBe('running');
    expect(parseDomstate('shut off\n')).toBe('stopped');
    expect(parseDomstate('paused')).toBe('paused');
    expect(parseDomstate('crashed')).toBe('stopped');
    expect(parseDomstate('pmsuspended')).toBe('paused');
    expect(parseDomstate('no state')).toBe('other');
  });

  it('reads names and volume tables with or without the header', () => {
    expect(parseNames('a\n\n b \n')).toEqual(['a', 'b']);
    const rows = [{ name: 'x.qcow2', path: '/var/lib/libvirt/images/x.qcow2' }, { name: 'y', path: '/p/y' }];
    expect(parseVolList(' Name      Path\n-----------------\n x.qcow2   /var/lib/libvirt/images/x.qcow2\n y  /p/y\n')).toEqual(rows);
    expect(parseVolList(' x.qcow2   /var/lib/libvirt/images/x.qcow2\n y  /p/y\n')).toEqual(rows);
  });

  it('reads qemu-img map of a real sparse file, merges runs and cuts at the length', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv-map-'));
    try {
      const f = join(dir, 'img');
      execFileSync('truncate', ['-s', '3000000', f]);
      execFileSync('dd', ['if=/dev/urandom', `of=${f}`, 'bs=65536', 'count=2', 'conv=notrunc', 'status=none']);
      const map = parseQemuImgMap(execFileSync('qemu-img', ['map', '-f', 'raw', '--output=json', f]).toString());
      const cut = clipExtents(map, 3000000);
      expect(cut[0]).toEqual({ offset: 0, length: 131072, data: true });
      expect(cut.at(-1)!.offset + cut.at(-1)!.length).toBe(3000000);
      expect(cut.filter((e) => e.data).reduce((n, e) => n + e.length, 0)).toBe(131072);
      expect(parseQemuImgInfo(execFileSync('qemu-img', ['info', '-f', 'raw', '--output=json', f]).toString()).format).toBe('raw');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the backing file of a real qcow2 overlay (resolved path and declared format), none for a plain image', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv-backing-'));
    try {
      const base = join(dir, 'base.raw');
      execFileSync('truncate', ['-s', '1048576', base]);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', 'base.raw', join(dir, 'ovl.qcow2')]);
      const info = (f: string): string => execFileSync('qemu-img', ['info', '-U', '--output=json', f]).toString();
      // The overlay names its base relatively; qemu resolves it against the overlay's folder.
      expect(parseBackingFile(info(join(dir, 'ovl.qcow2')))).toEqual({ file: base, format: 'raw' });
      expect(parseBackingFile(info(base))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses output it cannot read with LIBVIRT_OUTPUT_INVALID', () => {
    for (const bad of [() => parseNodeinfo('garbage'), () => parseQemuImgMap('{'), () => parseQemuImgMap('[{"start":5,"length":1,"data":true}]'), () => parsePoolInfo('')]) {
      let err: unknown;
      try {
        bad();
      } catch (e) {
        err = e;
      }
      expect(isIntercloudError(err, 'LIBVIRT_OUTPUT_INVALID')).toBe(true);
    }
  });
});

describe('ssh host keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-keys-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
  const pub = readFileSync(join(dir, 'k.pub'), 'utf8').trim().split(' ');
  const blob = Buffer.from(pub[1]!, 'base64');
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'k.pub')]).toString().split(' ')[1]!;
  rmSync(dir, { recursive: true, force: true });

  it('computes the fingerprint ssh-keygen prints', () => {
    expect(sha256Fingerprint(blob)).toBe(fp);
    expect(hostKeyMatches({ fingerprint: fp }, blob, '127.0.0.1', 22322)).toBe(true);
    expect(hostKeyMatches({ fingerprint: fp }, randomBytes(51), '127.0.0.1', 22322)).toBe(false);
  });

  it('matches plain and hashed known_hosts entries for [host]:port only', () => {
    const plain = `# comment\n[127.0.0.1]:22322 ${pub[0]} ${pub[1]}\nother.host ${pub[0]} AAAA\n`;
    expect(knownHostKeys(plain, '127.0.0.1', 22322)).toHaveLength(1);
    expect(hostKeyMatches({ knownHosts: plain }, blob, '127.0.0.1', 22322)).toBe(true);
    expect(hostKeyMatches({ knownHosts: plain }, blob, '127.0.0.1', 22)).toBe(false);
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[127.0.0.1]:22322').digest('base64');
    const hashed = `|1|${salt.toString('base64')}|${hash} ${pub[0]} ${pub[1]}\n`;
    expect(hostKeyMatches({ knownHosts: hashed }, blob, '127.0.0.1', 22322)).toBe(true);
    expect(hostKeyMatches({ knownHosts: `@revoked [127.0.0.1]:22322 ${pub[0]} ${pub[1]}\n` }, blob, '127.0.0.1', 22322)).toBe(false);
  });

  it('enforces @revoked over a plain line for the same key, under any host pattern', () => {
    const listed = `[127.0.0.1]:22322 ${pub[0]} ${pub[1]}\n`;
    expect(hostKeyMatches({ knownHosts: `${listed}@revoked [127.0.0.1]:22322 ${pub[0]} ${pub[1]}\n` }, blob, '127.0.0.1', 22322)).toBe(false);
    expect(hostKeyMatches({ knownHosts: `@revoked other.host ${pub[0]} ${pub[1]}\n${listed}` }, blob, '127.0.0.1', 22322)).toBe(false);
    expect(knownHostKeys(`${listed}@revoked * ${pub[0]} ${pub[1]}\n`, '127.0.0.1', 22322)).toEqual([]);
    // a revoked other key leaves this one accepted
    expect(hostKeyMatches({ knownHosts: `${listed}@revoked * ${pub[0]} AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n` }, blob, '127.0.0.1', 22322)).toBe(true);
  });

  it('does not accept a different key of the same type', () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
    expect(hostKeyMatches({ fingerprint: fp }, other, '127.0.0.1', 22322)).toBe(false);
  });
});

describe('shell quoting', () => {
  it('round-trips any argument through sh', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0')), (arg) => {
      const out = execFileSync('sh', ['-c', `printf %s ${shellQuote(arg)}`]).toString();
      expect(out).toBe(arg);
    }), { numRuns: 60 });
  });
});

describe('ExactLength', () => {
  const run = async (chunks: Buffer[], expected: number): Promise<unknown> => {
    const g = new ExactLength(expected, 'test');
    Readable.from(chunks).pipe(g);
    try {
      for await (const _c of g) { /* drain */ }
      return undefined;
    } catch (e) {
      return e;
    }
  };
  it('passes exactly the declared length and fails short or long streams with their codes', async () => {
    expect(await run([Buffer.alloc(10), Buffer.alloc(5)], 15)).toBeUndefined();
    expect(isIntercloudError(await run([Buffer.alloc(10)], 15), 'HV_STREAM_SHORT')).toBe(true);
    expect(isIntercloudError(await run([Buffer.alloc(10), Buffer.alloc(6)], 15), 'HV_STREAM_LONG')).toBe(true);
  });
});
