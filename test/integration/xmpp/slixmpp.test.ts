/**
 * Independent check: Debian's slixmpp (not our code, not xmpp.js) logs in to the same
 * Prosody, discovers our gateway with disco#info, reads its features and fetches its
 * catalog entry from PubSub.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_NODE, FEATURES, IDENTITIES } from '../../../protocols/xmpp/index.js';
import { execFileSync } from 'node:child_process';
import { serviceEnv } from '../../helpers/services.js';
import { ensureCatalogNode, gatewayJid, servicesUp, startGateway, testCloud, retractTestEntries, type TestGateway } from './gateways.js';

// Before servicesUp(): it reads (and caches) services.json.
execFileSync(join(import.meta.dirname, '../../../scripts/services'), ['up', 'slixmpp'], { stdio: 'ignore' });
const env = servicesUp();
const { python } = serviceEnv<{ python: string }>('slixmpp');
const B = testCloud('sb');
const run = promisify(execFile);

describe('slixmpp reads what our gateway announces', () => {
  let b: TestGateway;
  beforeAll(async () => {
    await ensureCatalogNode(env);
    b = await startGateway(env, B);
  });
  afterAll(async () => {
    await b?.session.stop();
  });

  it('sees the gateway identity, its features and its signed catalog entry', async () => {
    const { stdout } = await run(python, [
      join(import.meta.dirname, 'slixmpp-check.py'),
      env.prosody.host, String(env.prosody.port), env.prosody.scram.jid, env.prosody.scram.passwordFile, env.pki.root,
      gatewayJid(env, B), env.prosody.pubsubJid, CATALOG_NODE, B,
    ], { timeout: 60_000 });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
      error?: string; identities: string[][]; features: string[];
      entry: { cloud: string; jid: string; regions: string[]; formats: string[]; vcpus: number; certificate: string; signed: boolean };
    };
    expect(seen.error).toBeUndefined();
    expect(seen.identities).toContainEqual([IDENTITIES.GATEWAY.category, IDENTITIES.GATEWAY.type, IDENTITIES.GATEWAY.name]);
    expect(seen.features).toEqual([...b.session.discoInfo().features].sort());
    expect(seen.features).toContain(FEATURES.VM_HOSTING);
    const mine = b.session.catalogEntry();
    expect(seen.entry).toEqual({
      cloud: B, jid: `${B}@intercloud.test`, regions: [...mine.regions], formats: [...mine.formats],
      vcpus: mine.capacity.vcpus, certificate: b.trust.certificateSha256, signed: true,
    });
  });
});

afterAll(async () => {
  await retractTestEntries(env);
});
