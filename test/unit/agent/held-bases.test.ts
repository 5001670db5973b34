import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BaseImageStore } from '../../../agent/base-images/index.js';
import { heldBasesOf } from '../../../agent/daemon/held-bases.js';

describe('the target\'s answer to which offered bases it holds (issue 16)', () => {
  let dir: string;
  beforeEach(async () => { dir = await fs.mkdtemp(join(tmpdir(), 'icx-held-')); });
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }); });

  it('names the disks whose hash a file of its directories has; a failed lookup is logged and not held', async () => {
    const golden = randomBytes(20_000);
    await fs.writeFile(join(dir, 'golden.raw'), golden);
    const store = await BaseImageStore.open([dir]);
    const warned: unknown[] = [];
    const held = heldBasesOf(store, { warn: (o: unknown) => { warned.push(o); } } as never);
    const h = createHash('sha256').update(golden).digest('hex');
    expect(await held([{ id: 'vda', base: h }, { id: 'vdb', base: 'cd'.repeat(32) }])).toEqual(['vda']);
    expect(warned).toEqual([]);
    // The directory went away: nothing is held, and the daemon says why.
    await fs.rm(dir, { recursive: true });
    expect(await held([{ id: 'vda', base: h }])).toEqual([]);
    expect(warned).toHaveLength(1);
  });
});
