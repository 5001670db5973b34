/**
 * A two-cloud federation for one end-to-end migration test: its own agent directories,
 * agents (child processes that a test may SIGKILL and start again), a demo VM booted in
 * cloud-a with its EID registered at cloud-a's site, and the invariant checked with virsh,
 * sha256sum-equivalent hashing, the audit CLI and a LISP lookup — never through the agent.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { JobStatus, SequencerEvent } from '../../../agent/sequencer/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { lookupEid, registerEid, withdrawEid, type AuthAlgorithm } from '../../../protocols/lisp/index.js';
import { verifyAuditFile } from '../../../protocols/trust/index.js';
import {
  AgentProcess, createDemoVm, domState, loadServicesFile, removeVm, virsh, waitForText, writeAgentConfig, type AgentConfigOptions,
} from '../../../scripts/local-federation.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { STATE_DIR } from '../../helpers/services.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** The services.json a federation runs on. */
export type Services = ReturnType<typeof loadServicesFile>;

/** Where the VM of a test is. */
export type Cloud = 'cloud-a' | 'cloud-b';

/** One test's federation. */
export interface Federation {
  s: Services;
  dir: string;
  a: AgentProcess;
  b: AgentProcess;
  vm: string;
  mac: string;
  diskId: string;
  eid: string;
  /** SHA-256 of the VM's disk file in cloud-a, taken before the move. */
  diskSha256: string;
  /** Received-disk files (`intercloud-in-…`) in cloud-b's pool before the test. */
  receivedBefore: Set<string>;
}

/** Options of {@link setUpFederation}. */
export interface FederationOptions {
  a?: AgentConfigOptions;
  b?: AgentConfigOptions;
  /** Start cloud-b's agent (default true). */
  startB?: boolean;
  diskMiB?: number;
  randomMiB?: number;
}

/** A test's VM name, MAC and EID from a small number unique within the folder. */
export function identity(n: number): { vm: string; mac: string; eid: string } {
  const h = n.toString(16).padStart(2, '0');
  return { vm: `itmig-${n}`, mac: `52:54:00:7e:01:${h}`, eid: `10.77.${n}.5` };
}

/** Starts two agents in fresh directories and a VM in cloud-a (heartbeat seen). */
export async function setUpFederation(n: number, o: FederationOptions = {}): Promise<Federation> {
  const s = loadServicesFile(STATE_DIR);
  const { vm, mac, eid } = identity(n);
  const dir = join(STATE_DIR, 'test-migration', `${vm}-${process.pid}`);
  await fs.rm(dir, { recursive: true, force: true });
  await Promise.all([removeVm(s, 'cloud-a', vm), removeVm(s, 'cloud-b', vm)]);
  const a = new AgentProcess('cloud-a', join(dir, 'cloud-a'));
  const b = new AgentProcess('cloud-b', join(dir, 'cloud-b'));
  await writeAgentConfig(s, 'cloud-a', a.dir, { region: 'eu-west', ...o.a });
  await writeAgentConfig(s, 'cloud-b', b.dir, { region: 'eu-central', ...o.b });
  const diskId = `${vm}-${Date.now()}`;
  const consoleLog = join(a.dir, 'consoles', `${vm}-created.log`);
  const f: Federation = { s, dir, a, b, vm, mac, diskId, eid, diskSha256: '', receivedBefore: new Set(await receivedFiles(s)) };
  try {
    const [, , { diskPath }] = await Promise.all([
      a.start(),
      o.startB === false ? Promise.resolve() : b.start(),
      createDemoVm(s, 'cloud-a', { name: vm, mac, diskId, consoleLog, ...(o.diskMiB ? { diskMiB: o.diskMiB } : {}), ...(o.randomMiB ? { randomMiB: o.randomMiB } : {}) }),
    ]);
    [f.diskSha256] = await Promise.all([sha256File(diskPath), waitForText(consoleLog, `disk=${diskId}`, 60_000)]);
    // The VM's EID is registered at its home cloud's site, as the cloud did when it created it.
    // An earlier run may have moved it to cloud-b, which still holds it for a few minutes: its
    // holder withdraws it first (an EID moves only by its holder's withdrawal or hand-over).
    const lispSite = (c: Cloud) => {
      const site = s.lisp.sites[c]!;
      return {
        mapServer: { host: s.lisp.host, port: s.lisp.port }, keyId: site.keyId, algorithm: site.algorithm as AuthAlgorithm,
        key: readFileSync(site.keyFile, 'utf8').trim(), rlocs: site.rlocs,
      };
    };
    await withdrawEid(lispSite('cloud-b'), [eid]);
    await registerEid(lispSite('cloud-a'), [eid]);
    return f;
  } catch (err) {
    await tearDownFederation(f);
    throw err;
  }
}

