import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BaseImageStore, imageSha256, isImageHash, SAVED_HASH_SUFFIX } from '../../../agent/base-images/index.js';
import { isIntercloudError, listErrorCodes } from '../../../protocols/errors/index.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('base images known by content', () => {
  let dir: string;
  let bases: string;
  let outside: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(join(tmpdir(), 'icx-bases-'));
    bases = join(dir, 'bases');
    outside = join(dir, 'outside');
    await fs.mkdir(bases);
    await fs.mkdir(outside);
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('hashes the whole image once and reuses the saved hash while size and mtime are unchanged', async () => {
    const data = randomBytes(300_000);
    const p = join(bases, 'golden.raw');
    await fs.writeFile(p, data);
    expect(await imageSha256(p)).toEqual({ sha256: sha(data), size: data.length });
    const saved = JSON.parse(readFileSync(`${p}${SAVED_HASH_SUFFIX}`, 'utf8')) as { sha256: string };
    expect(saved.sha256).toBe(sha(data));
    // The saved hash is what answers while the file is unchanged (proved by planting another one) …
    const planted = 'ab'.repeat(32);
    await fs.writeFile(`${p}${SAVED_HASH_SUFFIX}`, JSON.stringify({ ...saved, sha256: planted }));
    expect((await imageSha256(p)).sha256).toBe(planted);
    // … and is computed again once the file changed.
    const changed = Buffer.concat([data, Buffer.from('x')]);
    await fs.writeFile(p, changed);
    expect((await imageSha256(p)).sha256).toBe(sha(changed));
  });

  it('counts holes as zeros', async () => {
    const p = join(bases, 'sparse.raw');
    const h = await fs.open(p, 'w');
    await h.truncate(5 * 1024 * 1024);
    await h.write(Buffer.from('data'), 0, 4, 3 * 1024 * 1024);
    await h.close();
    const expected = Buffer.alloc(5 * 1024 * 1024);
    expected.write('data', 3 * 1024 * 1024);
    expect((await imageSha256(p)).sha256).toBe(sha(expected));
  });

  it('maps a hash to a base of its own directories, and answers undefined for one it does not hold', async () => {
    const a = randomBytes(70_000);
    await fs.writeFile(join(bases, 'debian-12.raw'), a);
    const store = await BaseImageStore.open([bases]);
    expect(await store.resolve(sha(a))).toEqual({ path: join(bases, 'debian-12.raw'), size: a.length, sha256: sha(a) });
    expect(await store.resolve(sha(randomBytes(10)))).toBeUndefined();
  });

  it('never answers with a file outside the listed directories: elsewhere, behind a symlink, in a subdirectory, hidden', async () => {
    const secret = randomBytes(50_000);
    await fs.writeFile(join(outside, 'secret.raw'), secret);
    await fs.symlink(join(outside, 'secret.raw'), join(bases, 'link.raw'));
    const sub = randomBytes(50_000);
    await fs.mkdir(join(bases, 'sub'));
    await fs.writeFile(join(bases, 'sub', 'nested.raw'), sub);
    const hidden = randomBytes(50_000);
    await fs.writeFile(join(bases, '.partial'), hidden);
    const store = await BaseImageStore.open([bases]);
    expect(await store.resolve(sha(secret))).toBeUndefined();
    expect(await store.resolve(sha(sub))).toBeUndefined();
    expect(await store.resolve(sha(hidden))).toBeUndefined();
    expect(await store.list()).toEqual([]);
  });

  it('refuses a malformed hash with BASE_BAD_HASH, whatever its shape', async () => {
    const store = await BaseImageStore.open([bases]);
    for (const bad of ['AB'.repeat(32), 'ab'.repeat(31), 'ab'.repeat(33), '../../etc/passwd', `${'ab'.repeat(32)}\n`, '', 42, null, { sha256: 'ab'.repeat(32) }]) {
      const err = await store.resolve(bad).then(() => undefined, (e: unknown) => e);
      expect(isIntercloudError(err, 'BASE_BAD_HASH'), String(bad)).toBe(true);
    }
    expect(isImageHash('ab'.repeat(32))).toBe(true);
  });

  it('knows a base the operator adds after it opened, and forgets one replaced', async () => {
    const store = await BaseImageStore.open([bases]);
    const a = randomBytes(40_000);
    await fs.writeFile(join(bases, 'late.raw'), a);
    expect((await store.resolve(sha(a)))?.path).toBe(join(bases, 'late.raw'));
    const b = randomBytes(40_000);
    await fs.writeFile(join(bases, 'late.raw'), b);
    await fs.utimes(join(bases, 'late.raw'), new Date(), new Date(Date.now() + 5_000));
    expect(await store.resolve(sha(a))).toBeUndefined();
    expect((await store.resolve(sha(b)))?.path).toBe(join(bases, 'late.raw'));
  });

  it('fails with BASE_IO on a directory that does not exist', async () => {
    const err = await BaseImageStore.open([join(dir, 'missing')]).then(() => undefined, (e: unknown) => e);
    expect(isIntercloudError(err, 'BASE_IO')).toBe(true);
  });

  it('documents each of its error codes in its README', () => {
    const readme = readFileSync(new URL('../../../agent/base-images/README.md', import.meta.url), 'utf8');
    const mine = listErrorCodes().filter((c) => c.area === 'base-images');
    expect(mine.map((c) => c.code).sort()).toEqual(['BASE_BAD_HASH', 'BASE_IO']);
    expect(mine.filter((c) => !readme.includes(`| \`${c.code}\` | ${c.doc} | ${c.retryable ? 'yes' : 'no'} |`)).map((c) => c.code)).toEqual([]);
  });
});
