/**
 * A migration between two clouds that share nothing but the Intercloud Root (issue 13): each
 * agent's config names its own broker only, and the disks go through the target's (cloud-b's)
 * broker — seen there, during the transfer, through the broker's own management API — never
 * through cloud-a's.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertInvariant, federationHooks, midTransfer, migrate, onEvent, setUpFederation, waitForEnd, type Services,
} from './federation-fixture.js';

const slot = federationHooks();

type Broker = Services['brokers'][string];

async function mgmt(broker: Broker, path: string): Promise<unknown> {
  const password = (await fs.readFile(broker.management.passwordFile, 'utf8')).trim();
  const res = await fetch(new URL(path, broker.management.url), {
    headers: { authorization: `Basic ${Buffer.from(`${broker.management.user}:${password}`).toString('base64')}` },
  });
  expect(res.status).toBe(200);
  return res.json();
}

const transferQueues = async (broker: Broker): Promise<string[]> =>
  ((await mgmt(broker, '/api/queues/transfers?columns=name')) as Array<{ name: string }>).map((q) => q.name).filter((n) => n.startsWith('xfer.cloud-a.cloud-b.'));
const connectedUsers = async (broker: Broker): Promise<string[]> =>
  ((await mgmt(broker, '/api/connections?columns=user,vhost')) as Array<{ user: string; vhost: string }>).map((c) => `${c.user}@${c.vhost}`);

describe("a migration through the target's own broker", () => {
  it("moves the VM with each agent naming only its own broker, the data through cloud-b's", async () => {
    const f = (slot.f = await setUpFederation(63, { diskMiB: 192, randomMiB: 160 }));
    const brokerA = f.s.brokers['cloud-a']!;
    const brokerB = f.s.brokers['cloud-b']!;
    // No agent config names another cloud's broker.
    const yamlA = await fs.readFile(join(f.a.dir, 'agent.yaml'), 'utf8');
    const yamlB = await fs.readFile(join(f.b.dir, 'agent.yaml'), 'utf8');
    expect(yamlA).toContain(brokerA.url);
    expect(yamlA).not.toContain(brokerB.url);
    expect(yamlA).not.toContain(brokerB.identity);
    expect(yamlB).toContain(brokerB.url);
    expect(yamlB).not.toContain(brokerA.url);
    expect(yamlB).not.toContain(brokerA.identity);

    const beforeA = await transferQueues(brokerA);
    const { jobId } = await migrate(f);
    let during: { atB: string[]; atA: string[]; usersB: string[]; usersA: string[] } | undefined;
    await onEvent(f, jobId, midTransfer(0.2), async () => {
      during = {
        atB: await transferQueues(brokerB), atA: await transferQueues(brokerA),
        usersB: await connectedUsers(brokerB), usersA: await connectedUsers(brokerA),
      };
    });
    const job = await waitForEnd(f.a, jobId, 240_000);
    expect(job.state).toBe('completed');
    expect(await assertInvariant(f)).toBe('cloud-b');
    console.info(`mid-transfer: cloud-b's broker queues ${JSON.stringify(during?.atB)}, connections ${JSON.stringify(during?.usersB)}; cloud-a's broker connections ${JSON.stringify(during?.usersA)}`);
    // The transfer's queues were at cloud-b's broker, with cloud-a (the sender) and cloud-b
    // (the receiver) logged in there; none at cloud-a's broker, where cloud-b never logged in.
    expect(during!.atB.some((q) => q.endsWith('.data'))).toBe(true);
    expect(during!.atA.filter((q) => !beforeA.includes(q))).toEqual([]);
    expect(during!.usersB).toEqual(expect.arrayContaining(['cloud-a@transfers', 'cloud-b@transfers']));
    expect(during!.usersA.filter((u) => u.startsWith('cloud-b@'))).toEqual([]);
    // Each agent asked its own broker, with its own permissions there, whether it caps messages
    // (what a peer's transfer can make the agent hold): both do.
    for (const agent of [f.a, f.b]) expect(await fs.readFile(agent.logFile, 'utf8')).toContain('broker refuses messages over the cap');
  }, 420_000);
});
