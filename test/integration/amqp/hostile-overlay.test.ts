/**
 * A source cloud's overlay names a file of the target's host as its external data file: QEMU
 * would open that file as soon as anything looks at the image (`qemu-img info`). cloud-c, a
 * certified cloud, plays the source: it sends, over the real broker, the overlay of a warm or
 * live move to cloud-b's receive port, which refuses it from its header before any hypervisor
 * command runs, and the same file as a cold move's disk (probed for its format at the target);
 * an honest overlay is taken.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Hypervisor } from '../../../adapters/hypervisor/index.js';
import { targetReceivePort } from '../../../agent/daemon/transfer-ports.js';
import { moveTransferId, transferIdFor } from '../../../agent/daemon/transfer-ids.js';
import { imageKey, type MoveImage, type Reservation } from '../../../agent/migration/index.js';
import { sendTransfer } from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { brokerFor, scratch } from './helpers.js';

describe("a source's overlay that names a data file", () => {
  it("is refused by cloud-b's receive port from its header, before anything opens it; an honest overlay is taken", async () => {
    const dir = scratch();
    const pool = scratch();
    const victim = join(dir, 'host-secret.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', victim, '1M']);
    // Nothing of the hypervisor runs: a command would be a failure of this test.
    const hv = { kind: 'libvirt', localStorageDir: async () => pool } as unknown as Hypervisor;
    const port = targetReceivePort(join(dir, 'staging'), {
      cloudId: 'cloud-b', broker: brokerFor('cloud-b'), checkEndpoint: async () => { throw new Error('a receiving port checks no endpoint'); },
      journalDir: join(dir, 'journal-b'), chunkBytes: 65536, windowBytes: 1024 * 1024, persistent: false,
    }, hv);
    const offerId = randomUUID();
    const reservation = { reservationId: 'r', expiresAt: new Date(Date.now() + 120_000).toISOString() } as Reservation;

    /** cloud-c sends `file` as `image` of the offer; cloud-b receives it: its answer or error code. */
    const move = async (file: string, image: MoveImage, slot: string): Promise<string> => {
      const [received] = await Promise.all([
        port.receiveImage!({ offerId, from: 'cloud-c', reservation, image, slot, maxSize: 64 * 1024 * 1024 }, () => undefined, AbortSignal.timeout(60_000))
          .then((r) => `received ${r.path}`, (err: unknown) => (isIntercloudError(err) ? `${err.code}: ${err.message}` : String(err))),
        sendTransfer({
          broker: brokerFor('cloud-c'), transferId: moveTransferId(offerId, imageKey(image)), from: 'cloud-c', to: 'cloud-b',
          source: file, journalDir: join(dir, 'journal-c'), expiresAt: Date.now() + 60_000, chunkSize: 65536,
        }).catch(() => undefined),
      ]);
      return received;
    };

    const hostile = join(dir, 'hostile.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${victim},data_file_raw=on`, hostile, '1M']);
    const refused = await move(hostile, { diskId: '0', depth: 1 }, 'd0-1');
    expect(refused).toMatch(/^MIGRATE_BAD_IMAGES: image '0\.1' of offer '.*' is refused: it keeps its data in an external data file$/);

    // The same file as a cold move's disk: probed for its format at the target, refused first.
    const cold = await Promise.all([
      port.receiveDisks({ offerId, from: 'cloud-c', reservation, disks: [{ id: '0', capacityBytes: 64 * 1024 * 1024 }] }, () => undefined, AbortSignal.timeout(60_000))
        .then(() => 'received', (err: unknown) => (isIntercloudError(err) ? `${err.code}: ${err.message}` : String(err))),
      sendTransfer({
        broker: brokerFor('cloud-c'), transferId: transferIdFor(offerId, '0'), from: 'cloud-c', to: 'cloud-b',
        source: hostile, journalDir: join(dir, 'journal-c'), expiresAt: Date.now() + 60_000, chunkSize: 65536,
      }).catch(() => undefined),
    ]);
    expect(cold[0]).toMatch(/^MIGRATE_BAD_DISK: disk '0' of offer '.*' is refused: it keeps its data in an external data file$/);

    const honest = join(dir, 'honest.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', victim, honest]);
    expect(await move(honest, { diskId: '0', depth: 2 }, 'd0-2')).toMatch(/^received .*d0-2\.img$/);
  }, 120_000);
});
