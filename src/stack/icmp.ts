/**
 * ICMP at the gateway (RFC 792; RFC 1122 §3.2.2.6 Echo Request/Reply).
 *
 * Echo requests to the gateway are answered by the stack itself, with the request's identifier,
 * sequence number and data. Echo requests to other unicast destinations — the host alias
 * included, which then reaches the host's real loopback — go to the forwarding hook
 * `stack.icmpForwarder` when one is installed (socket translation: src/socket-translate/icmp.ts);
 * without one, the stack answers for the host alias itself. Everything else (echo to a broadcast address, which RFC 1122
 * §3.2.2.6 lets a host ignore, and other ICMP from guests) is counted and dropped.
 */

import { isWireError } from "../common/wire-error.js";
import { emitIcmp, icmpLen, parseIcmp, IcmpType, type IcmpRepr } from "../ipv4/icmp.js";
import { IpProtocol, type Ipv4Packet, type Ipv4Repr } from "../ipv4/ipv4.js";
import type { NetworkStack, Port } from "./stack.js";

/** A parsed echo request or reply (its data borrowed). */
export type IcmpEcho = Extract<IcmpRepr, { kind: "echo-request" | "echo-reply" }>;

/**
 * Handler of echo requests to destinations beyond the gateway. `echo.data` and `packet` (the
 * whole IPv4 packet, for quoting in an ICMP error) are borrowed for the duration of the call.
 */
export type IcmpForwarder = (stack: NetworkStack, port: Port, srcMac: number, ip: Ipv4Repr, echo: IcmpEcho, packet: Ipv4Packet) => void;

const LIMITED_BROADCAST = 0xffff_ffff;

export function handleIcmp(stack: NetworkStack, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
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
export function replyToEcho(stack: NetworkStack, port: Port, srcMac: number, ip: Ipv4Repr, msg: IcmpEcho): void {
  const reply: IcmpRepr = { kind: "echo-reply", id: msg.id, seq: msg.seq, data: msg.data };
  const len = icmpLen(reply);
  // Like Linux, ICMP messages go without DF: they may be fragmented on a narrower path.
  const off = stack.beginIpv4(port, srcMac, ip.dst, ip.src, IpProtocol.ICMP, len, false);
  if (off < 0) return;
  emitIcmp(reply, stack.txBuffer, off);
  stack.counters.icmpEchoReplies++;
  stack.finishIpv4(len);
}

export { IcmpType };
