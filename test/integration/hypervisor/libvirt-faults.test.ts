/**
 * Bad input and faults of the libvirt adapter against the real sshd and libvirtd: each a coded
 * error, nothing left half-made.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { libvirt, libvirtSshConfig, refreshPool, sshd, virsh } from './env.js';

const MiB = 1024 * 1024;

async function failure(p: Promise<unknown>): Promise<IntercloudError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isIntercloudError(err), `expected an IntercloudError, got ${String(err)}`).toBe(true);
  return err as IntercloudError;
}

function volumes(cloud: 'cloud-a' | 'cloud-b', pool?: string): string[] {
  const l = libvirt(cloud);
  refreshPool(l.uri, pool ?? l.pool);
  return virsh(l.uri, 'vol-list', '--pool', pool ?? l.pool).split('\n').map((x) => x.trim().split(/\s+/)[0] ?? '').filter((x) => x !== '');
}

describe('libvirt adapter: faults', () => {
  let dir: string;
  const run = `flt${randomBytes(3).toString('hex')}`;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hv-faults-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('unreachable host: LIBVIRT_UNREACHABLE with the socket error', async () => {
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { port: 1, connectTimeoutMs: 3000 }));
    const err = await failure(hv.listVms());
    expect(err.code).toBe('LIBVIRT_UNREACHABLE');
    expect(err.details['errno']).toBe('ECONNREFUSED');
    await hv.close();
  });

  it('wrong pinned fingerprint: LIBVIRT_HOST_KEY, and nothing runs', async () => {
    const wrong = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { hostKeyFingerprint: wrong }));
    const err = await failure(hv.listVms());
    expect(err.code).toBe('LIBVIRT_HOST_KEY');
    expect(err.details['presented']).toBe(sshd().hostKeyFingerprint);
    await hv.close();
  });

  it('known_hosts without the server key: LIBVIRT_HOST_KEY; with it: connects', async () => {
    const s = sshd();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
    const otherPub = readFileSync(join(dir, 'other.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(join(dir, 'known_hosts_wrong'), `[${s.host}]:${s.port} ${otherPub}\n`);
    const bad = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { hostKeyFingerprint: undefined, knownHostsFile: join(dir, 'known_hosts_wrong') }));
    expect((await failure(bad.listVms())).code).toBe('LIBVIRT_HOST_KEY');
    await bad.close();
    const good = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { hostKeyFingerprint: undefined, knownHostsFile: s.knownHostsFile }));
    expect(Array.isArray(await good.listVms())).toBe(true);
    await good.close();
  });

  it('a key the server does not accept: LIBVIRT_AUTH', async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'stranger')]);
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { privateKeyFile: join(dir, 'stranger') }));
    const err = await failure(hv.listVms());
    expect(err.code).toBe('LIBVIRT_AUTH');
    await hv.close();
  });

  it('virsh missing on the host (bogus path, over ssh and locally): LIBVIRT_COMMAND_MISSING', async () => {
    const remote = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { virsh: '/nonexistent/virsh' }));
    const err = await failure(remote.listVms());
    expect(err.code).toBe('LIBVIRT_COMMAND_MISSING');
    expect(err.details['exitStatus']).toBe(127);
    await remote.close();
    const { ssh: _ssh, ...localConfig } = libvirtSshConfig('cloud-a', { virsh: '/nonexistent/virsh' });
    const local = createHypervisor('libvirt', localConfig);
    expect((await failure(local.vmState('x'))).code).toBe('LIBVIRT_COMMAND_MISSING');
    await local.close();
  });

  it('qemu-img missing on the host: LIBVIRT_COMMAND_MISSING from statDisk', async () => {
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { qemuImg: '/nonexistent/qemu-img' }));
    const name = `${run}-noqi`;
    await hv.defineVm({ name, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB, disks: [{ capacityBytes: 8 * MiB, bus: 'virtio' }], cdroms: [], nics: [] });
    try {
      const err = await failure(hv.statDisk(name, '0'));
      expect(err.code).toBe('LIBVIRT_COMMAND_MISSING');
      expect(err.details['exitStatus']).toBe(127);
    } finally {
      await hv.undefineVm(name, { removeStorage: true });
      await hv.close();
    }
  });

  it('local mode runs the same commands without ssh', async () => {
    const { ssh: _ssh, ...localConfig } = libvirtSshConfig('cloud-a');
    const local = createHypervisor('libvirt', localConfig);
    const remote = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
    try {
      // Other projects' VMs come and go in this libvirtd meanwhile: the local listing must equal
      // the remote one taken just before or just after it.
      const before = await remote.listVms();
      const seen = await local.listVms();
      const after = await remote.listVms();
      expect([before, after]).toContainEqual(seen);
      expect(seen.every((v) => typeof v.name === 'string' && typeof v.state === 'string')).toBe(true);
    } finally {
      await local.close();
      await remote.close();
    }
  });

  it('an unknown domain: HV_VM_NOT_FOUND, with virsh exit status and stderr in the cause', async () => {
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
    const err = await failure(hv.describeVm(`${run}-nope`));
    expect(err.code).toBe('HV_VM_NOT_FOUND');
    const cause = err.cause as IntercloudError;
    expect(cause.code).toBe('LIBVIRT_COMMAND_FAILED');
    expect(cause.details['exitStatus']).toBe(1);
    expect(String(cause.details['stderr'])).not.toBe('');
    await hv.close();
  });

  it('a virsh failure keeps the exit status and stderr (unknown pool)', async () => {
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { pool: `${run}-nopool` }));
    const err = await failure(hv.hostCapacity());
    expect(err.code).toBe('LIBVIRT_COMMAND_FAILED');
    expect(err.details['exitStatus']).toBe(1);
    expect(String(err.details['stderr'])).toMatch(/\S/);
    await hv.close();
  });

  it('no libvirtd behind the uri (stopped, restarting): LIBVIRT_DAEMON_UNAVAILABLE, retryable, never read as an answer about the vm', async () => {
    const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { uri: `qemu+unix:///system?socket=/run/${run}-no-libvirtd.sock` }));
    for (const call of [() => hv.describeVm(`${run}-vm`), () => hv.listVms(), () => hv.hostCapacity()]) {
      const err = await failure(call());
      expect(err.code).toBe('LIBVIRT_DAEMON_UNAVAILABLE');
      expect(err.retryable).toBe(true);
      expect(err.details['exitStatus']).toBe(1);
      expect(err.message).toMatch(/could not connect to libvirtd .*no-libvirtd\.sock/);
    }
    await hv.close();
  });

  it('libvirtd gone mid-command (its socket cut after each of virsh\'s writes in turn): LIBVIRT_DAEMON_LOST or _UNAVAILABLE, retryable, or the right answer; never a wrong one', async () => {
    // A socket between virsh and cloud-a's libvirtd that lets `cut` of virsh's writes through,
    // then closes both sides, as libvirtd's death does.
    const real = libvirt('cloud-a').uri.match(/socket=([^&]+)/)?.[1];
    expect(real).toBeDefined();
    // Other tests' VMs come and go in this libvirtd meanwhile: the right answer is one that lists
    // this test's own VM (a misread error would answer an empty list, or no such VM).
    const direct = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
    const own = `${run}-cut`;
    await direct.defineVm({ name: own, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB, disks: [{ capacityBytes: 8 * MiB, bus: 'virtio' }], cdroms: [], nics: [] });
    const seen = new Set<string>();
    try {
      for (let cut = 1; cut <= 10; cut++) {
        const path = join(dir, `libvirt-cut-${cut}.sock`);
        const proxy = net.createServer((client) => {
          const daemon = net.connect(real!);
          let writes = 0;
          client.on('data', (d) => {
            if (++writes > cut) {
              client.destroy();
              daemon.destroy();
            } else daemon.write(d);
          });
          daemon.on('data', (d) => client.write(d));
          for (const [a, b] of [[client, daemon], [daemon, client]] as const) {
            a.on('error', () => b.destroy());
            a.on('close', () => b.destroy());
          }
        });
        await new Promise<void>((r) => proxy.listen(path, r));
        const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { uri: `qemu+unix:///system?socket=${path}` }));
        try {
          const got = await hv.listVms().then((vms) => vms.map((v) => v.name).sort(), (e: unknown) => e);
          if (Array.isArray(got)) {
            expect(got, `cut after ${cut} writes`).toContain(own);
            seen.add('answer');
          } else {
            const err = got as IntercloudError;
            expect(['LIBVIRT_DAEMON_UNAVAILABLE', 'LIBVIRT_DAEMON_LOST'], `cut after ${cut} writes: ${err.message}`).toContain(err.code);
            expect(err.retryable).toBe(true);
            seen.add(err.code);
          }
        } finally {
          await hv.close();
          await new Promise((r) => proxy.close(r));
        }
      }
    } finally {
      await direct.undefineVm(own, { removeStorage: true });
      await direct.close();
    }
    // Each way a cut can end was met: before the connection opened, mid-command, after the answer.
    expect([...seen].sort()).toEqual(['LIBVIRT_DAEMON_LOST', 'LIBVIRT_DAEMON_UNAVAILABLE', 'answer']);
  });

  it('a bad config is refused before any connection, with the fix', () => {
    expect(() => createHypervisor('libvirt', { ...libvirtSshConfig('cloud-a'), bogus: 1 })).toThrow(/bogus/);
    const { hostKeyFingerprint: _f, ...noPin } = libvirtSshConfig('cloud-a').ssh as Record<string, unknown>;
    let err: unknown;
    try {
      createHypervisor('libvirt', { ...libvirtSshConfig('cloud-a'), ssh: noPin });
    } catch (e) {
      err = e;
    }
    expect(isIntercloudError(err, 'HV_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('pin the host key');
  });

  describe('the ssh connection dropped mid-stream', () => {
    let proxy: net.Server;
    const sockets = new Set<net.Socket>();
    let port = 0;
    beforeAll(async () => {
      const s = sshd();
      proxy = net.createServer((client) => {
        const upstream = net.connect(s.port, s.host);
        sockets.add(client);
        sockets.add(upstream);
        client.pipe(upstream).pipe(client);
        const drop = (): void => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', drop);
        upstream.on('error', drop);
        client.on('close', () => sockets.delete(client));
        upstream.on('close', () => sockets.delete(upstream));
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      port = (proxy.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    });
    const cut = (): void => {
      for (const s of sockets) s.destroy();
    };

    it('a disk read fails with LIBVIRT_CONNECTION_LOST', async () => {
      const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { port }));
      const name = `${run}-drop`;
      const img = randomBytes(24 * MiB);
      await hv.importVm({ name, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB, disks: [{ capacityBytes: img.length, bus: 'virtio' }], cdroms: [], nics: [] }, [
        { source: Readable.from([img]), sizeBytes: img.length, format: 'raw' },
      ]);
      try {
        const stream = await hv.readDisk(name, '0');
        let got = 0;
        const err = await (async () => {
          try {
            for await (const c of stream) {
              got += (c as Buffer).length;
              if (got >= MiB && sockets.size > 0) cut();
            }
            return undefined;
          } catch (e) {
            return e;
          }
        })();
        expect(isIntercloudError(err, 'LIBVIRT_CONNECTION_LOST')).toBe(true);
        expect(got).toBeLessThan(img.length);
      } finally {
        // The adapter reconnects (through the proxy, which still accepts) for the cleanup.
        await hv.undefineVm(name, { removeStorage: true });
        await hv.close();
      }
    });

    it('a disk write fails with LIBVIRT_CONNECTION_LOST and leaves no volume', async () => {
      const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', {}, { port }));
      const chunk = randomBytes(256 * 1024);
      let sent = 0;
      const src = new Readable({
        read() {
          sent += chunk.length;
          if (sent === 2 * MiB) setTimeout(cut, 50);
          this.push(sent <= 64 * MiB ? chunk : null);
        },
      });
      const err = await failure(hv.writeDisk({ name: `${run}-wdrop.raw`, format: 'raw', sizeBytes: 64 * MiB, capacityBytes: 64 * MiB }, src));
      expect(err.code).toBe('LIBVIRT_CONNECTION_LOST');
      expect(volumes('cloud-a')).not.toContain(`${run}-wdrop.raw`);
      await hv.close();
    });
  });

  describe('a pool where libvirtd is building a volume', () => {
    // A transient pool of the test's own: while libvirtd clones a volume in it, it refuses every
    // refresh of the pool ("has asynchronous jobs running"); other tests' pools are not held up.
    const pool = `${run}-busy`;
    let path: string;
    let cloned: Promise<number | null> = Promise.resolve(0);
    beforeAll(() => {
      const l = libvirt('cloud-a');
      path = join(l.poolPath, '..', pool);
      mkdirSync(path, { recursive: true });
      // 1 GiB of one random MiB repeated: no zeros to skip, so the clone copies every byte.
      const block = randomBytes(MiB);
      writeFileSync(join(path, 'source.raw'), Buffer.alloc(0));
      for (let i = 0; i < 1024; i++) writeFileSync(join(path, 'source.raw'), block, { flag: 'a' });
      writeFileSync(join(path, 'victim.raw'), block);
      virsh(l.uri, 'pool-create-as', pool, 'dir', '--target', path);
    });
    afterAll(async () => {
      await cloned;
      const l = libvirt('cloud-a');
      virsh(l.uri, 'pool-destroy', pool);
      rmSync(path, { recursive: true, force: true });
    });

    it('a disk removal asked during the build waits for it and then removes the disk', async () => {
      const l = libvirt('cloud-a');
      const clone = spawn('virsh', ['-q', '-c', l.uri, 'vol-clone', '--pool', pool, 'source.raw', 'copy.raw'], { stdio: 'ignore' });
      let cloneEndedAt = 0;
      cloned = new Promise<number | null>((resolve) => clone.on('exit', (code) => { cloneEndedAt = Date.now(); resolve(code); }));
      // Wait until libvirtd refuses a refresh: the build is under way.
      const refusal = /has asynchronous jobs running/;
      let refused = false;
      for (let i = 0; i < 100 && !refused && cloneEndedAt === 0; i++) {
        try {
          execFileSync('virsh', ['-q', '-c', l.uri, 'pool-refresh', pool], { stdio: 'pipe' });
        } catch (err) {
          refused = refusal.test(String((err as { stderr?: string }).stderr));
        }
      }
      expect(refused, 'libvirtd never refused a refresh while it cloned').toBe(true);
      const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { pool }));
      await hv.removeDisk(join(path, 'victim.raw'));
      const removedAt = Date.now();
      expect(await cloned).toBe(0);
      // The removal could only list the pool once the clone had ended.
      expect(removedAt).toBeGreaterThanOrEqual(cloneEndedAt);
      expect(volumes('cloud-a', pool).sort()).toEqual(['copy.raw', 'source.raw']);
      await hv.close();
    });
  });

  describe('the target pool fills up during a write', () => {
    // An 8 MiB tmpfs mounted inside cloud-a's libvirtd mount namespace, as a transient pool.
    const pool = `${run}-small`;
    let path: string;
    let pid: string;
    beforeAll(() => {
      const l = libvirt('cloud-a');
      pid = readFileSync(l.pidFile, 'utf8').trim();
      path = join(l.poolPath, '..', pool);
      mkdirSync(path, { recursive: true });
      execFileSync('nsenter', ['-t', pid, '-m', '--', 'mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', path]);
      virsh(l.uri, 'pool-create-as', pool, 'dir', '--target', path);
    });
    afterAll(() => {
      const l = libvirt('cloud-a');
      virsh(l.uri, 'pool-destroy', pool);
      execFileSync('nsenter', ['-t', pid, '-m', '--', 'umount', path]);
      rmSync(path, { recursive: true, force: true });
    });

    it('two writes that each fit but not together: each failure is HV_NO_SPACE and leaves nothing', async () => {
      // Only libvirtd sees this mount: its files move through libvirt's streams.
      const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { pool, diskIo: 'libvirt' }));
      const size = 5 * MiB;
      const write = (n: string): Promise<unknown> => hv.writeDisk({ name: n, format: 'raw', sizeBytes: size, capacityBytes: size }, Readable.from([randomBytes(size)]));
      const results = await Promise.allSettled([write('one.raw'), write('two.raw')]);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      // Streamed side by side, either one or both run out of room; whichever fails says so.
      expect(failed.length).toBeGreaterThanOrEqual(1);
      for (const f of failed) expect(isIntercloudError(f.reason, 'HV_NO_SPACE')).toBe(true);
      expect(volumes('cloud-a', pool)).toHaveLength(results.length - failed.length);
      await hv.close();
    });
  });
});
