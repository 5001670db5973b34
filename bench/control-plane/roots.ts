/**
 * The Roots the bench spreads its gateways over, as services.json describes them: `prosody`
 * is the first; `roots.list[].name` names them all, in order, when services.json has that list;
 * otherwise any other top-level key of Prosody's shape (host, port, domain, pubsubJid,
 * tls.servername, pidFile) is another one (a second Root federated over s2s). `--roots a,b`
 * names the keys explicitly.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** One Root's XMPP server, as the bench needs it. */
export interface RootServer {
  /** Its key in services.json. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly domain: string;
  readonly pubsubJid: string;
  readonly servername: string;
  /** Prosody's pid file (its RSS is read from /proc). */
  readonly pidFile: string;
}

function asRoot(key: string, v: unknown): RootServer | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const tls = o['tls'] as Record<string, unknown> | undefined;
  if (typeof o['host'] !== 'string' || typeof o['port'] !== 'number' || typeof o['domain'] !== 'string'
    || typeof o['pubsubJid'] !== 'string' || typeof o['pidFile'] !== 'string' || typeof tls?.['servername'] !== 'string') return undefined;
  return {
    key, host: o['host'], port: o['port'], domain: o['domain'], pubsubJid: o['pubsubJid'], servername: tls['servername'], pidFile: o['pidFile'],
  };
}

/**
 * The Roots in `services` (the parsed services.json): `only` (keys) when given, else the names
 * in `roots.list`, else `prosody` first and then every other key of Prosody's shape, by name. Throws when a named key is not
 * a Root or none is found.
 */
export function rootsOf(services: Record<string, unknown>, only?: readonly string[]): RootServer[] {
  if (only && only.length > 0) {
    return only.map((k) => {
      const r = asRoot(k, services[k]);
      if (!r) throw new Error(`services.json has no prosody-shaped root under '${k}' (host, port, domain, pubsubJid, tls.servername, pidFile)`);
      return r;
    });
  }
  // `roots.list` (the Roots' own list, in order) names the keys when services.json has it.
  const list = (services['roots'] as { list?: unknown } | undefined)?.list;
  if (Array.isArray(list)) {
    const named = list.map((e) => (e as { name?: unknown }).name).filter((n): n is string => typeof n === 'string');
    if (named.length > 0) return rootsOf(services, named);
  }
  const keys = Object.keys(services).filter((k) => k !== 'prosody').sort();
  const roots = ['prosody', ...keys].map((k) => asRoot(k, services[k])).filter((r): r is RootServer => r !== undefined);
  if (roots.length === 0) throw new Error("services.json has no Root: run 'scripts/services up pki prosody'");
  return roots;
}

/**
 * The pid of the process listening on TCP `port` (IPv4), found through /proc alone so it works
 * from inside another network namespace: a process whose /proc/<pid>/net/tcp (its own
 * namespace's table) has a LISTEN socket on the port whose inode is one of its descriptors.
 * Only processes whose command line contains `name` are looked at.
 */
export function listenerPid(port: number, name: string): number | undefined {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmd: string;
    let table: string;
    let fds: string[];
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes(name)) continue;
      table = readFileSync(`/proc/${entry}/net/tcp`, 'utf8');
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES') continue; // gone, or not ours to read
      throw err;
    }
    // sl local_address rem_address st … inode: st 0A = LISTEN
    const inodes = new Set(table.split('\n').slice(1).map((l) => l.trim().split(/\s+/))
      .filter((f) => f[1]?.endsWith(hexPort) && f[3] === '0A').map((f) => f[9]));
    if (inodes.size === 0) continue;
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return Number(entry);
    }
  }
  return undefined;
}

/**
 * The Root's Prosody resident set (VmRSS) in KiB: of the process listening on its c2s port
 * (a pid file can name a Prosody that lost the race for the port), else of its pid file's.
 */
export function rssKiB(root: Pick<RootServer, 'port' | 'pidFile'>): number {
  const pid = listenerPid(root.port, 'prosody') ?? Number(readFileSync(root.pidFile, 'utf8').trim());
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}
