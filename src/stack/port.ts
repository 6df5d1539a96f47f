/**
 * A port of the gateway stack: one attached FrameChannel, with the offloads its link performs
 * and the guest (or, behind a switch, the guests) it serves. Kept apart from stack.ts so the
 * protocol handlers (gateway-icmp.ts, gateway-udp.ts) name it without importing the stack.
 */

import type { FrameChannel } from "../common/frame-channel.js";
import type { Guest } from "./guests.js";

/** One attached channel. */
export class Port {
  /** The link completes TCP/UDP checksums (frames are sent with TX_CSUM_PARTIAL). */
  readonly txChecksum: boolean;
  /** The link cuts TCP super-segments (up to 64 KiB) into MSS-sized ones. */
  readonly tcpSegmentation: boolean;
  /**
   * Finds the guest behind this port from a frame's source MAC when several guests share it
   * (the switch's port, see switched.ts); unset for a port that is one guest.
   */
  guestResolver: ((srcMac: number) => Guest | undefined) | undefined;

  constructor(
    readonly id: number,
    readonly channel: FrameChannel,
    /** The guest this port is (guests.ts). */
    readonly guest: Guest,
  ) {
    const o = channel.offloads;
    this.txChecksum = o?.txChecksum === true;
    this.tcpSegmentation = this.txChecksum && o?.tcpSegmentation === true;
  }

  /** The guest that sent a frame from `srcMac` on this port. */
  guestOf(srcMac: number): Guest {
    return this.guestResolver?.(srcMac) ?? this.guest;
  }
}
