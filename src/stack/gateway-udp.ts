/**
 * UDP at the gateway (RFC 768; RFC 1122 §4.1.3): services bound to ports of the gateway
 * (DHCP on 67, DNS on 53, …), a forwarding hook for datagrams to other destinations (socket
 * translation), and ICMP port unreachable (RFC 1122 §4.1.3.1, §3.2.2.1) for datagrams to the
 * gateway's unbound ports.
 *
 * A received datagram's payload is borrowed for the duration of the handler's call.
 */

import { isWireError } from "../common/wire-error.js";
import { parseUdp, emitUdp, udpLen, UDP_HEADER_LEN, type UdpRepr } from "../ipv4/udp.js";
import { IcmpUnreachCode } from "../ipv4/icmp.js";
import { sendDestUnreachable } from "./gateway-icmp.js";
import { emitIpv4, IpProtocol, NO_IPV4_OPTIONS, type Ipv4Packet, type Ipv4Repr } from "../ipv4/ipv4.js";
import { setU16 } from "../common/bytes.js";
import type { Port } from "./port.js";
import type { IpHost, UdpDatagram, UdpHandler } from "./ip-host.js";

export type { UdpDatagram, UdpHandler };

const LIMITED_BROADCAST = 0xffff_ffff;
/** parseUdp options when the link vouched for the checksum (RX_CSUM_VERIFIED). */
const NO_VERIFY = { verifyChecksum: false } as const;

/** The stack's UDP protocol handler (registered for IP protocol 17). */
export function handleUdp(stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
  const c = stack.counters;
  const u = parseUdp(packet.payload, ip.src, ip.dst, stack.rxL4ChecksumVerified ? NO_VERIFY : undefined);
  if (isWireError(u)) return c.drop("udp-malformed");
  const d: UdpDatagram = { port, srcMac, srcIp: ip.src, srcPort: u.srcPort, dstIp: ip.dst, dstPort: u.dstPort, payload: u.payload };
  const dst = ip.dst;
  const gateway = stack.config.gatewayIp;
  // The gateway's own services answer on its address and on broadcasts (DHCP); broadcasts are
  // never forwarded off the link.
  if (dst === gateway || dst === LIMITED_BROADCAST || dst === stack.broadcastAddress) {
    const service = stack.udpService(u.dstPort);
    if (service !== undefined) return service(stack, d);
    c.drop("udp-no-service");
    if (dst === gateway) sendPortUnreachable(stack, port, srcMac, ip, packet);
    return;
  }
  // Everything else, the host alias included, is socket translation's.
  if (stack.udpForwarder !== undefined) return stack.udpForwarder(stack, d);
  c.drop("udp-no-service");
  if (dst === stack.config.hostAliasIp) sendPortUnreachable(stack, port, srcMac, ip, packet);
}

/**
 * RFC 792 / RFC 1122 §3.2.2.1: destination unreachable (port), quoting the offending IP
 * header and the first 8 bytes of its data (RFC 1812 §4.3.2.3 allows more; 8 is the minimum).
 */
export function sendPortUnreachable(stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
  const quoted = packet.bytes.subarray(0, Math.min(packet.bytes.length, packet.headerLen + 8));
  sendDestUnreachable(stack, port, srcMac, ip.dst, ip.src, IcmpUnreachCode.Port, quoted);
}

/**
 * Destination unreachable with `code` for a datagram the stack only has as a `UdpDatagram`
 * (socket translation refusing it: code 13, administratively prohibited, RFC 1812 §5.2.7.1).
 * The quote is rebuilt: a 20-byte IPv4 header and the 8-byte UDP header (checksum 0).
 */
export function sendUdpUnreachable(stack: IpHost, d: UdpDatagram, code: number): void {
  const q = UNREACH_QUOTE;
  emitIpv4(
    { src: d.srcIp, dst: d.dstIp, protocol: IpProtocol.UDP, ttl: 64, id: 0, tos: 0, df: false, mf: false, fragmentOffset: 0, payloadLength: UDP_HEADER_LEN + d.payload.length, options: NO_IPV4_OPTIONS },
    q,
    0,
  );
  setU16(q, 20, d.srcPort);
  setU16(q, 22, d.dstPort);
  setU16(q, 24, (UDP_HEADER_LEN + d.payload.length) & 0xffff);
  setU16(q, 26, 0);
  // From the gateway, as the TCP layer's unreachable: the router refusing it (RFC 1812 §4.3.2.4).
  sendDestUnreachable(stack, d.port, d.srcMac, stack.config.gatewayIp, d.srcIp, code, q);
}
const UNREACH_QUOTE = new Uint8Array(28);

const TX_UDP: UdpRepr = { srcPort: 0, dstPort: 0, payload: new Uint8Array(0) };

/**
 * Send one datagram to a guest on `port` at `dstMac` (a broadcast MAC is allowed). Returns
 * false when it could not be sent (too big for the MTU, or the channel refused it).
 */
export function sendUdp(
  stack: IpHost,
  port: Port,
  dstMac: number,
  srcIp: number,
  srcPort: number,
  dstIp: number,
  dstPort: number,
  payload: Uint8Array,
): boolean {
  TX_UDP.srcPort = srcPort;
  TX_UDP.dstPort = dstPort;
  TX_UDP.payload = payload;
  const len = udpLen(TX_UDP);
  const off = stack.beginIpv4(port, dstMac, srcIp, dstIp, IpProtocol.UDP, len);
  if (off >= 0) emitUdp(TX_UDP, stack.txBuffer, off, srcIp, dstIp);
  TX_UDP.payload = EMPTY; // keep no reference to the caller's bytes
  return off >= 0 && stack.finishIpv4(len);
}

const EMPTY = new Uint8Array(0);

export { UDP_HEADER_LEN };
