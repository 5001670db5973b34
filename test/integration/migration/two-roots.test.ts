/**
 * Issue 13, several Roots, end to end: cloud-a's gateway on Root 1 (intercloud.test), cloud-b's on
 * Root 2 (root2.test), each Root's directory read by the other cloud across the Roots' s2s
 * federation (`xmpp.directories`). A VM migrates from cloud-a to cloud-b; then the s2s link between
 * the Roots is cut (every s2s TCP connection reset, and new ones refused, for a few seconds) at
 * negotiate, and at instantiate (the disks moved, the target asked to define and start the VM):
 * the job ends completed or compensated and the invariant holds — the VM runs in exactly one
 * cloud, its disk intact, both journals and audit logs consistent.
 *
 * cloud-b's certificate here names cloud-b@root2.test (a cloud re-homed to Root 2: writeAgentConfig
 * issues it under the same Intercloud Root); the rest of the federation (its libvirt, LISP site and
 * broker user) is cloud-b's as in every other end-to-end test.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { service, STATE_DIR } from '../../helpers/services.js';
import {
  assertInvariant, federationHooks, migrate, onEvent, serviceUp, setUpFederation, stepStarts, waitForEnd, waitForTargetEnd, type ApiEvent,
} from './federation-fixture.js';

const run = promisify(execFile);
const slot = federationHooks();
// Both Roots up with their s2s configuration (idempotent; restarts a Root only if its config changed).
beforeAll(async () => { await serviceUp('prosody'); }, 120_000);

/** The nftables table that cuts the Roots' s2s link (named so only this test's rule is touched). */
const CUT_TABLE = 'intercloud_test_s2s_cut';
let cut = false;

/**
 * Cuts the s2s link between the Roots: TCP to or from either Root's s2s port is answered with a
 * reset (so the established s2s connections die at their next segment and new ones are refused),
 * and the established ones are destroyed at once (`ss -K`). c2s (the gateways' logins) is untouched.
 */
async function cutS2s(): Promise<void> {
  const ports = [service('prosody').s2sPort, service('prosody2').s2sPort].join(', ');
  const rules = [
    `table inet ${CUT_TABLE} {`,
    '  chain in {',
    '    type filter hook input priority 0; policy accept;',
    // (not the resets themselves: the reset answering a SYN to an s2s port leaves from that port)
    `    tcp dport { ${ports} } tcp flags & rst == 0 reject with tcp reset`,
    `    tcp sport { ${ports} } tcp flags & rst == 0 reject with tcp reset`,
    '  }',
    '}',
  ].join('\n');
  const file = join(STATE_DIR, 'test-migration', `s2s-cut-${process.pid}.nft`);
  await fs.writeFile(file, rules + '\n');
  await run('nft', ['-f', file]);
  cut = true;
  const filter = [service('prosody').s2sPort, service('prosody2').s2sPort].flatMap((p) => [`sport = :${p}`, `dport = :${p}`]).join(' or ');
  await run('ss', ['-K', '-t', `( ${filter} )`]);
  // The link is down: no s2s connection is left, and a new one is refused.
  const { stdout } = await run('ss', ['-H', '-t', 'state', 'established', `( ${filter} )`]);
  expect(stdout.trim(), 's2s connections left after the cut').toBe('');
  for (const port of [service('prosody').s2sPort, service('prosody2').s2sPort]) {
    const refused = await new Promise<string>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port }, () => { sock.destroy(); resolve('connected'); });
      sock.setTimeout(3_000, () => { sock.destroy(); resolve('timeout'); });
      sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused, `s2s port ${port} during the cut`).toBe('ECONNREFUSED');
  }
}

/** Restores the s2s link (removes the table; Prosody re-establishes s2s on the next stanza). */
async function restoreS2s(): Promise<void> {
  if (!cut) return;
  await run('nft', ['delete', 'table', 'inet', CUT_TABLE]);
  cut = false;
}

afterEach(async () => { await restoreS2s(); });

