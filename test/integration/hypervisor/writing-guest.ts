/**
 * A variant of the project's test guest (scripts/services.d/60-guest.sh) that also *writes its
 * disk* while it runs: each heartbeat second it writes 64 KiB of random bytes to the tail of
 * /dev/vda (the last 16 MiB of a 64 MiB self-booting disk from scripts/guest-boot-disk, beyond
 * the files the FAT holds). Built from the guest's own initrd with a second cpio archive appended
 * (the kernel unpacks both; the later /init wins), so the kernel, modules and heartbeat are the
 * services' guest as it is.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { service } from '../../helpers/services.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '../../..');

/** The line of the guest's init that ends each heartbeat; the writer goes in front of it. */
const HB_STEP = 'n=$((n + 1)); sleep 1';
/** 64 KiB at 4 KiB block 12288 + (n mod 256) * 16: inside [48 MiB, 64 MiB), synced to the disk. */
const WRITE = 'dd if=/dev/urandom of=/dev/vda bs=4096 count=16 seek=$((12288 + (n % 256) * 16)) conv=notrunc,fsync 2>/dev/null';

/** Makes `out`: a 64 MiB raw boot disk whose guest prints the usual heartbeat and writes its disk. */
export async function makeWritingGuestDisk(diskId: string, out: string, work: string): Promise<void> {
  const guest = service('guest');
  await run(join(REPO, 'scripts/guest-boot-disk'), [diskId, out, '64']);
  const root = join(work, `init-${diskId}`);
  await fs.mkdir(root, { recursive: true });
  // The guest's own /init, taken out of its initrd.
  const { stdout: listing } = await run('bash', ['-c', 'set -o pipefail; zcat "$1" | (cd "$2" && busybox cpio -i init 2>/dev/null)', 'bash', guest.initrd, root]);
  void listing;
  const init = await fs.readFile(join(root, 'init'), 'utf8');
  if (!init.includes(HB_STEP)) throw new Error(`the guest's /init has no '${HB_STEP}' line: the writing guest needs updating`);
  await fs.writeFile(join(root, 'init'), init.replace(HB_STEP, `${WRITE}; ${HB_STEP}`), { mode: 0o755 });
  const initrd = join(work, `initrd-${diskId}.gz`);
  await run('bash', ['-c', 'set -o pipefail; { cat "$1"; (cd "$2" && echo init | busybox cpio -o -H newc 2>/dev/null | gzip -1); } > "$3"', 'bash', guest.initrd, root, initrd]);
  await run('mcopy', ['-o', '-i', out, initrd, '::initrd.gz'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
}

/** One heartbeat line of the guest's console. */
export interface Heartbeat {
  readonly n: number;
  readonly uptime: number;
  readonly disk: string;
}

/** The heartbeats in a console log, in order. */
export function heartbeats(log: string): Heartbeat[] {
  const out: Heartbeat[] = [];
  for (const m of log.matchAll(/INTERCLOUD-GUEST-HB n=(\d+) uptime=([\d.]+) disk=(\S+)/g)) {
    out.push({ n: Number(m[1]), uptime: Number(m[2]), disk: m[3]! });
  }
  return out;
}

/** Waits until `file` holds a heartbeat with `n >= atLeast`; resolves with all heartbeats. */
export async function waitForHeartbeat(file: string, atLeast: number, timeoutMs: number): Promise<Heartbeat[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await fs.readFile(file, 'latin1').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const hbs = heartbeats(text);
    if (hbs.some((h) => h.n >= atLeast)) return hbs;
    if (Date.now() > deadline) throw new Error(`no heartbeat n>=${atLeast} in '${file}' after ${timeoutMs} ms: ${text.slice(-400)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
