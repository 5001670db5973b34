/**
 * The libvirt adapter's watch on a state file `virsh save` writes (live-move.ts
 * `STATE_WRITTEN_WATCH`), run with the host's `sh` on files this test writes as libvirt would:
 * the header's magic `LibvirtQemudPart` while QEMU's stream is written, `LibvirtQemudSave` last.
 * It must answer with the length of this save's file once whole, and never take a file an earlier
 * save left for it. Each step waits for the watch's next looks (a dot each), not for a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STATE_WRITTEN_WATCH } from '../../../adapters/hypervisor/libvirt/live-move.js';

const dir = mkdtempSync(join(tmpdir(), 'state-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (magic: 'Part' | 'Save', length: number): Buffer => Buffer.concat([Buffer.from(`LibvirtQemud${magic}`), Buffer.alloc(length - 16, 7)]);

/** The watch on `path`, with its output so far, its looks counted, and its end. */
function watch(path: string, cleared: boolean): { looks: () => number; out: () => string; ended: Promise<number | null>; child: ChildProcess; nextLooks: (n: number) => Promise<void> } {
  const child = spawn('sh', ['-c', STATE_WRITTEN_WATCH, 'sh', path, cleared ? '1' : '0']);
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); for (const w of waiters.splice(0)) w(); });
  const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => { for (const w of waiters.splice(0)) w(); resolve(code); }));
  const looks = (): number => (out.match(/\./g) ?? []).length;
  const nextLooks = async (n: number): Promise<void> => {
    const target = looks() + n;
    while (looks() < target && child.exitCode === null) await new Promise<void>((r) => waiters.push(r));
  };
  return { looks, out: () => out, ended, child, nextLooks };
}

describe('libvirt state-file watch', () => {
  it('a file removed before the save: answers at once with the whole file\'s length', async () => {
    const path = join(dir, 'cleared.state');
    writeFileSync(path, file('Save', 8192));
    const w = watch(path, true);
    expect(await w.ended).toBe(0);
    expect(w.out().trim().split('\n').at(-1)).toBe('8192');
  });

  it('a file an earlier save left is not taken; this save\'s own is, once whole', async () => {
    const path = join(dir, 'stale.state');
    writeFileSync(path, file('Save', 4096));
    const w = watch(path, false);
    await w.nextLooks(3);
    expect(w.child.exitCode).toBeNull();
    // libvirt truncates and writes its partial header, then QEMU's stream, then the final magic.
    writeFileSync(path, file('Part', 65536));
    await w.nextLooks(2);
    expect(w.child.exitCode).toBeNull();
    writeFileSync(path, file('Save', 1 << 20));
    expect(await w.ended).toBe(0);
    expect(w.out().trim().split('\n').at(-1)).toBe(String(1 << 20));
  });

  it('a file that did not exist yet counts once it appears whole', async () => {
    const path = join(dir, 'new.state');
    const w = watch(path, false);
    await w.nextLooks(2);
    expect(w.child.exitCode).toBeNull();
    writeFileSync(path, file('Save', 12288));
    expect(await w.ended).toBe(0);
    expect(w.out().trim().split('\n').at(-1)).toBe('12288');
  });

  it('ends when its output is closed (the agent gave up on it)', async () => {
    const w = watch(join(dir, 'never.state'), false);
    await w.nextLooks(2);
    w.child.stdout!.destroy();
    expect(await w.ended).not.toBe(0);
  });
});
