/**
 * Issue 14, "a peer asking for more than its reservation", at cloud-b's real agent daemon: the
 * receiver B's agent serves for a peer's subcontract holds the peer to the terms B accepted.
 * Two real agent daemons (cloud-a, cloud-b; as storage-daemon.test.ts starts them) on the real
 * Prosody, brokers and Swift: A subcontracts a bucket through the local API with a reservation of
 * at most 2 objects, then 3 objects appear in A's bucket. A's replicator sends all three (A does
 * not count B's reservation for it); B's agent must store 2 and refuse the third with
 * `REPL_OVER_RESERVATION`, which A reports as that object's FAILED reason. B's bucket is checked
 * on cloud-b's Swift itself. Takes the federation lock (the agents log in as cloud-a and cloud-b).
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Element } from '@xmpp/client';
import { createObjectStore } from '../../../adapters/storage/index.js';
import { LocalApiClient } from '../../../agent/api/client.js';
import { AmqpReplicaPeer, Replicator, type Subcontract } from '../../../agent/replication/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import {
  buildSubcontractRequest, parseBeganBucket, parseMigrationFailure, subcontractRequestPayload, type SubcontractRequest,
} from '../../../protocols/xmpp/index.js';
import { STATE_DIR, serviceEnv } from '../../helpers/services.js';
import { loadServicesFile } from '../../../scripts/local-federation.js';
import { gatewayJid, startGateway, type TestGateway } from '../xmpp/gateways.js';
import type { SubcontractView } from '../../../agent/daemon/storage-federation.js';
import { storageAgentsRig, waitFor } from './storage-agents-rig.js';
import { dropBucket } from './swift-rig.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const rig = storageAgentsRig('sdt');
let bucketB = '';
let refOfA: { offerId: string; subcontractId: string } | undefined;

describe("cloud-b's agent holds a peer to the reservation it accepted (issue 14)", () => {
  it('beyond the objects reserved, B stores nothing more and A reports the object FAILED with REPL_OVER_RESERVATION', async () => {
    const api = new LocalApiClient(join(rig.a.dir, 'agent.sock'));
    const { subcontractId, jobId } = await api.startSubcontract({ bucket: rig.src, to: 'cloud-b', replicas: 1, regions: ['na-east'], ack: 'async', capacityGiB: 1, maxObjects: 2 });
    // active once B made its bucket (`begin` done), as `intercloud storage subcontract` waits for it
    const job = await waitFor('the subcontract to begin', () => api.job(jobId), (j) => j.completedSteps.includes('begin') || j.state !== 'running', 120_000);
    expect(job.state, JSON.stringify(job.error)).toBe('running');
    const running = await api.subcontract(subcontractId);
    refOfA = { offerId: (job.input as { offerId: string }).offerId, subcontractId };
    bucketB = running.target!.bucket;
    rig.bucketsAtB.push(bucketB);
    const objs = new Map<string, Buffer>();
    for (let i = 0; i < 3; i++) objs.set(`res/${i}`, randomBytes(10_000 + i));
    for (const [k, v] of objs) await rig.storeA.putObject(rig.src, k, v, { sizeBytes: v.length, sha256: sha(v) });
    const st = await waitFor('two objects COMPLETED and one FAILED (or all three COMPLETED)', () => api.subcontract(subcontractId, { objects: true }),
      (v: SubcontractView) => (v.replication?.objects.completed ?? 0) + (v.replication?.objects.failed ?? 0) === 3, 120_000);
    expect(st.replication?.objects).toMatchObject({ completed: 2, failed: 1, pending: 0 });
    expect(st.replication?.failedByCode).toEqual({ REPL_OVER_RESERVATION: 1 });
    const failed = st.objects!.filter((o) => o.state === 'FAILED');
    expect(failed).toHaveLength(1);
    // what B's Swift holds: exactly the two COMPLETED objects, nothing of the refused one
    const listing = await rig.storeB.listObjects(bucketB);
    expect(listing.objects.map((o) => o.key)).toEqual(st.objects!.filter((o) => o.state === 'COMPLETED').map((o) => o.key).sort());
    expect(await rig.storeB.headObject(bucketB, failed[0]!.key)).toBeUndefined();
    for (const o of listing.objects) expect((await rig.storeB.headObject(bucketB, o.key))?.sha256).toBe(sha(objs.get(o.key)!));
  }, 300_000);
});

describe('cloud-c, a separate certified cloud driven by a plain gateway session and AMQP client, at cloud-b\'s agent (issue 14)', () => {
  it('writing beyond its reservation is refused with REPL_OVER_RESERVATION; asking about a subcontract that is not its own is refused with a coded reason; nothing of it is stored', async () => {
    const env = { prosody: serviceEnv<Parameters<typeof startGateway>[0]['prosody']>('prosody'), pki: serviceEnv<Parameters<typeof startGateway>[0]['pki']>('pki') };
    const bJid = gatewayJid(env, 'cloud-b');
    let c: TestGateway | undefined;
    let peer: AmqpReplicaPeer | undefined;
    let r: Replicator | undefined;
    let bucketC: string | undefined;
    const local = createObjectStore('fake', { name: 'cloud-c', region: 'na-east' });
    try {
      c = await startGateway(env, 'cloud-c');
      const cs = c.session;
      /** A signed subcontract request to cloud-b's agent; a refusal is thrown with B's code. */
      const ask = async (req: SubcontractRequest): Promise<Element> => {
        try {
          return await cs.request(bJid, buildSubcontractRequest(req, await cs.signRequest(subcontractRequestPayload(req, 'cloud-b'))), 60_000);
        } catch (err) {
          const failure = isIntercloudError(err, 'XMPP_STANZA_ERROR') ? parseMigrationFailure(err.details['application'] as Element | undefined) : undefined;
          throw Object.assign(new Error(`refused: ${failure?.code ?? String(err)}`), { peerCode: failure?.code });
        }
      };
      const refusal = (p: Promise<unknown>): Promise<string | undefined> => p.then(() => 'answered', (e: { peerCode?: string }) => e.peerCode);

      // cloud-a's subcontract at B is not cloud-c's: neither its listing nor its end is answered
      expect(refOfA, 'the first test made cloud-a\'s subcontract').toBeDefined();
      const notMine = await refusal(ask({ type: 'listing', ...refOfA! }));
      expect(notMine).toMatch(/^SUBCONTRACT_/);
      expect(await refusal(ask({ type: 'end', ...refOfA! }))).toMatch(/^SUBCONTRACT_/);
      expect(await rig.storeB.headBucket(bucketB), "cloud-a's bucket at B is untouched").toBe(true);

      // cloud-c's own subcontract: 1 GiB, at most 2 objects
      const subcontractId = `sc-c-${rig.run}`;
      const ends = new Date(Date.now() + 3_600_000).toISOString();
      const out = await cs.sendOffer(bJid, {
        workload: { type: 'storage', subcontractId, sourceBucket: 'c-src', replicas: 1, ack: 'async', capacityGiB: 1, maxObjects: 2, ends, atEnd: 'delete' },
        constraints: { regions: ['na-east'] }, terms: { currency: 'EUR', maxPricePerGbMonth: 1 },
      });
      expect(out.type, JSON.stringify(out)).toBe('accept');
      if (out.type !== 'accept') return;
      const ref = { offerId: out.accept.offerId, subcontractId };
      bucketC = parseBeganBucket(await ask({ type: 'begin', ...ref })).bucket;
      expect(bucketC).not.toBe(bucketB);
      expect(await rig.storeB.headBucket(bucketC)).toBe(true);

      // cloud-c's own AMQP client on cloud-b's broker (its certificate), sending three objects
      const s = loadServicesFile(STATE_DIR) as unknown as { brokers: Record<string, { url: string; identity: string }>; pki: { root: string; clouds: Record<string, { cert: string; key: string }> } };
      const sub: Subcontract = {
        id: subcontractId, from: 'cloud-c', to: 'cloud-b', source: { bucket: 'c-src', prefix: '' }, target: { bucket: bucketC },
        ackMode: 'async', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
      };
      peer = new AmqpReplicaPeer({
        broker: { url: s.brokers['cloud-b']!.url, ca: s.pki.root, cert: s.pki.clouds['cloud-c']!.cert, key: s.pki.clouds['cloud-c']!.key, servername: s.brokers['cloud-b']!.identity, heartbeatSeconds: 5 },
        subcontract: sub, journalDir: join(rig.dir, 'c-xfer'), answerTimeoutMs: 30_000,
      });
      await local.createBucket('c-src');
      const objs = new Map<string, Buffer>();
      for (let i = 0; i < 3; i++) objs.set(`c/${i}`, randomBytes(5_000 + i));
      for (const [k, v] of objs) await local.putObject('c-src', k, v, { sizeBytes: v.length, sha256: sha(v) });
      r = await Replicator.open({ subcontract: sub, store: local, peer, journalPath: join(rig.dir, 'c-journal'), stagingDir: join(rig.dir, 'c-staging'), batchMaxObjects: 1 });
      r.start();
      await r.runPass();
      await waitFor('every object of cloud-c to be settled', () => Promise.resolve(r!.status()), (st) => st.objects.pending === 0, 120_000);
      expect(r.status().objects).toMatchObject({ completed: 2, failed: 1 });
      expect(r.status().failedByCode).toEqual({ REPL_OVER_RESERVATION: 1 });
      const listing = await rig.storeB.listObjects(bucketC);
      expect(listing.objects).toHaveLength(2);
      for (const o of listing.objects) expect((await rig.storeB.headObject(bucketC, o.key))?.sha256).toBe(sha(objs.get(o.key)!));
      await r.stop();
      r = undefined;
      // cloud-c's AMQP client naming cloud-a's subcontract (its bucket at B): its broker grant does
      // not cover that channel, so a delete of cloud-a's objects never reaches B's agent
      const aKeys = (await rig.storeB.listObjects(bucketB)).objects.map((o) => o.key);
      expect(aKeys.length).toBeGreaterThan(0);
      const intruder = new AmqpReplicaPeer({
        broker: { url: s.brokers['cloud-b']!.url, ca: s.pki.root, cert: s.pki.clouds['cloud-c']!.cert, key: s.pki.clouds['cloud-c']!.key, servername: s.brokers['cloud-b']!.identity, heartbeatSeconds: 5 },
        subcontract: { ...sub, id: refOfA!.subcontractId, from: 'cloud-a', target: { bucket: bucketB } }, journalDir: join(rig.dir, 'c-intruder'), answerTimeoutMs: 10_000,
      });
      try {
        const denied = await intruder.delete(aKeys, AbortSignal.timeout(30_000)).then(
          (keys) => ({ deleted: keys }),
          (e: unknown) => (isIntercloudError(e) ? { code: e.code, replyCode: e.details['replyCode'] } : { uncoded: String(e) }),
        );
        // refused by cloud-b's broker (AMQP 403 ACCESS_REFUSED), as a coded error keeping the reply code
        expect(denied).toEqual({ code: 'REPL_PEER_REJECTED', replyCode: 403 });
      } finally {
        await intruder.close();
      }
      expect((await rig.storeB.listObjects(bucketB)).objects.map((o) => o.key), "cloud-a's objects at B are all there").toEqual(aKeys);
      // cloud-c ends its subcontract: B deletes its bucket
      await ask({ type: 'end', ...ref });
      expect(await rig.storeB.headBucket(bucketC)).toBe(false);
      bucketC = undefined;
    } finally {
      await r?.stop();
      await peer?.close();
      await c?.session.stop();
      if (bucketC) await dropBucket(rig.storeB, bucketC);
      await local.close();
    }
  }, 300_000);
});