/** Stops the agents, removes the VM from both clouds and the test's directory. */
export async function tearDownFederation(f: Federation | undefined): Promise<void> {
  if (!f) return;
  await Promise.all([f.a.stop('SIGKILL'), f.b.stop('SIGKILL')]);
  await Promise.all([removeVm(f.s, 'cloud-a', f.vm), removeVm(f.s, 'cloud-b', f.vm)]);
  if (process.env['INTERCLOUD_KEEP_TEST_DIRS'] === undefined) await fs.rm(f.dir, { recursive: true, force: true });
}

/** SHA-256 (hex) of a file. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The migration request every test sends (with the VM's EID). */
export function migrate(f: Federation): Promise<{ jobId: string }> {
  return f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid] });
}

/** The target's job id for a source job id (`out-<offer>` → `in-<offer>`). */
export function inboundOf(jobId: string): string {
  return `in-${jobId.replace(/^out-/, '')}`;
}

/** A job's status from an agent that may be down for a moment (a restart): retried. */
async function statusOf(agent: AgentProcess, jobId: string): Promise<JobStatus | 'unknown' | 'unreachable'> {
  try {
    return await agent.api.job(jobId);
  } catch (err) {
    if (isIntercloudError(err, 'SEQ_UNKNOWN_JOB')) return 'unknown';
    if (isIntercloudError(err, 'API_UNREACHABLE')) return 'unreachable';
    throw err;
  }
}

