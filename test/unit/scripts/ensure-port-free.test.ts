/**
 * `ensure_port_free` (scripts/services.d/common.sh): a server left from an earlier start whose
 * pid file was lost still holds its port, and `waitport` would take it for the server just
 * started (a stray Prosody answered with an older PKI's certificate that way). Before starting,
 * the scripts now fail and name the process that holds the port.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../../scripts');

function ensurePortFree(port: number): Promise<{ stdout: string; stderr: string }> {
  const script = `. "${SCRIPTS}/lib/strict.sh"; . "${SCRIPTS}/services.d/common.sh"; ensure_port_free "$1" "probe server"; echo free`;
  return run('bash', ['-c', script, 'test', String(port)]);
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

describe('ensure_port_free', () => {
  it('fails and names the process that already listens on the port', async () => {
    server = createServer();
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const err = await ensurePortFree(port).then(() => undefined, (e: unknown) => e as { code: number; stderr: string; stdout: string });
    expect(err?.code).toBe(1);
    expect(err?.stdout).not.toContain('free');
    expect(err?.stderr).toContain(`cannot start probe server: port ${port} is already held by pid ${process.pid}`);
  });

  it('goes on when nothing listens', async () => {
    server = createServer();
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    expect((await ensurePortFree(port)).stdout).toContain('free');
  });
});
