/**
 * ICMPv6 echo translation (RFC 4443 §4.1, §4.2): the IPv6 twin of icmp-translator.ts. A guest's
 * echo request to the host alias (the host's ::1) or to any other address the address policy
 * allows is sent again from a host ICMPv6 socket, and the host's echo replies go back to the
 * guest with the guest's own identifier, from the replying address (the host's ::1 shown as the
 * host alias). Installed as the IPv6 gateway's `echoForwarder` (gateway-ipv6.ts); echo to the
 * gateway itself never gets here.
 *
 * The mode is chosen once, at construction, as for IPv4:
 *  - "dgram": unprivileged ICMPv6 datagram ("ping") sockets (`net.ipv4.ping_group_range` covers
 *    IPv6 too), one per guest flow (guest address, identifier), adopted by node:dgram; the
 *    kernel sets the identifier and checksum and delivers only replies carrying its identifier,
 *    as ICMPv6 messages with the source address;
 *  - "raw": one raw ICMPv6 socket (root or CAP_NET_RAW), read through the addon's batched
 *    `startRead`; its ICMP6_FILTER passes echo replies only (RFC 3542 §3.2), the kernel fills the
 *    checksum of what is sent (§3.1). skiff gives each flow an identifier of its own; a raw
 *    socket returns no source address, so a reply carrying a flow's identifier is taken as
 *    from the address that flow last pinged;
 *  - "disabled": neither socket can be made: one warning; echo to the host alias is answered by
 *    the gateway (the host's loopback would answer anyway), any other gets "administratively
 *    prohibited" at once.
 * Refused destinations (guest prefix, multicast, IPv4-mapped, the alias with host loopback
 * off) are answered with destination unreachable, administratively prohibited (RFC 4443 §3.1
 * code 1), as for UDP.
 *
 * Bounds as for IPv4: flows idle for `idleMs` are closed; beyond `maxFlows` the least recently
 * used one is, by the per-guest rule of src/stack/guests.ts; "dgram" mode takes a descriptor
 * of the budget per flow. Flows are keyed by the guest address's hash and the identifier (no
 * string building); a colliding new flow replaces the old one.
 */

import { errnoName } from "../native/addon.js";
import type { NetworkStack, Port } from "../stack/stack.js";
import type { Ipv6Gateway } from "../stack/gateway-ipv6.js";
import { classifyDestination6, formatIpv6, hashIpv6, ipv6Bytes, ipv6Equal, parseIpv6Address, type Ipv6Address } from "../stack/config6.js";
import type { AddressPolicy } from "./policy.js";
import { EchoFlow, EchoTranslatorBase, nodeDgramWrapperFor, type IcmpTranslateOptions } from "./echo-flows.js";

/** ICMPv6 echo reply type and the administratively-prohibited code (RFC 4443 §3.1, §4.2). */
const ECHO_REPLY = 129;
const ADMIN_PROHIBITED = 1;

class Icmp6Flow extends EchoFlow {
  /** raw mode: the address last pinged (a raw ICMPv6 socket does not say who replied). */
  lastDst: Ipv6Address | undefined;
  constructor(key: number, port: Port, guestMac: number, readonly guest6: Ipv6Address, guestId: number, now: number) {
    super(key, port, guestMac, guestId, now);
  }
}

/** node:dgram adopting a datagram ICMPv6 fd. */
export const nodeDgramWrapper6 = nodeDgramWrapperFor("udp6");

export class Icmp6Translator extends EchoTranslatorBase<Icmp6Flow> {
  private readonly gw: Ipv6Gateway;
  private readonly hook = (port: Port, srcMac: number, src: Ipv6Address, dst: Ipv6Address, msg: Uint8Array, packet: Uint8Array): void =>
    this.fromGuest(port, srcMac, src, dst, msg, packet);
  private readonly fromDgramBound = (flow: Icmp6Flow, msg: Uint8Array, address: string): void => this.fromDgram(flow, msg, address);

  constructor(
    stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: IcmpTranslateOptions = {},
  ) {
    super(stack, { ipv6: true, name: "ICMPv6", tag: "icmp6", rawHeadroom: 0, defaultWrap: nodeDgramWrapper6 }, opts);
    if (stack.ipv6 === undefined) throw new Error("Icmp6Translator: the stack has IPv6 off");
    this.gw = stack.ipv6;
    this.start(opts);
    this.gw.echoForwarder = this.hook;
  }

  // ---- guest → host ------------------------------------------------------------------

