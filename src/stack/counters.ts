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
  | "arp-spoofed-sender"
  /** IPv6 (gateway-ipv6.ts): IPv6 is off, or the packet is malformed / not for the gateway. */
  | "ipv6-off"
  | "ipv6-malformed"
  | "ipv6-not-for-us"
  | "ipv6-ext-header"
  | "ipv6-no-handler"
  | "ipv6-fragment"
  /** An IPv6 source that is neither link-local, in the guest prefix, nor (for DAD/MLD) unspecified; or ours. */
  | "src6-not-allowed"
  | "icmpv6-malformed"
  | "icmpv6-unhandled"
  /** Neighbor Discovery (ndp-service.ts): invalid message, or one the gateway does not act on. */
  | "ndp-malformed"
  | "ndp-not-for-us"
  /** DAD probe for an address the gateway does not own: never answered (RFC 4862 §5.4.3). */
  | "ndp-dad-foreign"
  /** A router solicitation within MIN_RA_GAP_MS of the last advertisement on its port. */
  | "ndp-rs-rate-limited"
  | "dhcpv6-malformed"
  | "dhcpv6-refused";

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
  icmpv6EchoReplies = 0;
  /** Packets of the gateway's own over the MTU sent in fragments (fragment-tx.ts), both families. */
  txFragmented = 0;
  /** Neighbor Discovery (ndp-service.ts). */
  ndpSolicitations = 0;
  ndpAdvertisementsSent = 0;
  ndpDadDefended = 0;
  routerSolicitations = 0;
  routerAdvertisements = 0;
  dhcpv6Replies = 0;
}
