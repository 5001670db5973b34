/**
 * A WAN-like path between the bench's gateways and the Root(s): the gateways' process runs in
 * a network namespace of its own, joined to the host by a veth pair; on the host side a TCP
 * relay per Root listens on the veth's address and forwards to where Prosody listens
 * (127.0.0.1 today — the shared Prosody is not reconfigured). The round trip is lengthened by
 * `tc qdisc … netem delay` on the namespace's end of the veth when the kernel has sch_netem;
 * when it has not (this machine's kernel is built without CONFIG_NET_SCH_NETEM, and without
 * sch_fq for EDT pacing), the relay holds every gateway → Root segment for the delay instead,
 * in order — the same extra round trip to the Root, made in user space.
 *
 * The relay also counts the TCP segments (reads) it forwards per connection and direction, so
 * the bench can count how many trips one exchange makes.
 */
import { execFileSync } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { RootServer } from './roots.js';

/** Reads forwarded by the relay, per direction, over all its connections. */
export interface TripCounters {
  up: number;
  down: number;
}

/** An open path: the namespace, the address each Root is reached at from inside it, and how the delay is made. */
export interface Link {
  readonly namespace: string;
  /** Root key → `host:port` to dial from inside the namespace. */
  readonly endpoints: Readonly<Record<string, { host: string; port: number }>>;
  /** `netem` (kernel) or `relay` (user space); `none` when the delay is 0. */
  readonly delayBy: 'netem' | 'relay' | 'none';
  readonly delayMs: number;
  readonly counters: TripCounters;
  close(): Promise<void>;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Opens the namespace, the veth pair and one relay per Root. `delayMs` is added to every
 * round trip between a gateway and its Root (netem on the namespace side's egress, or the
 * relay's hold). Close it in a `finally`; a process exit also removes the namespace.
 */
export async function openLink(roots: readonly RootServer[], delayMs: number): Promise<Link> {
  const tag = String(process.pid % 100_000);
  const namespace = `icbench-${tag}`;
  const hostIf = `icbh${tag}`;
  const nsIf = `icbn${tag}`;
  // 10.231.0.0/16 is the bench's; one /30 per run by pid (libvirt's namespaces use 10.213.7.0/24).
  const octet = process.pid % 64;
  const hostAddr = `10.231.${octet}.1`;
  const nsAddr = `10.231.${octet}.2`;
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    try {
      ip('netns', 'del', namespace); // takes the veth pair with it
    } catch (err) {
      process.stderr.write(`warning: could not remove namespace '${namespace}': ${(err as Error).message}\n`);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    remove();
    process.kill(process.pid, signal);
  };
  process.once('exit', remove);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  ip('netns', 'add', namespace);
  try {
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', namespace);
    ip('addr', 'add', `${hostAddr}/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', namespace, 'link', 'set', 'lo', 'up');
    ip('-n', namespace, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf);
    ip('-n', namespace, 'link', 'set', nsIf, 'up');
  } catch (err) {
    remove();
    throw err;
  }
  let delayBy: Link['delayBy'] = 'none';
  if (delayMs > 0) {
    try {
      execFileSync('ip', ['netns', 'exec', namespace, 'tc', 'qdisc', 'add', 'dev', nsIf, 'root', 'netem', 'delay', `${delayMs}ms`], { stdio: ['ignore', 'ignore', 'pipe'] });
      delayBy = 'netem';
    } catch {
      // No sch_netem in this kernel ("Specified qdisc kind is unknown"): the relay delays instead.
      delayBy = 'relay';
    }
  }
  const holdMs = delayBy === 'relay' ? delayMs : 0;
  const counters: TripCounters = { up: 0, down: 0 };
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const endpoints: Record<string, { host: string; port: number }> = {};
  try {
    for (const root of roots) {
      const server = createServer({ noDelay: true }, (client) => relay(client, root, holdMs, counters, sockets));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(root.port, hostAddr, () => resolve());
      });
      servers.push(server);
      endpoints[root.key] = { host: hostAddr, port: root.port };
    }
  } catch (err) {
    for (const s of servers) s.close();
    remove();
    throw err;
  }
  return {
    namespace, endpoints, delayBy, delayMs, counters,
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      remove();
      process.off('exit', remove);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Pipes one gateway connection to its Root, holding each upstream read `holdMs` (in order). */
function relay(client: Socket, root: RootServer, holdMs: number, counters: TripCounters, sockets: Set<Socket>): void {
  const upstream = createConnection({ host: root.host, port: root.port, noDelay: true });
  client.setNoDelay(true);
  sockets.add(client);
  sockets.add(upstream);
  const queue: Array<{ due: number; data: Buffer | null }> = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && (queue[0] as { due: number }).due <= now + 0.5) {
      const { data } = queue.shift() as { data: Buffer | null };
      if (data === null) upstream.end();
      else upstream.write(data);
    }
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, (queue[0] as { due: number }).due - performance.now()));
  };
  const push = (data: Buffer | null): void => {
    if (holdMs === 0) {
      if (data === null) upstream.end();
      else upstream.write(data);
      return;
    }
    queue.push({ due: performance.now() + holdMs, data });
    timer ??= setTimeout(flush, holdMs);
  };
  client.on('data', (d: Buffer) => {
    counters.up++;
    push(d);
  });
  client.on('end', () => push(null));
  upstream.on('data', (d: Buffer) => {
    counters.down++;
    client.write(d);
  });
  upstream.on('end', () => client.end());
  const done = (): void => {
    clearTimeout(timer);
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('close', done);
  upstream.on('close', done);
  client.on('error', done);
  upstream.on('error', done);
}
