/**
 * A 9P connection over any reliable byte stream: splits the stream into messages by their
 * size[4] prefix (intro(5)), hands them to a `P9Session`, and writes the replies back with
 * backpressure.
 *
 * The transport is pulled, like the stack's TcpFlow: `pump()` reads only what the current
 * message still needs, and only while the session is not `busy` and no reply is waiting for room
 * — so a guest that floods requests or stops reading replies fills its own TCP window instead of
 * skiff's memory. Per connection skiff holds at most one partial message (≤ msize), the
 * requests in flight (≤ maxInFlight, each ≤ msize) and their replies. A size field below 7 or
 * above the negotiated msize closes the connection (no way to stay in step with the stream).
 */

import { HEADER_LEN, messageSize } from "./wire.js";
import { P9Session, type SessionOptions } from "./session.js";
import type { ShareRegistry } from "./registry.js";

/** What a connection needs from its byte stream. */
export interface P9Transport {
  /** Up to `max` bytes received (empty when none now). */
  read(max: number): Uint8Array;
  /** Queue bytes to send; returns how many were taken (fewer when the send buffer is full). */
  write(data: Uint8Array): number;
  /** Close (after the replies already taken). */
  close(): void;
}

export class P9Connection {
  readonly session: P9Session;
  private readonly out: Uint8Array[] = [];
  private head = new Uint8Array(4);
  private headLen = 0;
  private body: Uint8Array | undefined;
  private bodyLen = 0;
  private pumping = false;
  private flushing = false;
  private done = false;
  private onDrained: (() => void) | undefined;
  /** Why the connection was closed by skiff, if it was. */
  closeReason: string | undefined;

  constructor(
    registry: ShareRegistry,
    private readonly transport: P9Transport,
    opts: SessionOptions = {},
  ) {
    this.session = new P9Session(registry, { send: (r) => this.send(r), close: (why) => this.fail(why) }, opts);
    this.session.onSettled = () => {
      this.pump();
      this.checkDrained();
    };
  }

  get closed(): boolean {
    return this.done;
  }

  /** Bytes of replies waiting for room in the transport. */
  get queuedBytes(): number {
    let n = 0;
    for (const b of this.out) n += b.length;
    return n;
  }

  /** Read and handle whole messages while the session and the reply queue have room. */
  pump(): void {
    if (this.pumping || this.done) return;
    this.pumping = true;
    try {
      while (!this.done && !this.session.busy && this.out.length === 0) {
        if (this.body === undefined) {
          const d = this.transport.read(4 - this.headLen);
          if (d.length === 0) break;
          this.head.set(d, this.headLen);
          this.headLen += d.length;
          if (this.headLen < 4) continue;
          const size = messageSize(this.head);
          if (size < HEADER_LEN || size > this.session.frameLimit) {
            this.fail(`message size ${size} outside 7..${this.session.frameLimit}`);
            break;
          }
          this.body = new Uint8Array(size);
          this.body.set(this.head);
          this.bodyLen = 4;
          this.headLen = 0;
        }
        const d = this.transport.read(this.body.length - this.bodyLen);
        if (d.length === 0) break;
        this.body.set(d, this.bodyLen);
        this.bodyLen += d.length;
        if (this.bodyLen < this.body.length) continue;
        const frame = this.body;
        this.body = undefined;
        this.session.handle(frame);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Write queued replies (call when the transport has room again). */
  flush(): void {
    if (this.flushing || this.done) return;
    this.flushing = true;
    try {
      while (this.out.length > 0) {
        const head = this.out[0];
        const n = this.transport.write(head);
        if (n < head.length) {
          this.out[0] = head.subarray(n);
          return;
        }
        this.out.shift();
      }
    } finally {
      this.flushing = false;
    }
    this.pump();
    this.checkDrained();
  }

  /**
   * Call `cb` once no request is running and every reply has been taken by the transport (the
   * peer has finished sending: after this the connection can be closed cleanly).
   */
  whenDrained(cb: () => void): void {
    this.onDrained = cb;
    this.checkDrained();
  }

  private checkDrained(): void {
    const cb = this.onDrained;
    if (cb === undefined || this.done || this.session.inFlight > 0 || this.out.length > 0) return;
    this.onDrained = undefined;
    cb();
  }

  /** The peer went away: drop everything (fids clunked, descriptors closed). */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.out.length = 0;
    this.body = undefined;
    this.session.close();
  }

  private send(reply: Uint8Array): void {
    if (this.done) return;
    this.out.push(reply);
    this.flush();
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.closeReason = reason;
    this.close();
    this.transport.close();
  }
}
