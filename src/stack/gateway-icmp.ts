/**
 * ICMP at the gateway (RFC 792; RFC 1122 §3.2.2.6 Echo Request/Reply).
 *
 * Echo requests to the gateway are answered by the stack itself, with the request's identifier,
 * sequence number and data. Echo requests to other unicast destinations — the host alias
 * included, which then reaches the host's real loopback — go to the forwarding hook
 * `stack.icmpForwarder` when one is installed (socket translation: src/socket-translate/icmp-translator.ts);
 * without one, the stack answers for the host alias itself. Everything else (echo to a broadcast address, which RFC 1122
 * §3.2.2.6 lets a host ignore, and other ICMP from guests) is counted and dropped.
 */

import { isWireError } from "../common/wire-error.js";
import { emitIcmp, icmpLen, parseIcmp, IcmpPacket, IcmpType, IcmpUnreachCode, type IcmpRepr } from "../ipv4/icmp.js";
import { IpProtocol, IPV4_MAX_HEADER_LEN, parseIpv4, type Ipv4Packet, type Ipv4Repr } from "../ipv4/ipv4.js";
import type { Port } from "./port.js";
import type { IcmpEcho, IcmpForwarder, IpHost } from "./ip-host.js";

export type { IcmpEcho, IcmpForwarder };

const LIMITED_BROADCAST = 0xffff_ffff;

export function handleIcmp(stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
  const c = stack.counters;
  const msg = parseIcmp(packet.payload);
  if (isWireError(msg)) return c.drop("icmp-malformed");
  if (msg.kind !== "echo-request") return c.drop("icmp-unhandled");
  if (ip.dst === stack.config.gatewayIp) return replyToEcho(stack, port, srcMac, ip, msg);
  const forward = stack.icmpForwarder;
  // The host alias is the host's loopback: with socket translation installed the echo really
  // goes there (and the host answers); without it the stack answers for the host.
  if (ip.dst === stack.config.hostAliasIp && forward === undefined) return replyToEcho(stack, port, srcMac, ip, msg);
  if (forward === undefined || ip.dst === LIMITED_BROADCAST || ip.dst === stack.broadcastAddress) return c.drop("icmp-unhandled");
  return forward(stack, port, srcMac, ip, msg, packet);
}

/**
 * Answer an echo request from the address it was sent to. RFC 1122 §3.2.2.6: the reply
 * carries the request's identifier, sequence number and data unchanged.
 */
export function replyToEcho(stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, msg: IcmpEcho): void {
  const reply: IcmpRepr = { kind: "echo-reply", id: msg.id, seq: msg.seq, data: msg.data };
  const len = icmpLen(reply);
  // Like Linux, ICMP messages go without DF: they may be fragmented on a narrower path.
  const off = stack.beginIpv4(port, srcMac, ip.dst, ip.src, IpProtocol.ICMP, len, false);
  if (off < 0) return;
  emitIcmp(reply, stack.txBuffer, off);
  stack.counters.icmpEchoReplies++;
  stack.finishIpv4(len);
}

/**
 * Send ICMP destination unreachable `code` (RFC 792; codes in `IcmpUnreachCode`) from `src` to
 * `dst` at `dstMac` on `port`, quoting `quoted` (the offending IP header and 8 bytes, RFC 1812
 * §4.3.2.3). Like Linux, without DF.
 */
export function sendDestUnreachable(stack: IpHost, port: Port, dstMac: number, src: number, dst: number, code: number, quoted: Uint8Array): void {
  const msg: IcmpRepr = { kind: "dest-unreachable", code, nextHopMtu: 0, original: quoted };
  const len = icmpLen(msg);
  const off = stack.beginIpv4(port, dstMac, src, dst, IpProtocol.ICMP, len, false);
  if (off < 0) return;
  emitIcmp(msg, stack.txBuffer, off);
  stack.finishIpv4(len);
}

/** Refuse a guest's packet from the gateway: code 13, administratively prohibited (RFC 1812 §5.2.7.1). */
export function sendProhibited(stack: IpHost, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
  const quoted = packet.bytes.subarray(0, Math.min(packet.bytes.length, packet.headerLen + 8));
  sendDestUnreachable(stack, port, srcMac, stack.config.gatewayIp, ip.src, IcmpUnreachCode.AdminProhibited, quoted);
}

/** Reused echo representation for the transmit paths (fields overwritten per message). */
const TX_ECHO: IcmpEcho = { kind: "echo-reply", id: 0, seq: 0, data: new Uint8Array(0) };
const EMPTY = new Uint8Array(0);

/** Bytes of an echo message with `dataLen` bytes of data (RFC 792: an 8-byte header). */
export function echoLen(dataLen: number): number {
  return 8 + dataLen;
}

/** Write an echo request or reply into `buf` at 0, checksum computed; returns its length. */
export function emitEcho(kind: IcmpEcho["kind"], id: number, seq: number, data: Uint8Array, buf: Uint8Array): number {
  TX_ECHO.kind = kind;
  TX_ECHO.id = id;
  TX_ECHO.seq = seq;
  TX_ECHO.data = data;
  const n = emitIcmp(TX_ECHO, buf, 0);
  TX_ECHO.data = EMPTY; // keep no reference to the caller's bytes
  return n;
}

/** Send an echo reply from `src` to a guest (RFC 792); false when it could not be sent. */
export function sendEchoReply(stack: IpHost, port: Port, dstMac: number, src: number, dst: number, id: number, seq: number, data: Uint8Array): boolean {
  const len = echoLen(data.length);
  const off = stack.beginIpv4(port, dstMac, src, dst, IpProtocol.ICMP, len, false);
  if (off < 0) return false;
  emitEcho("echo-reply", id, seq, data, stack.txBuffer.subarray(off));
  return stack.finishIpv4(len);
}

/** An echo reply received from the host (its data borrowed). */
export interface HostEchoReply {
  src: number;
  id: number;
  seq: number;
  data: Uint8Array;
}

/**
 * An echo reply as a ping (datagram) socket delivers it: the ICMP message without an IP header,
 * its checksum already verified by the kernel. Undefined for anything else.
 */
export function parseDatagramEchoReply(msg: Uint8Array): { id: number; seq: number; data: Uint8Array } | undefined {
  const icmp = parseIcmp(msg, { verifyChecksum: false });
  if (isWireError(icmp) || icmp.kind !== "echo-reply") return undefined;
  return icmp;
}

/** Room a raw ICMP socket's read buffer needs beyond the MTU: an IP header with options. */
export const RAW_ICMP_HEADROOM = IPV4_MAX_HEADER_LEN;

/**
 * An echo reply as a raw ICMP socket delivers it: a whole IPv4 packet (header checked by the
 * kernel), whose ICMP checksum is verified here (raw sockets see ICMP before the kernel's own
 * handling). Undefined for anything else.
 */
export function parseRawEchoReply(bytes: Uint8Array): HostEchoReply | undefined {
  const ip = parseIpv4(bytes, { verifyChecksum: false });
  if (isWireError(ip) || ip.protocol !== IpProtocol.ICMP) return undefined;
  const hl = (bytes[0] & 0x0f) << 2;
  const icmp = new IcmpPacket(bytes.subarray(hl, hl + ip.payloadLength));
  if (!icmp.check() || icmp.type !== IcmpType.EchoReply || icmp.code !== 0 || !icmp.checksumOk()) return undefined;
  return { src: ip.src, id: icmp.id, seq: icmp.seq, data: icmp.payload };
}

export { IcmpType, IcmpUnreachCode };
