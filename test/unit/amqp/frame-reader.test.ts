/**
 * The frame reader (protocols/amqp/frame-reader.ts) on amqplib's own `Connection` (reached by
 * file, past the package's exports, as only this test does): the same frames come out as from
 * amqplib's reader, whatever the reads' sizes, and a large frame is copied once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import type { ChannelModel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { installFrameReader } from '../../../protocols/amqp/frame-reader.js';

const requireFromAmqplib = createRequire(createRequire(import.meta.url).resolve('amqplib'));
const { Connection } = requireFromAmqplib('./lib/connection.js') as { Connection: new (s: PassThrough) => AmqplibConnection };
const { makeBodyFrame, HEARTBEAT_BUF } = requireFromAmqplib('./lib/frame.js') as { makeBodyFrame: (ch: number, p: Buffer) => Buffer; HEARTBEAT_BUF: Buffer };

interface AmqplibConnection { maxFrameSize: number; recvFrame(): false | { channel: number; content?: Buffer } }

/** Body frames of the given payload sizes (channel 1) with a heartbeat after every third. */
function stream(sizes: number[]): { bytes: Buffer; payloads: Buffer[] } {
  const payloads = sizes.map((n) => randomBytes(n));
  const parts = payloads.flatMap((p, i) => (i % 3 === 2 ? [makeBodyFrame(1, p), HEARTBEAT_BUF] : [makeBodyFrame(1, p)]));
  return { bytes: Buffer.concat(parts), payloads };
}

/** Feeds `bytes` to a connection in reads of `readSize`, collecting every body frame's content. */
function receive(bytes: Buffer, readSize: number, withReader: boolean): { contents: Buffer[]; heartbeats: number } {
  const socket = new PassThrough();
  const conn = new Connection(socket);
  conn.maxFrameSize = 128 * 1024 + 8;
  if (withReader) expect(installFrameReader({ connection: conn } as unknown as ChannelModel)).toBe(true);
  const contents: Buffer[] = [];
  let heartbeats = 0;
  for (let at = 0; at < bytes.length; at += readSize) {
    socket.write(bytes.subarray(at, at + readSize));
    for (let f = conn.recvFrame(); f; f = conn.recvFrame()) {
      if (f.content) contents.push(Buffer.from(f.content));
      else heartbeats++;
    }
  }
  return { contents, heartbeats };
}

