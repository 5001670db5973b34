/**
 * A frame reader for amqplib connections that copies each large incoming frame once.
 *
 * amqplib (2.x) assembles an incoming frame by appending every socket read to the unparsed rest
 * with `Buffer.concat` and parsing again. A TLS socket hands over one record (16 KiB) per read,
 * so a 128 KiB body frame is copied about 4.5 times on its way in, and the copies are garbage for
 * V8 to collect (the receiver's CPU profile, bench/migration/README.md *Memory*). Once a frame's
 * 7-byte header is in, its size is known: {@link installFrameReader} makes a connection allocate
 * the frame's buffer then and copy each read into it, so every byte is copied once. Parsing and
 * decoding stay amqplib's own: a whole frame is handed to amqplib's reader as its rest, which
 * then parses it without reading the socket.
 *
 * It is installed per connection, on the instance (not amqplib's prototype), and only when the
 * connection has the fields it relies on; otherwise amqplib's own reader stays.
 *
 * With `maxMessageBytes` it also refuses a message whose content header announces a larger body:
 * amqplib would assemble the whole body in memory before handing it over, and a broker run by a
 * peer (the target's, whose control queue a sender consumes) may pass messages up to RabbitMQ's
 * 512 MiB. The refusal (`XFER_TOO_LARGE`) closes the connection before any of the body is read.
 */
import type { ChannelModel } from 'amqplib';
import { xferError } from './errors.js';

/** The parts of amqplib's `Connection` the reader uses. */
interface AmqplibConnection {
  /** Bytes read but not yet parsed. */
  rest: Buffer;
  /** The socket, read with `read()` (null: nothing buffered). */
  stream: { read(): Buffer | null };
  /** The largest frame the connection accepts (0: no limit). */
  maxFrameSize: number;
  /** Set on every read (heartbeat bookkeeping). */
  recvSinceLastCheck: boolean;
  /** Parses one frame from `rest`, reading the socket while it lacks one; false when it has none. */
  recvFrame(): unknown;
}

/** Type (1 byte), channel (2) and size (4). */
const FRAME_HEADER_BYTES = 7;
/** The header and the frame-end octet. */
const FRAME_OVERHEAD = FRAME_HEADER_BYTES + 1;
/** Frames smaller than this (one TLS record) cost amqplib's way little: left to it. */
const MIN_ASSEMBLED_FRAME = 16 * 1024;
const EMPTY = Buffer.alloc(0);
/** AMQP 0-9-1 frame types of a content header (class id 2, weight 2, body size 8, properties) and a body frame. */
const FRAME_CONTENT_HEADER = 2;
const FRAME_CONTENT_BODY = 3;
/**
 * Shortest body frame taken while more than this is owed: a broker cuts a body into frames of
 * its frame size (4 KiB at the least, AMQP's minimum) and only the last is shorter. Without this
 * floor a broker could send a message under the cap as millions of empty or one-byte frames,
 * each a list entry amqplib keeps until the body is whole (~100 bytes of heap per frame).
 */
const MIN_BODY_FRAME = 4096;

/** What the reader enforces besides assembling frames. */
export interface FrameReaderOptions {
  /** Largest message body accepted; a content header announcing more fails the connection. */
  readonly maxMessageBytes?: number;
}

function refused(message: string, details: Record<string, unknown>): Error {
  return xferError('XFER_TOO_LARGE', `${message}: connection closed before reading it`, { retryable: false, details });
}

/**
 * The bodies still owed per channel: checks each whole frame before amqplib parses it, and
 * throws `XFER_TOO_LARGE` for a content header announcing more than `max`, or a body frame
 * shorter than {@link MIN_BODY_FRAME} that is not its body's last.
 */
class ContentGuard {
  private readonly owed = new Map<number, number>();

  constructor(private readonly max: number) {}

