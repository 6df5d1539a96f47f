/**
 * The gateway's IP layer as its protocol handlers see it (dependency inversion: gateway-icmp.ts and
 * gateway-udp.ts are called by stack.ts and call back through this interface, which `NetworkStack`
 * implements, so neither imports stack.ts). Also the handler types registered on the stack.
 */

import type { IcmpRepr } from "../ipv4/icmp.js";
import type { Ipv4Packet, Ipv4Repr } from "../ipv4/ipv4.js";
import type { StackConfig } from "./config.js";
import type { StackCounters } from "./counters.js";
import type { Port } from "./port.js";

export type { Ipv4Packet, Ipv4Repr };

/** One received datagram (payload borrowed). */
export interface UdpDatagram {
  port: Port;
  srcMac: number;
  srcIp: number;
  srcPort: number;
  dstIp: number;
  dstPort: number;
  payload: Uint8Array;
}

/** A parsed echo request or reply (its data borrowed). */
export type IcmpEcho = Extract<IcmpRepr, { kind: "echo-request" | "echo-reply" }>;

/** Handler of UDP datagrams for a gateway port (or of every other destination: `udpForwarder`). */
export type UdpHandler = (stack: IpHost, d: UdpDatagram) => void;

/**
 * Handler of echo requests to destinations beyond the gateway. `echo.data` and `packet` (the
 * whole IPv4 packet, for quoting in an ICMP error) are borrowed for the duration of the call.
 */
export type IcmpForwarder = (stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, echo: IcmpEcho, packet: Ipv4Packet) => void;

/**
 * Handler of one IP protocol. `packet` is the validated IPv4 packet (borrowed; its payload is
 * the transport segment), `srcMac` the guest's MAC, `port` where it came from.
 */
export type Ipv4Handler = (stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet) => void;

export interface IpHost {
  readonly config: StackConfig;
  readonly counters: StackCounters;
  /** The transmit buffer `beginIpv4` returned an offset into. */
  readonly txBuffer: Uint8Array;
  /** The frame being handled had its L4 checksum verified by the link (RX_CSUM_VERIFIED). */
  readonly rxL4ChecksumVerified: boolean;
  readonly broadcastAddress: number;
  udpForwarder: UdpHandler | undefined;
  icmpForwarder: IcmpForwarder | undefined;
  /** The handler bound to a UDP port of the gateway. */
  udpService(localPort: number): UdpHandler | undefined;
  /**
   * Start an IPv4 packet of `l4Len` payload bytes to `dstMac` on `port`: returns the offset in
   * `txBuffer` where the payload goes, or -1 when it cannot be sent.
   */
  beginIpv4(port: Port, dstMac: number, src: number, dst: number, protocol: number, l4Len: number, df?: boolean, superSegment?: boolean): number;
  /** Send the packet begun by `beginIpv4`; false when the channel refused it. */
  finishIpv4(l4Len: number, txMeta?: number): boolean;
}
