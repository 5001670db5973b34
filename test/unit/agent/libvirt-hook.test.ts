/**
 * The sample libvirt hook (`systemd/libvirt-hooks/qemu`) asks the agent's local API to move a
 * VM. The domain name is chosen by whoever defined the VM (for a migrated one: a peer), so the
 * hook must build its request with a JSON tool: a name holding `"` stays one string value and
 * cannot add or override fields. Runs the hook with sh against an HTTP server on a temporary
 * Unix socket standing in for the agent.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HOOK = resolve(import.meta.dirname, '../../../systemd/libvirt-hooks/qemu');
const XML = `<domain><name>x</name><metadata><ic:migrate xmlns:ic="urn:intercloud:libvirt:0" to="cloud-b"/></metadata></domain>\n`;

let dir = '';
let server: Server;
const bodies: string[] = [];
let arrived: (() => void) | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hook-'));
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString('utf8'); });
    req.on('end', () => { bodies.push(body); res.writeHead(202).end('{"jobId":"j"}'); arrived?.(); });
  });
  await new Promise<void>((r) => server.listen(join(dir, 'agent.sock'), r));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function runHook(domain: string): Promise<unknown> {
  const got = new Promise<void>((r) => { arrived = r; });
  const child = spawn('sh', [HOOK, domain, 'started', 'begin', '-'], { env: { ...process.env, INTERCLOUD_SOCKET: join(dir, 'agent.sock') }, stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(XML);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  expect(code).toBe(0);
  await got;
  return JSON.parse(bodies.at(-1)!);
}

describe('the sample libvirt hook', () => {
  it('asks the agent to move the vm named in its metadata', async () => {
    expect(await runHook('web1')).toEqual({ vm: 'web1', to: 'cloud-b' });
  });

  it('keeps a domain name with quotes one string: it cannot change the destination', async () => {
    const name = 'evil","to":"cloud-x';
    expect(await runHook(name)).toEqual({ vm: name, to: 'cloud-b' });
  });
});
