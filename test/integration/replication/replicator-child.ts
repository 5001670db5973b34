/**
 * A's replicating process for replicator-crash.test.ts: opens a {@link Replicator} on the journal
 * it is given (A's Swift, the AMQP peer on cloud-b's broker), starts it, runs a pass, and prints
 * each replication event as one JSON line on stdout until it is killed. Not a test on its own.
 *
 *   node --import tsx replicator-child.ts '<json: subcontract, journalPath, stagingDir, journalDir, broker>'
 */
import { createObjectStore } from '../../../adapters/storage/index.js';
import { AmqpReplicaPeer, Replicator, type Subcontract } from '../../../agent/replication/index.js';
import type { BrokerOptions } from '../../../protocols/amqp/index.js';
import { serviceEnv } from '../../helpers/services.js';

interface ChildConfig {
  subcontract: Subcontract;
  journalPath: string;
  stagingDir: string;
  journalDir: string;
  broker: BrokerOptions;
}

const c = JSON.parse(process.argv[2]!) as ChildConfig;
const e = serviceEnv<Record<string, { endpoint: string; region: string; accessKeyId: string; secretAccessKeyFile: string }>>('swift')['cloud-a']!;
const storeA = createObjectStore('s3', { name: 'cloud-a', endpoint: e.endpoint, region: e.region, accessKeyId: e.accessKeyId, secretAccessKeyFile: e.secretAccessKeyFile, partSizeBytes: 8 * 1024 * 1024 });
const peer = new AmqpReplicaPeer({ broker: c.broker, subcontract: c.subcontract, journalDir: c.journalDir, answerTimeoutMs: 15_000, transfer: { reconnectDelayMs: 300, endRetryMs: 500 } });
const r = await Replicator.open({ subcontract: c.subcontract, store: storeA, peer, journalPath: c.journalPath, stagingDir: c.stagingDir });
r.onEvent((e) => process.stdout.write(`${JSON.stringify(e)}\n`));
r.start();
await r.runPass();
process.stdout.write(`${JSON.stringify({ type: 'child-pass-done' })}\n`);
setInterval(() => undefined, 60_000);
