/**
 * Runs a {@link MapServerCore} on a UDP socket (RFC 9301 §5.1: port 4342; any port for
 * tests). I/O only: every datagram goes to the core, its replies go out, and its events
 * go to the caller's `onEvent` (the CLI logs them). A bad datagram never stops the server.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { LISP_CONTROL_PORT } from './constants.js';
import { lispError } from './errors.js';
import { MapServerCore, type HandleResult, type MapServerEvent, type MapServerOptions, type MapServerSnapshot } from './map-server.js';

/** Options of {@link startMapServer}. */
export interface StartMapServerOptions extends MapServerOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** UDP port; default 4342 (0 picks a free one). */
  port?: number;
  /** Called for every datagram handled and every expired registration. */
  onEvent?: (event: MapServerEvent | { kind: 'expired'; site: string; eid: string }) => void;
  /** Clock (ms since the epoch); default Date.now. */
  now?: () => number;
  /** How often stale registrations are purged (ms); default 1000. */
  sweepIntervalMs?: number;
  /**
   * A file (mode 0600) that keeps who holds which EID, the sites' last nonces and the
   * hand-overs across restarts: read at start when it exists, written at each sweep when
   * something changed, and at close.
   */
  stateFile?: string;
}

/** A running map server. */
export interface RunningMapServer {
  /** The bound address and port. */
  address: { address: string; port: number };
  /** The state machine (registrations, lookup). */
  core: MapServerCore;
  /** Stops the socket and the sweep timer. */
  close(): Promise<void>;
}

/** Binds the socket and starts serving; rejects with LISP_SOCKET when the port cannot be bound. */
export async function startMapServer(options: StartMapServerOptions): Promise<RunningMapServer> {
  const core = new MapServerCore(options);
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? Date.now;
  const stateFile = options.stateFile;
  if (stateFile !== undefined) {
    let text: string | undefined;
    try {
      text = readFileSync(stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw lispError('LISP_CONFIG', `cannot read the map server state '${stateFile}'`, { cause: err });
    }
    if (text !== undefined) {
      try {
        core.restore(JSON.parse(text) as MapServerSnapshot, now());
      } catch (err) {
        throw lispError('LISP_CONFIG', `the map server state '${stateFile}' is not usable (move it away to start empty)`, { cause: err });
      }
    }
  }
  const save = (): void => {
    if (stateFile === undefined || !core.dirty) return;
    const tmp = `${stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(core.snapshot(now())), { mode: 0o600 });
    renameSync(tmp, stateFile);
  };
  const socket: Socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
  const emit = options.onEvent ?? (() => undefined);
  const deliver = (result: HandleResult): void => {
    for (const reply of result.replies) {
      socket.send(reply.data, reply.to.port, reply.to.address, (err) => {
        if (err) emit({ kind: 'rejected', error: lispError('LISP_SOCKET', `cannot send to '${reply.to.address}:${reply.to.port}'`, { cause: err }), from: reply.to });
      });
    }
    emit(result.event);
    for (const e of result.also ?? []) emit(e);
  };
  socket.on('message', (msg, rinfo) => deliver(core.handle(msg, { address: rinfo.address, port: rinfo.port }, now())));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(lispError('LISP_SOCKET', `cannot bind the map server to '${host}:${options.port ?? LISP_CONTROL_PORT}'`, { cause: err }));
    };
    socket.once('error', onError);
    socket.bind(options.port ?? LISP_CONTROL_PORT, host, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  // After binding, socket errors (e.g. ICMP port unreachable on send) are reported, not fatal.
  socket.on('error', (err) => emit({ kind: 'rejected', error: lispError('LISP_SOCKET', 'map server socket error', { cause: err }), from: { address: host, port: 0 } }));
  const persist = (): void => {
    try {
      save();
    } catch (err) {
      emit({ kind: 'rejected', error: lispError('LISP_STATE', `cannot write the map server state '${stateFile}'`, { cause: err }), from: { address: host, port: 0 } });
    }
  };
  const sweep = setInterval(() => {
    for (const reg of core.expire(now())) emit({ kind: 'expired', site: reg.site, eid: `${reg.eid.address}/${reg.eid.maskLength}` });
    for (const result of core.tick(now())) deliver(result);
    persist();
  }, options.sweepIntervalMs ?? 1000);
  sweep.unref();
  const bound = socket.address();
  return {
    address: { address: bound.address, port: bound.port },
    core,
    close: () => new Promise<void>((resolve) => {
      clearInterval(sweep);
      persist();
      socket.close(() => resolve());
    }),
  };
}