describe('the frame reader', () => {
  const sizes = [0, 1, 100, 16 * 1024 - 9, 16 * 1024 - 8, 16 * 1024, 65_000, 128 * 1024, 128 * 1024, 3, 128 * 1024 - 1, 70_001];
  const { bytes, payloads } = stream(sizes);

  it.each([7, 100, 16_384, 16_397, 65_536, 1 << 20])('reads the same frames as amqplib in reads of %i bytes', (readSize) => {
    const stock = receive(bytes, readSize, false);
    const ours = receive(bytes, readSize, true);
    const digests = (list: Buffer[]) => list.map((c) => createHash('sha256').update(c).digest('hex'));
    expect(digests(ours.contents)).toEqual(digests(payloads));
    expect(digests(stock.contents)).toEqual(digests(payloads));
    expect(ours.heartbeats).toBe(Math.floor(sizes.length / 3));
  });

  it('copies a large frame once: its buffer is allocated at its size once the header is in', () => {
    const payload = randomBytes(128 * 1024);
    const frame = makeBodyFrame(1, payload);
    const socket = new PassThrough();
    const conn = new Connection(socket);
    conn.maxFrameSize = 128 * 1024 + 8;
    installFrameReader({ connection: conn } as unknown as ChannelModel);
    const copies = { bytes: 0 };
    const realCopy = Buffer.prototype.copy;
    const realConcat = Buffer.concat;
    Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) { const n = realCopy.apply(this, args); copies.bytes += n; return n; };
    Buffer.concat = (list: readonly Uint8Array[], total?: number) => { const b = realConcat(list, total); copies.bytes += b.length; return b; };
    try {
      let got: false | { content?: Buffer } = false;
      for (let at = 0; at < frame.length; at += 16_384) {
        socket.write(frame.subarray(at, at + 16_384));
        got = conn.recvFrame() || got;
      }
      expect(got && got.content?.equals(payload)).toBe(true);
    } finally {
      Buffer.prototype.copy = realCopy;
      Buffer.concat = realConcat;
    }
    // amqplib alone: 16 + 32 + … + 128 KiB, about 4.5 times the frame.
    expect(copies.bytes).toBeLessThanOrEqual(frame.length + 16);
  });

  it('leaves a connection that is not shaped as amqplib 2.x has it alone', () => {
    expect(installFrameReader({ connection: { rest: 'no' } } as unknown as ChannelModel)).toBe(false);
    expect(installFrameReader({} as unknown as ChannelModel)).toBe(false);
  });

  describe('a message larger than the side takes', () => {
    /** A content header frame (basic class, no properties) on channel 1 announcing `bodySize` bytes. */
    function contentHeader(bodySize: bigint): Buffer {
      const payload = Buffer.alloc(14);
      payload.writeUInt16BE(60, 0); // basic
      payload.writeBigUInt64BE(bodySize, 4);
      const frame = Buffer.alloc(7 + payload.length + 1);
      frame.writeUInt8(2, 0);
      frame.writeUInt16BE(1, 1);
      frame.writeUInt32BE(payload.length, 3);
      payload.copy(frame, 7);
      frame.writeUInt8(0xce, 7 + payload.length);
      return frame;
    }

    function connection(max: number): { socket: PassThrough; conn: AmqplibConnection } {
      const socket = new PassThrough();
      const conn = new Connection(socket);
      conn.maxFrameSize = 128 * 1024 + 8;
      expect(installFrameReader({ connection: conn } as unknown as ChannelModel, { maxMessageBytes: max })).toBe(true);
      return { socket, conn };
    }

    it('a content header announcing more is refused with XFER_TOO_LARGE before any body is read; nothing is read after', () => {
      const { socket, conn } = connection(1024 * 1024);
      socket.write(Buffer.concat([contentHeader(512n * 1024n * 1024n), makeBodyFrame(1, randomBytes(100_000))]));
      let err: unknown;
      try {
        conn.recvFrame();
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'XFER_TOO_LARGE', retryable: false, details: { announcedBytes: 512 * 1024 * 1024, maxMessageBytes: 1024 * 1024 } });
      socket.write(makeBodyFrame(1, randomBytes(10)));
      expect(conn.recvFrame()).toBe(false);
    });

    it('a message under the limit cut into empty or tiny body frames is refused at the first short frame that is not the last', () => {
      for (const tiny of [0, 1, 4095]) {
        const { socket, conn } = connection(16 * 1024 * 1024);
        socket.write(Buffer.concat([contentHeader(16n * 1024n * 1024n), makeBodyFrame(1, randomBytes(128 * 1024)), makeBodyFrame(1, Buffer.alloc(tiny))]));
        const frames: unknown[] = [];
        let err: unknown;
        try {
          for (let f = conn.recvFrame(); f; f = conn.recvFrame()) frames.push(f);
        } catch (e) {
          err = e;
        }
        expect(err, `body frame of ${tiny} bytes`).toMatchObject({ code: 'XFER_TOO_LARGE', details: { frameBytes: tiny, owedBytes: 16 * 1024 * 1024 - 128 * 1024 } });
        expect(frames).toHaveLength(2); // the header and the full frame
      }
    });

    it('a body cut as a broker cuts it (full frames, a short last one) is read whole', () => {
      const { socket, conn } = connection(1024 * 1024);
      const body = randomBytes(300 * 1024);
      const frameBody = 128 * 1024;
      const parts = [body.subarray(0, frameBody), body.subarray(frameBody, 2 * frameBody), body.subarray(2 * frameBody)];
      // The short last one (44 KiB), then a second message of 10 bytes in one frame.
      socket.write(Buffer.concat([contentHeader(BigInt(body.length)), ...parts.map((p) => makeBodyFrame(1, p)), contentHeader(10n), makeBodyFrame(1, Buffer.alloc(10, 1))]));
      const contents: Buffer[] = [];
      for (let f = conn.recvFrame() as false | { content?: Buffer }; f; f = conn.recvFrame() as false | { content?: Buffer }) if (f.content) contents.push(Buffer.from(f.content));
      expect(Buffer.concat(contents.slice(0, 3)).equals(body)).toBe(true);
      expect(contents[3]).toEqual(Buffer.alloc(10, 1));
    });

    it('a content header announcing the limit exactly is read as amqplib reads it', () => {
      const { socket, conn } = connection(1024 * 1024);
      socket.write(contentHeader(1024n * 1024n));
      const f = conn.recvFrame() as false | { channel: number; size?: number };
      expect(f).not.toBe(false);
      expect((f as { size?: number }).size).toBe(1024 * 1024);
    });
  });
});

