/**
 * FrameChannel: the one link abstraction (the contract between link/, whose attachments and
 * wrappers implement it, and stack/, which serves any of them; so it lives in common/). Everything that carries Ethernet frames to or from
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
 *  - Offloads (virtio-net header semantics, reduced to what the stack uses): a channel that
 *    advertises `offloads` accepts frames whose L4 checksum holds only the pseudo-header sum
 *    (`TX_CSUM_PARTIAL`, the link completes it) and, with a GSO size, TCP segments longer than
 *    the MTU that the link cuts into segments of that payload size (`txGsoMeta`). A receiver
 *    may be told that a frame's L4 checksum needs no verification (`RX_CSUM_VERIFIED`: the
 *    link checked it, or the sending kernel left it partial for the link to fill); such frames
 *    may also be longer than the MTU (a guest's GSO super-segment). Channels that advertise
 *    nothing see only plain frames and pass rxFlags 0.
 */

import { EventEmitter } from "node:events";
import { Counters } from "./counters.js";

/**
 * Receiver of frames; the frame is borrowed for the duration of the call. `rxFlags` is 0 or
 * `RX_CSUM_VERIFIED`.
 */
export type FrameReceiver = (frame: Uint8Array, rxFlags: number) => void;

/** rxFlags bit: the frame's TCP/UDP checksum need not be verified (see the file comment). */
export const RX_CSUM_VERIFIED = 1;
/** txMeta bit: the frame's TCP/UDP checksum field holds the pseudo-header sum only (RFC 1071 fold, not complemented). */
export const TX_CSUM_PARTIAL = 1;
/** Largest frame with a GSO size a segmentation-offload channel takes: a 64 KiB IP packet plus Ethernet/802.1Q. */
export const GSO_MAX_FRAME = 0xffff + 14 + 4;

/** txMeta for a TCP super-segment cut into `mss`-byte payloads by the link (implies TX_CSUM_PARTIAL). */
export function txGsoMeta(mss: number): number {
  return mss * 0x10000 + TX_CSUM_PARTIAL;
}

/** GSO payload size carried in `txMeta` (0: none). */
export function txGsoSize(txMeta: number): number {
  return Math.floor(txMeta / 0x10000);
}

/** What a channel's link does for the stack (absent: nothing). */
export interface ChannelOffloads {
  /** Accepts `TX_CSUM_PARTIAL` frames. */
  readonly txChecksum: boolean;
  /** Accepts TCP frames up to GSO_MAX_FRAME with a GSO size (`txGsoMeta`); requires txChecksum. */
  readonly tcpSegmentation: boolean;
}

/** Counters every channel keeps (read them; do not write). */
export class ChannelStats extends Counters {
  rxFrames = 0;
  rxBytes = 0;
  txFrames = 0;
  txBytes = 0;
  /** Frames given to `send` that were dropped (queue full, closed, too big). */
  txDrops = 0;
  /** Frames received but dropped before delivery (malformed framing, oversize, no receiver). */
  rxDrops = 0;

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
  /** Offloads the link performs; absent or all false for plain channels. */
  readonly offloads?: ChannelOffloads;
  setReceiver(receiver: FrameReceiver): void;
  /** `txMeta` (0 unless `offloads` says otherwise): TX_CSUM_PARTIAL or txGsoMeta(mss). */
  send(frame: Uint8Array, txMeta?: number): boolean;
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

  send(frame: Uint8Array, txMeta = 0): boolean {
    if (this.isClosed || (frame.length > maxFrameLen(this.mtu) && (txMeta < 0x10000 || frame.length > GSO_MAX_FRAME))) {
      this.stats.txDrops++;
      return !this.isClosed;
    }
    return this.transmit(frame, txMeta);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.shutdown();
    this.emit("closed");
  }

  /**
   * Send one frame (length already checked). Count txFrames/txBytes/txDrops here. `txMeta` is
   * non-zero only for channels that advertise `offloads`.
   */
  protected abstract transmit(frame: Uint8Array, txMeta: number): boolean;
  /** Release the transport. Called once, from `close` or `finish`. */
  protected abstract shutdown(): void;

  /** Hand a received frame to the receiver (counted). */
  protected deliver(frame: Uint8Array, rxFlags = 0): void {
    const r = this.receiver;
    if (r === undefined || this.isClosed) {
      this.stats.rxDrops++;
      return;
    }
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.length;
    r(frame, rxFlags);
  }

  /** The transport ended on its own (peer closed, error): close once, reporting the error. */
  protected finish(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.shutdown();
    this.emit("closed", error);
  }
}
