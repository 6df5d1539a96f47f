/**
 * FrameChannel: the one link abstraction. Everything that carries Ethernet frames to or from
 * a guest — a TAP device, a QEMU stream or dgram socket, VPNKit's vmnet protocol, an
 * in-memory pair, and wrappers such as pcap capture or fault injection — is a FrameChannel,
 * so the stack never knows which one it serves.
 *
 * Contract:
 *  - Frames are whole Ethernet frames without FCS.
 *  - Receive: one receiver per channel, set with `setReceiver`. A delivered frame is
 *    *borrowed* for the duration of the call: copy anything you keep. No promise and no
 *    allocation per frame is required by the interface.
 *  - Send: `send(frame)` never retains the caller's buffer after it returns (a channel that
 *    queues copies). It returns `true` when the caller may keep sending, `false` when the
 *    channel's queue is above its high-water mark: wait for the `drain` event. Frames beyond
 *    the queue's hard limit are dropped and counted in `stats.txDrops`, never buffered without
 *    bound. Sending on a closed channel is a counted drop.
 *  - `close()` is idempotent; `closed` fires once, with the error that closed it, if any.
 */

import { EventEmitter } from "node:events";

/** Receiver of frames; the frame is borrowed for the duration of the call. */
export type FrameReceiver = (frame: Uint8Array) => void;

/** Counters every channel keeps (read them; do not write). */
export class ChannelStats {
  rxFrames = 0;
  rxBytes = 0;
  txFrames = 0;
  txBytes = 0;
  /** Frames given to `send` that were dropped (queue full, closed, too big). */
  txDrops = 0;
  /** Frames received but dropped before delivery (malformed framing, oversize, no receiver). */
  rxDrops = 0;

  snapshot(): Record<string, number> {
    return { ...this } as unknown as Record<string, number>;
  }
}

export interface FrameChannelEvents {
  drain: [];
  closed: [error?: Error];
}

export interface FrameChannel {
  /** Human-readable name used in logs and stats ("tap:tap0", "qemu-stream:/run/x.sock", …). */
  readonly name: string;
  /** IP MTU of the link; the largest frame is `mtu + 14` (plus 4 with an 802.1Q tag). */
  readonly mtu: number;
  readonly stats: ChannelStats;
  readonly closed: boolean;
  setReceiver(receiver: FrameReceiver): void;
  send(frame: Uint8Array): boolean;
  close(): void;
  on<E extends keyof FrameChannelEvents>(event: E, listener: (...args: FrameChannelEvents[E]) => void): this;
  once<E extends keyof FrameChannelEvents>(event: E, listener: (...args: FrameChannelEvents[E]) => void): this;
  off<E extends keyof FrameChannelEvents>(event: E, listener: (...args: FrameChannelEvents[E]) => void): this;
}

/** Largest frame a channel of this MTU carries (header plus a possible 802.1Q tag). */
export function maxFrameLen(mtu: number): number {
  return mtu + 14 + 4;
}

/**
 * Shared plumbing for channel implementations: receiver slot, counters, close-once and the
 * two events. Subclasses implement `transmit` and `shutdown`, and call `deliver` for each
 * received frame and `finish` when the underlying transport ends.
 */
export abstract class BaseFrameChannel extends EventEmitter<FrameChannelEvents> implements FrameChannel {
  readonly stats = new ChannelStats();
  private receiver: FrameReceiver | undefined;
  private isClosed = false;

  constructor(
    readonly name: string,
    readonly mtu: number,
  ) {
    super();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  send(frame: Uint8Array): boolean {
    if (this.isClosed || frame.length > maxFrameLen(this.mtu)) {
      this.stats.txDrops++;
      return !this.isClosed;
    }
    return this.transmit(frame);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.shutdown();
    this.emit("closed");
  }

  /** Send one frame (length already checked). Count txFrames/txBytes/txDrops here. */
  protected abstract transmit(frame: Uint8Array): boolean;
  /** Release the transport. Called once, from `close` or `finish`. */
  protected abstract shutdown(): void;

  /** Hand a received frame to the receiver (counted). */
  protected deliver(frame: Uint8Array): void {
    const r = this.receiver;
    if (r === undefined || this.isClosed) {
      this.stats.rxDrops++;
      return;
    }
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.length;
    r(frame);
  }

  /** The transport ended on its own (peer closed, error): close once, reporting the error. */
  protected finish(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.shutdown();
    this.emit("closed", error);
  }
}
