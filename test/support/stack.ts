/**
 * Shared fixtures for tests that drive a NetworkStack directly with frames: the addressing
 * plan's constants and a channel that records what the stack sends.
 */
import { BaseFrameChannel } from "../../src/common/frame-channel.js";
import { parseIpv4Address, parseMac } from "../../src/common/addr.js";

export const GUEST_MAC = parseMac("52:54:00:12:34:56")!;
export const GW_MAC = parseMac("02:50:00:00:00:01")!;
export const GUEST_IP = parseIpv4Address("192.168.65.3")!;
export const GW_IP = parseIpv4Address("192.168.65.1")!;
export const HOST_IP = parseIpv4Address("192.168.65.2")!;

/** A channel that records (copies of) what the stack sends. */
export class RecordingChannel extends BaseFrameChannel {
  sent: Uint8Array[] = [];
  constructor(mtu = 1500) {
    super("recording", mtu);
  }
  protected transmit(frame: Uint8Array): boolean {
    this.sent.push(Uint8Array.from(frame));
    this.stats.txFrames++;
    return true;
  }
  protected shutdown(): void {}
}