/**
 * How often cloud-a sends an unanswered instantiate or commit again here (the agent's default is
 * 30 s): a copy lost in the cut is sent again after this, not after the 5-minute request timeout.
 * Longer than the 6 s cut at instantiate, so the copy sent again goes over the restored link, as
 * with the default.
 */
const RESEND_MS = 10_000;

/** Starts the two-Root federation of test `n` (cloud-a on Root 1, cloud-b on Root 2). */
async function twoRoots(n: number) {
  return setUpFederation(n, { a: { xmppRoot: 'prosody', requestResendMs: RESEND_MS }, b: { xmppRoot: 'prosody2' } });
}

/** Migrates with the s2s link cut for `downMs` at the first event `when` matches. */
async function cutDuring(n: number, when: (e: ApiEvent) => boolean, downMs: number, endWithinMs = 240_000): Promise<void> {
  const f = (slot.f = await twoRoots(n));
  const { jobId } = await migrate(f);
  await onEvent(f, jobId, when, async () => {
    await cutS2s();
    await new Promise((r) => setTimeout(r, downMs));
    await restoreS2s();
  });
  const job = await waitForEnd(f.a, jobId, endWithinMs);
  const target = await waitForTargetEnd(f, jobId, 150_000);
  const where = await assertInvariant(f);
  const journal = await fs.readFile(join(f.a.dir, 'state', 'journal', `${jobId}.journal`), 'utf8');
  const failures = journal.split('\n').filter((l) => l.includes('"type":"step-failed"')).map((l) => {
    const r = JSON.parse(l) as { step: string; error?: { code?: string } };
    return `${r.step}:${r.error?.code ?? '?'}`;
  });
  console.info(`s2s cut ${downMs} ms: source ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}, `
    + `failed attempts at the source [${failures.join(', ')}], target ${target === 'unknown' ? 'no job' : target.state}, vm in ${where}`);
  expect(['completed', 'compensated']).toContain(job.state);
  expect(where).toBe(job.state === 'completed' ? 'cloud-b' : 'cloud-a');
  // A source that gives up after the target accepted cancels its offer: the target's job then
  // ends cancelled (compensated on the peer's cancel) rather than compensated on its own.
  if (target !== 'unknown') expect(job.state === 'completed' ? ['completed'] : ['compensated', 'cancelled']).toContain(target.state);
}

describe('a migration between clouds on different Roots (issue 13)', () => {
  it('moves the vm from cloud-a on Root 1 to cloud-b on Root 2: found, negotiated and instantiated across s2s', async () => {
    const f = (slot.f = await twoRoots(61));
    const yaml = await fs.readFile(join(f.b.dir, 'agent.yaml'), 'utf8');
    expect(yaml).toContain(`domain: ${service('prosody2').domain}`);
    const { jobId } = await migrate(f);
    const job = await waitForEnd(f.a, jobId);
    expect(job.error).toBeUndefined();
    expect(job.state).toBe('completed');
    expect(await assertInvariant(f)).toBe('cloud-b');
    // the source negotiated with cloud-b at its Root 2 JID
    const journal = await fs.readFile(join(f.a.dir, 'state', 'journal', `${jobId}.journal`), 'utf8');
    expect(journal).toContain(`cloud-b@${service('prosody2').domain}`);
  }, 300_000);

  it('the s2s link killed at negotiate: the invariant holds', async () => {
    await cutDuring(62, stepStarts('negotiate'), 4_000);
  }, 300_000);

  it('the s2s link killed at instantiate (disks moved, the vm not yet defined at the target): the invariant holds', async () => {
    // A request written into an s2s connection that the cut resets is lost without a bounce (no
    // stream management on s2s), and the remote gateway's presence does not go unavailable: the
    // source sends the idempotent instantiate again every RESEND_MS (migration.requestResendMs)
    // instead of waiting out its 5-minute timeout, so the move ends well within 2.5 minutes.
    await cutDuring(63, stepStarts('instantiate'), 6_000, 150_000);
  }, 300_000);
});