  check(frame: Buffer): void {
    if (frame.length < FRAME_HEADER_BYTES) return;
    const type = frame[0];
    const channel = frame.readUInt16BE(1);
    const size = frame.readUInt32BE(3);
    if (type === FRAME_CONTENT_HEADER && size >= 12) {
      const announced = frame.readBigUInt64BE(FRAME_HEADER_BYTES + 4);
      if (announced > BigInt(this.max)) {
        throw refused(`the broker delivers a message of ${announced} bytes, more than the ${this.max} this side takes`, { announcedBytes: Number(announced), maxMessageBytes: this.max });
      }
      this.owed.set(channel, Number(announced));
    } else if (type === FRAME_CONTENT_BODY) {
      const owed = this.owed.get(channel) ?? 0;
      if (size < Math.min(owed, MIN_BODY_FRAME)) {
        throw refused(`the broker cuts a message into body frames of ${size} bytes with ${owed} still owed`, { frameBytes: size, owedBytes: owed });
      }
      // More than owed is amqplib's to refuse ("too much content"); nothing is owed then.
      this.owed.set(channel, Math.max(0, owed - size));
    }
  }
}

/**
 * Makes `model`'s connection assemble each incoming frame of `MIN_ASSEMBLED_FRAME` bytes or more
 * in one buffer of its size. Call right after the connection opened. Returns false (and changes
 * nothing) when the connection is not shaped as this amqplib's is.
 */
export function installFrameReader(model: ChannelModel, options: FrameReaderOptions = {}): boolean {
  const conn = (model as unknown as { connection?: Partial<AmqplibConnection> }).connection;
  if (conn === undefined || conn === null) return false;
  const amqplibRecvFrame = (Object.getPrototypeOf(conn) as Partial<AmqplibConnection> | null)?.recvFrame;
  if (typeof amqplibRecvFrame !== 'function' || !Buffer.isBuffer(conn.rest) || typeof conn.stream?.read !== 'function'
    || typeof conn.maxFrameSize !== 'number') {
    return false;
  }
  // The frame being assembled and how much of it is filled.
  let pending: Buffer | undefined;
  let filled = 0;
  const guard = options.maxMessageBytes === undefined ? undefined : new ContentGuard(options.maxMessageBytes);
  // Once a message was refused nothing more is read: the socket's own buffer bounds what waits.
  let stopped = false;
  // Every frame goes through here once, whole, right before amqplib parses it.
  const checkFrame = (c: AmqplibConnection, frame: Buffer): void => {
    if (!guard) return;
    try {
      guard.check(frame);
    } catch (err) {
      stopped = true;
      c.rest = EMPTY;
      throw err;
    }
  };
  // Reads the socket itself until the rest holds a whole frame (or a large frame's header), and
  // leaves parsing and decoding to amqplib's reader, which then finds the frame whole.
  conn.recvFrame = function recvFrame(this: AmqplibConnection): unknown {
    if (stopped) return false;
    for (;;) {
      if (pending !== undefined) {
        const incoming = this.stream.read();
        if (incoming === null) return false;
        this.recvSinceLastCheck = true;
        const take = Math.min(incoming.length, pending.length - filled);
        incoming.copy(pending, filled, 0, take);
        filled += take;
        if (filled < pending.length) continue;
        // Whole: amqplib parses and decodes it, then the read's remainder is the rest.
        checkFrame(this, pending);
        this.rest = pending;
        pending = undefined;
        const frame = amqplibRecvFrame.call(this);
        this.rest = take === incoming.length ? EMPTY : incoming.subarray(take);
        return frame;
      }
      const rest = this.rest;
      if (rest.length >= FRAME_HEADER_BYTES) {
        const size = rest.readUInt32BE(3);
        const need = size + FRAME_OVERHEAD;
        // A whole frame, or a size over the limit (refused before anything is allocated): amqplib's.
        if (need <= rest.length) checkFrame(this, rest);
        if (need <= rest.length || (this.maxFrameSize > 0 && size > this.maxFrameSize)) return amqplibRecvFrame.call(this);
        if (need >= MIN_ASSEMBLED_FRAME && this.maxFrameSize > 0) {
          pending = Buffer.allocUnsafe(need);
          rest.copy(pending, 0);
          filled = rest.length;
          this.rest = EMPTY;
          continue;
        }
      }
      const incoming = this.stream.read();
      if (incoming === null) return false;
      this.recvSinceLastCheck = true;
      this.rest = rest.length === 0 ? incoming : Buffer.concat([rest, incoming]);
    }
  };
  return true;
}