  private fromGuest(port: Port, srcMac: number, src: Ipv6Address, dst: Ipv6Address, msg: Uint8Array, packet: Uint8Array): void {
    const c = this.counters;
    const gw = this.gw;
    const id = (msg[4] << 8) | msg[5];
    const seq = (msg[6] << 8) | msg[7];
    const target = this.policy.resolve6(classifyDestination6(gw.cfg, dst));
    if (this.currentMode === "disabled" || !target.ok) {
      // Without sockets the host's loopback would answer: the gateway answers for the alias.
      if (this.currentMode === "disabled" && target.ok && target.host === "::1") return void gw.sendEchoReply(port, srcMac, dst, src, id, seq, msg.subarray(8));
      c.drop(target.ok ? "disabled" : "denied");
      if (this.answerDenied) gw.sendUnreachable({ port, srcMac, src, packet }, ADMIN_PROHIBITED);
      return;
    }
    const now = this.stack.now();
    const key = hashIpv6(src) * 0x10000 + id;
    let flow = this.flows.get(key);
    if (flow !== undefined && !ipv6Equal(flow.guest6, src)) {
      // A hash collision: the newer flow takes the slot.
      this.counters.flowsEvicted++;
      this.close(flow);
      flow = undefined;
    }
    if (flow === undefined) {
      flow = this.admit(new Icmp6Flow(key, port, srcMac, src, id, now), now, this.fromDgramBound);
      if (flow === undefined) return;
    } else this.touch(flow, port, srcMac, now);
    // The request as the guest sent it (a copy: the send completes later); the kernel sets the
    // checksum (RFC 3542 §3.1) and, for a datagram socket, the identifier.
    const out = Buffer.from(msg);
    out[2] = 0;
    out[3] = 0;
    if (flow.sock !== undefined) return flow.sock.send(out, target.host, this.onDgramSent);
    const to = parseIpv6Address(target.host);
    if (to === undefined) return c.drop("send-error");
    out[4] = flow.ourId >>> 8;
    out[5] = flow.ourId & 0xff;
    flow.lastDst = to;
    const n = this.addon!.sendTo6(this.rawFd, out, ipv6Bytes(to));
    if (n >= 0) c.requestsForwarded++;
    else {
      c.drop("send-error");
      this.log?.debug({ dst: target.host, code: errnoName(-n) }, "icmp6: send failed");
    }
  }

  // ---- host → guest ------------------------------------------------------------------

  /** dgram mode: one ICMPv6 message (checksum verified by the kernel) from `address`. */
  private fromDgram(flow: Icmp6Flow, msg: Uint8Array, address: string): void {
    const src = parseIpv6Address(address.replace(/%.*$/, ""));
    if (!this.flows.has(flow) || src === undefined || msg.length < 8 || msg[0] !== ECHO_REPLY || msg[1] !== 0) return void this.counters.ignored++;
    this.toGuest(flow, src, (msg[6] << 8) | msg[7], msg.subarray(8));
  }

  /** raw mode: one ICMPv6 message (an echo reply, by the socket's filter); ours by its identifier. */
  protected fromRaw(m: Uint8Array): void {
    const flow = m.length >= 8 && m[0] === ECHO_REPLY && m[1] === 0 ? this.byOurId.get((m[4] << 8) | m[5]) : undefined;
    if (flow === undefined || flow.lastDst === undefined) return void this.counters.ignored++;
    this.toGuest(flow, flow.lastDst, (m[6] << 8) | m[7], m.subarray(8));
  }

  /** An echo reply from `src` to the guest of `flow`, with the guest's identifier. */
  private toGuest(flow: Icmp6Flow, src: Ipv6Address, seq: number, data: Uint8Array): void {
    const c = this.counters;
    if (src.w0 === 0 && src.w1 === 0 && src.w2 === 0 && src.w3 === 1) {
      // Replies from the host's loopback appear to come from the host alias.
      if (this.gw.cfg.hostAlias === null) return c.drop("reply-undeliverable");
      src = this.gw.cfg.hostAlias;
    }
    flow.lastActive = this.stack.now();
    if (this.gw.sendEchoReply(flow.port, flow.guestMac, src, flow.guest6, flow.guestId, seq, data)) c.repliesReturned++;
    else c.drop("reply-undeliverable");
  }

  /** Close every flow and the raw socket and uninstall the hook (the gateway's own behaviour returns). */
  closeAll(): void {
    this.shutdown();
    if (this.gw.echoForwarder === this.hook) this.gw.echoForwarder = undefined;
  }

  list(): Array<{ guest: string; id: number; hostId: number | null; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({ guest: formatIpv6(f.guest6), id: f.guestId, hostId: f.ourId >= 0 ? f.ourId : null, idleMs: now - f.lastActive }));
  }
}
