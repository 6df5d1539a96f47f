/**
 * Stack counters: frames and bytes per protocol, and drops by reason. Drop reasons are
 * fixed strings (no string building per packet); `snapshot()` gives a plain object for the
 * control API and tests.
 */

import { DropCounters } from "../common/counters.js";

export type DropReason =
  | "eth-malformed"
  | "eth-not-for-us"
  | "eth-unknown-type"
  | "arp-malformed"
  | "arp-not-for-us"
  | "ipv4-malformed"
  | "ipv4-bad-checksum"
  | "ipv4-not-for-us"
  | "ipv4-no-handler"
  | "icmp-malformed"
  | "icmp-unhandled"
  | "udp-malformed"
  | "udp-no-service"
  | "tcp-malformed"
  | "tcp-no-service"
  | "tx-too-big"
  | "ipv4-fragment-invalid"
  | "ipv4-fragment-too-big"
  | "ipv4-fragment-overlap"
  /** Source validation (guests.ts): the gateway's or the host alias's address as a source. */
  | "src-gateway"
  /** 0.0.0.0 as a source, other than a DHCP client message. */
  | "src-unspecified"
  /** A source address not bound to the frame's MAC for that guest (spoofed, unleased, foreign). */
  | "src-not-bound"
  /** An ARP packet with the gateway's or the host alias's address as its sender. */
  | "arp-spoofed-sender";

export class StackCounters extends DropCounters<DropReason> {
  rxFrames = 0;
  rxBytes = 0;
  txFrames = 0;
  txBytes = 0;
  arpRequests = 0;
  arpReplies = 0;
  /** ARP replies received for the gateway's own requests. */
  arpRepliesIn = 0;
  /** ARP packets whose sender address is not the guest's own (guests.ts): answered, not learned. */
  arpSendersNotLearned = 0;
  icmpEchoReplies = 0;
}
