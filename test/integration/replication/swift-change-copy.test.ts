/**
 * Issue 14, "Faults": an object changed at A while it is being copied, on the real Swift at both
 * ends — here with the replicator's periodic passes only (no pass forced by the test) and with a
 * new version of the SAME size, so only the bytes (SHA-256) tell the versions apart. While the
 * copy of v1 travels to B (paced by the subcontract's bandwidth limit) v2 replaces it at A. B's
 * Swift is sampled all along (HEAD and GET, hashed): it only ever holds nothing, v1 or v2, never
 * a mix; whenever A's status says COMPLETED, the SHA-256 B confirmed is the one of the version A's
 * status names; at the end B holds v2 and the object is COMPLETED for v2's ETag.
 * (swift-replication.test.ts has the case where a forced pass learns of the change first.)
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MiB, readAll, replicationRig, rigHooks, sha, sleep, until } from './swift-rig.js';

const hooks = rigHooks({ restartsServers: false });

describe('an object changed at A while it is copied (issue 14, faults)', () => {
  it('B never holds a mix of versions, COMPLETED always names what B confirmed, and B ends with the newer version', async () => {
    const rig = await replicationRig('chg');
    hooks.rigs.push(rig);
    const dst = rig.sub.target.bucket;
    const key = 'chg/same-size';
    const v1 = randomBytes(24 * MiB);
    const v2 = randomBytes(24 * MiB);
    const shaOf = new Map([[sha(v1), 'v1'], [sha(v2), 'v2']]);
    await rig.putA(key, v1);
    const etag1 = (await rig.storeA.headObject(rig.sub.source.bucket, key))!.etag;
    const { r, events } = await rig.replicator('chg/', { journal: 'chg', bandwidth: 4 * MiB, backoff: { baseMs: 300, capMs: 1000, maxAttempts: 50 } });

    // B's copy and A's status, sampled until the test ends
    const seenAtB: string[] = [];
    const wrongStatus: string[] = [];
    const wrongMetadata: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const o = r.object(key);
        if (o?.state === 'COMPLETED' && o.replica !== undefined) {
          const expected = o.etag === etag1 ? sha(v1) : sha(v2);
          if (o.replica.sha256 !== expected) wrongStatus.push(`COMPLETED for etag ${o.etag} with sha-256 ${o.replica.sha256}`);
        }
        if ((await rig.storeB.headObject(dst, key)) !== undefined) {
          // metadata and bytes from one GET: a HEAD then a GET may straddle B's switch to v2
          // (the adapter fails a read whose bytes are not those its metadata names: that counts too)
          const read = await rig.storeB.getObject(dst, key);
          const bytes = await readAll(read.body).catch((e: unknown) => {
            wrongMetadata.push(`a read that failed: ${String(e)}`);
            return undefined;
          });
          if (bytes !== undefined) {
            const got = shaOf.get(sha(bytes)) ?? `a mix (${bytes.length} bytes, sha-256 ${sha(bytes)})`;
            if (seenAtB.at(-1) !== got) seenAtB.push(got);
            if (read.info.sha256 !== sha(bytes)) wrongMetadata.push(`${got} served with sha-256 metadata ${read.info.sha256}`);
          }
        }
        await sleep(200);
      }
    })();
    try {
      r.start({ passEveryMs: 1000 });
      await until('the copy of v1 to be in flight', () => r.status().inFlightObjects > 0, 30_000);
      await sleep(1000);
      await rig.putA(key, v2);
      const etag2 = (await rig.storeA.headObject(rig.sub.source.bucket, key))!.etag;
      expect(etag2).not.toBe(etag1);
      await until('v2 to be COMPLETED', () => r.object(key)?.state === 'COMPLETED' && r.object(key)!.etag === etag2, 120_000);
      await r.idle(AbortSignal.timeout(60_000));
    } finally {
      sampling = false;
      await sampler;
    }
    expect(seenAtB.filter((v) => v !== 'v1' && v !== 'v2'), 'B never served a mix').toEqual([]);
    expect(wrongStatus).toEqual([]);
    expect(wrongMetadata, 'the sha-256 metadata B holds is always that of the bytes it serves').toEqual([]);
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 1, failed: 0 });
    // (the sampler's last GET may have begun before v2 reached B: B's final copy is read here)
    await rig.expectAtB(key, v2);
    // the last completion announced is v2's; any earlier one was v1's, announced before v2 was known
    const completions = events.filter(({ e }) => e.type === 'replica-completed');
    expect(completions.length).toBeGreaterThanOrEqual(1);
    process.stdout.write(`change during copy: B served ${seenAtB.join(' → ')}; ${completions.length} completion(s)\n`);
    await r.stop();
  }, 240_000);
});
