/**
 * Adapter configs for the real servers that `scripts/services up` starts (sshd, libvirt
 * cloud-a/cloud-b, vcsim), read from services.json.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { isPoolBuildingVolume } from '../../../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import { serviceEnv } from '../../helpers/services.js';

/** services.json `sshd`. */
export interface SshdEnv {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  hostKeyFingerprint: string;
  knownHostsFile: string;
}

/** services.json `libvirt.instances.<cloud>`. */
export interface LibvirtInstance {
  uri: string;
  pool: string;
  poolPath: string;
  pidFile: string;
}

/** services.json `vcsim`, with the password read from its file (0600, never in services.json). */
export interface VcsimEnv {
  url: string;
  user: string;
  passwordFile: string;
  password: string;
  caFile: string;
  datacenter: string;
  datastore: string;
}

/** How to reach the sshd service. */
export function sshd(): SshdEnv {
  return serviceEnv<SshdEnv>('sshd');
}

/** One libvirt instance of the libvirt service. */
export function libvirt(cloud: 'cloud-a' | 'cloud-b'): LibvirtInstance {
  const inst = serviceEnv<{ instances: Record<string, LibvirtInstance> }>('libvirt').instances[cloud];
  if (!inst) throw new Error(`libvirt instance '${cloud}' is not in services.json: run 'scripts/services up libvirt'`);
  return inst;
}

/** How to reach vcsim. */
export function vcsim(): VcsimEnv {
  const env = serviceEnv<Omit<VcsimEnv, 'password'>>('vcsim');
  return { ...env, password: readFileSync(env.passwordFile, 'utf8').trim() };
}

/** The libvirt adapter's config for `cloud`, over the sshd service (overrides merged in). */
export function libvirtSshConfig(cloud: 'cloud-a' | 'cloud-b', over: Record<string, unknown> = {}, sshOver: Record<string, unknown> = {}): Record<string, unknown> {
  const s = sshd();
  const l = libvirt(cloud);
  return {
    name: cloud,
    uri: l.uri,
    pool: l.pool,
    domainType: 'qemu',
    nicTarget: { type: 'user' },
    pollMs: 100,
    ssh: { host: s.host, port: s.port, username: s.user, privateKeyFile: s.privateKey, hostKeyFingerprint: s.hostKeyFingerprint, ...sshOver },
    ...over,
  };
}

/** The VMware adapter's config for vcsim. */
export function vmwareConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  const v = vcsim();
  return { name: 'cloud-c', url: v.url, user: v.user, password: v.password, caFile: v.caFile, datacenter: v.datacenter, datastore: v.datastore, pollMs: 50, ...over };
}

/**
 * `virsh pool-refresh POOL` run here, asked again while libvirtd refuses it because it builds a
 * volume in the pool (another test's define or clone), for up to two minutes.
 */
export function refreshPool(uri: string, pool: string): void {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      execFileSync('virsh', ['-q', '-c', uri, 'pool-refresh', pool], { stdio: 'pipe' });
      return;
    } catch (err) {
      if (!isPoolBuildingVolume(String((err as { stderr?: unknown }).stderr)) || Date.now() > deadline) throw err;
      execFileSync('sleep', ['0.2']);
    }
  }
}

/** `virsh -c URI ARGS…` run here, independently of the adapter (for checks). */
export function virsh(uri: string, ...args: string[]): string {
  return execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8' });
}