/** Waits until the job has finished at `agent` (through restarts); returns its status. */
export async function waitForEnd(agent: AgentProcess, jobId: string, timeoutMs = 150_000): Promise<JobStatus> {
  const t0 = Date.now();
  for (;;) {
    const s = await statusOf(agent, jobId);
    if (typeof s === 'object' && s.state !== 'running') return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`job '${jobId}' at '${agent.cloud}' did not finish in ${timeoutMs} ms (last: ${typeof s === 'object' ? `${s.state} at ${s.currentStep}` : s})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until the target's side of the job has finished too (or never existed). */
export async function waitForTargetEnd(f: Federation, jobId: string, timeoutMs = 90_000): Promise<JobStatus | 'unknown'> {
  const t0 = Date.now();
  for (;;) {
    const s = await statusOf(f.b, inboundOf(jobId));
    if (s === 'unknown' || (typeof s === 'object' && s.state !== 'running')) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`target job of '${jobId}' did not finish in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Migrates the VM and waits for both sides' jobs to end, asserting both completed; returns the
 * source's and the target's job status.
 */
export async function migrateToCompletion(f: Federation): Promise<{ jobId: string; job: JobStatus; target: JobStatus }> {
  const { jobId } = await migrate(f);
  const job = await waitForEnd(f.a, jobId);
  expect(job.error).toBeUndefined();
  expect(job.state).toBe('completed');
  const target = await waitForTargetEnd(f, jobId);
  if (target === 'unknown') throw new Error(`cloud-b has no job for '${inboundOf(jobId)}'`);
  expect(target.state).toBe('completed');
  return { jobId, job, target };
}

/** Any event the API streams. */
export type ApiEvent = SequencerEvent | { type: 'status'; status: JobStatus };

/**
 * Follows the source job and runs `fault` once, on the first event `when` matches. Resolves
 * (with the events seen) once `fault` has run; the stream ending (the source agent killed)
 * is fine.
 */
export async function onEvent(f: Federation, jobId: string, when: (e: ApiEvent) => boolean, fault: () => Promise<void>): Promise<ApiEvent[]> {
  const seen: ApiEvent[] = [];
  let fired: Promise<void> | undefined;
  await new Promise<void>((res, rej) => {
    f.a.api.follow(jobId, (e) => {
      seen.push(e);
      if (fired === undefined && when(e)) {
        fired = fault();
        fired.then(res, rej);
      }
    }).then(() => { if (!fired) rej(new Error(`job '${jobId}' ended before the fault point: ${seen.map(describeEvent).join(', ')}`)); }, (err: unknown) => { if (!fired) rej(err as Error); });
  });
  return seen;
}

function describeEvent(e: ApiEvent): string {
  return e.type === 'status' ? `status(${e.status.state})` : 'step' in e ? `${e.type}(${e.step})` : e.type;
}

/** True for the event that starts `step`. */
export const stepStarts = (step: string) => (e: ApiEvent): boolean => e.type === 'step-started' && e.step === step;

/** True for the first transfer progress past `fraction` of the bytes (mid-transfer). */
export const midTransfer = (fraction = 0.25) => (e: ApiEvent): boolean => {
  if (e.type !== 'progress' || e.step !== 'transfer') return false;
  const { bytesDone, bytesTotal } = e.detail as { bytesDone: number; bytesTotal: number };
  return bytesDone >= fraction * bytesTotal && bytesDone < bytesTotal;
};

/** The last record of a job's journal (where a crash left it), for the test's log. */
export async function lastJournalRecord(agent: AgentProcess, jobId: string): Promise<string> {
  const text = await fs.readFile(join(agent.dir, 'state', 'journal', `${jobId}.journal`), 'utf8').catch(() => '');
  const last = text.trim().split('\n').pop() ?? '';
  try {
    const r = JSON.parse(last) as { type: string; step?: string };
    return `${r.type}${r.step ? ` ${r.step}` : ''}`;
  } catch {
    return last === '' ? 'no journal' : 'torn line';
  }
}

/**
 * Registers a test file's hooks: the federation lock for the whole file, and after each test
 * the teardown of the federation the test put in the returned slot.
 */
export function federationHooks(): { f: Federation | undefined } {
  const slot: { f: Federation | undefined } = { f: undefined };
  let unlock: (() => Promise<void>) | undefined;
  // lockFederation gives up (with who holds the lock) after INTERCLOUD_LOCK_WAIT_S, 600 s by default.
  beforeAll(async () => { unlock = await lockFederation(); }, 1_000 * (Number(process.env['INTERCLOUD_LOCK_WAIT_S'] ?? 600) + 60));
  afterEach(async () => { await tearDownFederation(slot.f); slot.f = undefined; }, 180_000);
  afterAll(async () => { await unlock?.(); });
  return slot;
}

/** Kills a server started by `scripts/services` by its pid file (SIGKILL). */
export async function killService(pidFile: string): Promise<number> {
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  expect(pid).toBeGreaterThan(1);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return pid;
      throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pid ${pid} from '${pidFile}' did not exit`);
}

/** Brings a server back (`scripts/services up NAME`, idempotent). */
export async function serviceUp(name: string): Promise<void> {
  await run(join(REPO, 'scripts/services'), ['up', name], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 });
}

/**
 * Verifies an audit log's hash chain with the verifier `intercloud audit verify` runs, in this
 * process: not through the agent, and without a CLI start (about 3 s of CPU each) per log per
 * test. The CLI's own verdicts are tested in test/integration/trust/audit-cli.test.ts.
 */
async function auditVerify(file: string): Promise<{ verdict: string; count: number }> {
  try {
    const head = await verifyAuditFile(file);
    return { verdict: 'intact', count: head.count };
  } catch (err) {
    if (!isIntercloudError(err, 'TRUST_AUDIT_BROKEN')) throw err;
    return { verdict: `broken: ${err.message}`, count: -1 };
  }
}

/** The console log file of `vm` in `cloud` (from its domain XML). */
async function consoleLogOf(s: Services, cloud: Cloud, vm: string): Promise<string> {
  const xml = await virsh(s, cloud, 'dumpxml', vm);
  const m = /<log file='([^']+)'/.exec(xml);
  if (!m?.[1]) throw new Error(`vm '${vm}' in '${cloud}' has no console log`);
  return m[1];
}

/**
 * Asserts the invariant, with virsh and the files directly: the VM runs in exactly one cloud
 * (absent from the other), with the same MAC, its disk file's bytes are those of the source
 * disk before the move, a heartbeat written after this check began names the same disk id,
 * both audit logs verify intact, the EID maps to the RLOCs of the cloud it runs in, and
 * nothing of the move is left at the target but the VM's disk when it runs there.
 * Returns where it runs.
 */
export async function assertInvariant(f: Federation, expected?: Cloud): Promise<Cloud> {
  const [stateA, stateB] = await Promise.all([domState(f.s, 'cloud-a', f.vm), domState(f.s, 'cloud-b', f.vm)]);
  const states = { 'cloud-a': stateA, 'cloud-b': stateB };
  const where: Cloud = states['cloud-a'] === 'running' ? 'cloud-a' : 'cloud-b';
  const other: Cloud = where === 'cloud-a' ? 'cloud-b' : 'cloud-a';
  expect(states[where], `states: ${JSON.stringify(states)}`).toBe('running');
  expect(states[other], `states: ${JSON.stringify(states)}`).toBe('absent');
  if (expected) expect(where).toBe(expected);

  // The checks below are independent of each other: they run side by side (each asserts).
  const nic = async (): Promise<void> => {
    const ifaces = await virsh(f.s, where, 'domiflist', f.vm);
    expect(ifaces.split(/\s+/)).toContain(f.mac);
  };

  const disk = async (): Promise<void> => {
    const blk = await virsh(f.s, where, 'domblklist', f.vm, '--details');
    const disks = blk.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[1] === 'disk');
    expect(disks).toHaveLength(1);
    expect(await sha256File(disks[0]![3]!)).toBe(f.diskSha256);
  };

  const heartbeat = async (): Promise<void> => {
    const log = await consoleLogOf(f.s, where, f.vm);
    const seenBefore = (await fs.readFile(log, 'latin1').catch(() => '')).length;
    const t0 = Date.now();
    for (;;) {
      const fresh = (await fs.readFile(log, 'latin1').catch(() => '')).slice(seenBefore);
      const hb = /INTERCLOUD-GUEST-HB [^\r\n]*disk=(\S+)/.exec(fresh);
      if (hb) { expect(hb[1]).toBe(f.diskId); break; }
      if (Date.now() - t0 > 60_000) throw new Error(`no heartbeat in '${log}' within 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const audits = async (): Promise<void> => {
    const [auditA, auditB] = await Promise.all([auditVerify(join(f.a.dir, 'state', 'audit.log')), auditVerify(join(f.b.dir, 'state', 'audit.log'))]);
    expect(auditA.verdict).toBe('intact');
    expect(auditB.verdict).toBe('intact');
  };

  const eid = async (): Promise<void> => {
    const mapping = await lookupEid(f.eid, { resolver: { host: f.s.lisp.host, port: f.s.lisp.port } });
    expect(mapping.locators.map((l) => l.address).sort()).toEqual([...f.s.lisp.sites[where]!.rlocs].sort());
  };

  // Every check runs to its end (none left running past the assertion); the first failure is thrown.
  const failed = (await Promise.allSettled([nic(), disk(), heartbeat(), audits(), eid(), assertNothingLeftAtTarget(f, where)]))
    .find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return where;
}

/** Files an agent received disks into, in cloud-b's pool (`intercloud-in-…`, with its `.part` staging files). */
async function receivedFiles(s: Services): Promise<string[]> {
  const pool = s.libvirt.instances['cloud-b']!.poolPath;
  return (await fs.readdir(pool)).filter((n) => /^\.?intercloud-in-/.test(n)).map((n) => join(pool, n));
}

/**
 * Nothing of the move is left at the target but the VM's own disk when it runs there: no
 * staged file in the agent's staging folder, no received file in cloud-b's pool.
 */
export async function assertNothingLeftAtTarget(f: Federation, where: Cloud): Promise<void> {
  const incoming = join(f.b.dir, 'state', 'incoming');
  const staged: string[] = [];
  for (const offer of await fs.readdir(incoming).catch(() => [] as string[])) {
    for (const file of await fs.readdir(join(incoming, offer))) staged.push(join(offer, file));
  }
  expect(staged, 'staged files left in cloud-b').toEqual([]);
  const fresh = (await receivedFiles(f.s)).filter((p) => !f.receivedBefore.has(p));
  if (where === 'cloud-a') {
    expect(fresh, 'received files left in cloud-b').toEqual([]);
  } else {
    const disk = (await virsh(f.s, 'cloud-b', 'domblklist', f.vm, '--details')).split(/\s+/).find((w) => w.startsWith('/'));
    expect(fresh.filter((p) => p !== disk), 'received files left in cloud-b besides the vm disk').toEqual([]);
  }
}
