/**
 * ICMP at the gateway (RFC 792; RFC 1122 §3.2.2.6 Echo Request/Reply).
 *
 * Echo requests to the gateway or the host alias are answered by the stack itself, with the
 * request's identifier, sequence number and data. Other ICMP goes to the forwarding hook when
 * one is installed (socket translation, a later layer); otherwise it is counted and dropped.
 */

import { isWireError } from "../common/wire-error.js";
import { emitIcmp, icmpLen, parseIcmp, IcmpType, type IcmpRepr } from "../ipv4/icmp.js";
import { IpProtocol, type Ipv4Packet, type Ipv4Repr } from "../ipv4/ipv4.js";
import type { NetworkStack, Port } from "./stack.js";

export function handleIcmp(stack: NetworkStack, port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
  const c = stack.counters;
  const msg = parseIcmp(packet.payload);
  if (isWireError(msg)) return c.drop("icmp-malformed");
  if (msg.kind !== "echo-request" || !stack.isLocalAddress(ip.dst)) return c.drop("icmp-unhandled");
  // RFC 1122 §3.2.2.6: the reply carries the request's data unchanged; its source is the
  // address the request was sent to.
  const reply: IcmpRepr = { kind: "echo-reply", id: msg.id, seq: msg.seq, data: msg.data };
  const len = icmpLen(reply);
  // Like Linux, ICMP messages go without DF: they may be fragmented on a narrower path.
  const off = stack.beginIpv4(port, srcMac, ip.dst, ip.src, IpProtocol.ICMP, len, false);
  if (off < 0) return;
  emitIcmp(reply, stack.txBuffer, off);
  c.icmpEchoReplies++;
  stack.finishIpv4(len);
}

export { IcmpType };
