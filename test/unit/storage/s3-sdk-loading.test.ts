/**
 * The AWS SDK is loaded by the first call of an `s3` store, not by the agent's code: a cloud with
 * no object store configured does not keep the SDK's 10–14 MiB resident. A child Node process
 * loads the whole daemon and makes an `s3` store under a module hook that fails any resolution of
 * `@aws-sdk/…`; then a call of the store loads it.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** Registers a resolve hook that records every `@aws-sdk/` specifier into globalThis (through a port). */
const HOOK = `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
globalThis.awsSdkResolved = [];
port1.on('message', (m) => globalThis.awsSdkResolved.push(m));
port1.unref();
register('data:text/javascript,' + encodeURIComponent(\`
let port;
let failures = Number(process.env.FAIL_SDK_LOADS ?? 0);
export function initialize(data) { port = data.port; }
export async function resolve(spec, ctx, next) {
  if (spec.startsWith('@aws-sdk/')) port.postMessage(spec);
  if (spec === '@aws-sdk/client-s3' && failures > 0) { failures--; throw new Error('EMFILE: too many open files (test)'); }
  return next(spec, ctx);
}\`), { data: { port: port2 }, transferList: [port2] });
`;

const SCRIPT = `
await import(${JSON.stringify(resolve(REPO, 'agent/daemon/gateway.ts'))});
const { createObjectStore } = await import(${JSON.stringify(resolve(REPO, 'adapters/storage/index.ts'))});
const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
const dir = mkdtempSync('/tmp/s3-sdk-loading-');
writeFileSync(dir + '/secret', 'x', { mode: 0o600 });
const store = createObjectStore('s3', { name: 'unit', endpoint: 'http://127.0.0.1:1', region: 'eu-west', accessKeyId: 'k', secretAccessKeyFile: dir + '/secret', maxAttempts: 1, connectTimeoutMs: 500 });
await new Promise((r) => setTimeout(r, 50));
const before = [...globalThis.awsSdkResolved];
const calls = [];
for (let i = 0; i < 2; i++) {
  const err = await store.headBucket('bucket').catch((e) => e);
  calls.push({ code: err?.code, retryable: err?.retryable, message: err?.message });
}
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ before, after: globalThis.awsSdkResolved, calls }));
await store.close();
rmSync(dir, { recursive: true, force: true });
`;

/** Runs the script in a child Node; `failSdkLoads`: how many loads of the SDK fail first. */
async function child(failSdkLoads: number): Promise<{ before: string[]; after: string[]; calls: Array<{ code: string; retryable: boolean; message: string }> }> {
  const { stdout } = await run(process.execPath, [
    '--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(HOOK)}`, '--input-type=module', '-e', SCRIPT,
  ], { cwd: REPO, timeout: 60_000, env: { ...process.env, FAIL_SDK_LOADS: String(failSdkLoads) } });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Awaited<ReturnType<typeof child>>;
}

describe('s3 store: the AWS SDK is loaded at the first call', () => {
  it('the daemon and a new s3 store load no @aws-sdk module; the first call loads it and works', async () => {
    const r = await child(0);
    expect(r.before).toEqual([]);
    expect(r.after).toContain('@aws-sdk/client-s3');
    // Each call went through the SDK to the (closed) port: a coded store error.
    expect(r.calls.map((c) => c.code)).toEqual(['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE']);
    for (const c of r.calls) expect(c.message).not.toMatch(/cannot load/);
  }, 90_000);

  it('an SDK that fails to load is a retryable STORE_UNAVAILABLE, and the next call loads it again', async () => {
    const r = await child(1);
    expect(r.calls[0]).toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true });
    expect(r.calls[0]!.message).toMatch(/cannot load @aws-sdk\/client-s3: .*EMFILE/);
    // Loaded at the second call: its error is the closed port's, not the load's.
    expect(r.calls[1]).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(r.calls[1]!.message).not.toMatch(/cannot load/);
  }, 90_000);
});
