/**
 * The sender's publisher (I/O): owns the publish window — at most `windowBytes` of frames the
 * broker has not confirmed yet (publisher confirms), waiting for room before each frame — and
 * the frame buffers, which come back to a small pool once their message is confirmed. One
 * publisher lives for the whole transfer; each broker session {@link Publisher.attach}es its
 * confirm channel (a new channel starts with an empty window).
 */
import type { ConfirmChannel } from 'amqplib';
import { brokerError } from './connection.js';
import { xferError } from './errors.js';
import { FRAME_HEADER_SIZE, type FrameKind } from './frame.js';
import { encodeControl, type ControlMessage } from './messages.js';
import { deferred, publishConfirmed, type Deferred } from './session-util.js';

/** What a fault-injection tap is told about a frame about to be published. */
export interface FrameTapInfo {
  readonly index: number;
  readonly kind: FrameKind;
  /** 1 for the first time this index is published in this run, 2 for its first re-send … */
  readonly attempt: number;
}

/**
 * Fault injection for tests: given a frame about to be published, returns the frames to
 * publish instead (none to drop it, two to duplicate it, a modified copy to corrupt it, or
 * frames held back earlier to reorder). Production code passes none.
 */
export type FrameTap = (frame: Buffer, info: FrameTapInfo) => Buffer[];

/** Options of a {@link Publisher}. */
export interface PublisherOptions {
  /** The transfer's chunk size: full frames of it are pooled. */
  readonly chunkSize: number;
  /** Bytes of unconfirmed frames at most (raised to one full frame if smaller). */
  readonly windowBytes: number;
  /** The transfer's exchange and the routing key of its data queue. */
  readonly exchange: string;
  readonly routingKey: string;
  /** Broker-persistent messages. */
  readonly persistent: boolean;
  /** Fault injection (tests only); disables the buffer pool (a tap may publish one buffer twice). */
  readonly tap?: FrameTap;
}

/** Most full-size frame buffers kept for reuse (an 8 MiB window of 1 MiB chunks holds 8). */
const POOL_MAX = 64;

/** Publishes a transfer's frames within a window of unconfirmed bytes. */
export class Publisher {
  /** All bytes published (frames, headers included). */
  wireBytes = 0;
  /** Payload bytes published in data frames (re-sends and a tap's duplicates included). */
  bytesSent = 0;
  private readonly windowBytes: number;
  private readonly pool: Buffer[] = [];
  private channel: ConfirmChannel | undefined;
  private inflight = 0;
  private slot: Deferred<void> | undefined;
  private publishError: unknown;
  private closed = true;
  private stopped = false;

  constructor(private readonly o: PublisherOptions) {
    this.windowBytes = Math.max(o.windowBytes, o.chunkSize + FRAME_HEADER_SIZE);
  }

  /**
   * A buffer for a frame with a `length`-byte payload (header first). Full-size ones come from
   * the pool of confirmed frames, so a transfer cycles through about one window of buffers
   * instead of leaving the garbage collector one per chunk.
   */
  frameBuffer(length: number): Buffer {
    return length === this.o.chunkSize && this.pool.length > 0 ? this.pool.pop()! : Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
  }

  /** Gives back a frame buffer that was not published (its chunk went out compressed). */
  reuse(buf: Buffer): void {
    this.recycle(buf);
  }

  /** A new session's confirm channel: frames go there, with an empty window. */
  attach(ch: ConfirmChannel): void {
    this.channel = ch;
    this.inflight = 0;
    this.publishError = undefined;
    this.closed = false;
  }

  /** `ch`'s connection closed: waits end, and the next publish fails (retryable). A later session's channel stays. */
  detach(ch: ConfirmChannel): void {
    if (ch !== this.channel) return;
    this.closed = true;
    this.slot?.resolve();
  }

  /** The transfer is over (failed or aborted): nothing waits for room any more. */
  stop(): void {
    this.stopped = true;
    this.slot?.resolve();
  }

  /**
   * Publishes `frame` (header written, payload of `payloadLength` bytes) once the window has
   * room; with a tap, publishes whatever the tap returns instead. Resolves when handed to the
   * channel, not when confirmed. Throws `XFER_BROKER` (retryable) when the broker refused an
   * earlier frame or the connection closed.
   */
  async publishFrame(frame: Buffer, info: FrameTapInfo, payloadLength: number): Promise<void> {
    const out = this.o.tap ? this.o.tap(frame, info) : [frame];
    for (const f of out) {
      await this.waitSlot();
      this.publish(f);
      if (info.kind === 'data') this.bytesSent += payloadLength;
    }
  }

  /** Resolves once every frame published on this session's channel is confirmed. */
  async drain(): Promise<void> {
    await this.current().waitForConfirms();
  }

  /** Publishes a control message on the data queue and waits for its confirm. */
  sendControl(message: ControlMessage): Promise<void> {
    return publishConfirmed(this.current(), this.o.exchange, this.o.routingKey, encodeControl(message), this.o.persistent);
  }

  private current(): ConfirmChannel {
    const ch = this.channel;
    if (!ch || this.closed) throw xferError('XFER_BROKER', 'broker connection closed', { retryable: true });
    return ch;
  }

  private publish(body: Buffer): void {
    const ch = this.current();
    this.inflight += body.length;
    this.wireBytes += body.length;
    ch.publish(this.o.exchange, this.o.routingKey, body, { persistent: this.o.persistent }, (err) => {
      if (ch !== this.channel) {
        if (!err) this.recycle(body); // confirmed on an earlier session's channel: no window to free
        return;
      }
      this.inflight -= body.length;
      if (err) this.publishError = err;
      else this.recycle(body);
      this.slot?.resolve();
    });
  }

  private async waitSlot(): Promise<void> {
    while (this.inflight >= this.windowBytes && !this.closed && !this.stopped) {
      this.slot = deferred<void>();
      await this.slot.promise;
    }
    if (this.publishError) throw brokerError(this.publishError, 'broker refused a chunk');
    if (this.closed) throw xferError('XFER_BROKER', 'broker connection closed', { retryable: true });
  }

  private recycle(body: Buffer): void {
    if (!this.o.tap && body.length === FRAME_HEADER_SIZE + this.o.chunkSize && this.pool.length < POOL_MAX) this.pool.push(body);
  }
}
