/**
 * ICMP echo translation (RFC 792 "Echo or Echo Reply Message"; RFC 1122 §3.2.2.6): a guest's
 * echo request to an address beyond the gateway is sent again from a host ICMP socket, and
 * the host's echo replies go back to the guest with the guest's own identifier. Echo to the
 * gateway and the host alias never gets here (the stack answers it, src/stack/gateway-icmp.ts).
 *
 * The mode is chosen once, at construction:
 *  - "dgram": unprivileged ICMP datagram ("ping") sockets, allowed when the sysctl
 *    `net.ipv4.ping_group_range` includes a group of this process. One socket per guest flow
 *    (guest address, guest identifier), adopted by node:dgram. The kernel replaces the
 *    identifier with the socket's own ("port"), fills the checksum, and delivers to that
 *    socket only the echo replies carrying it, as ICMP messages without the IP header.
 *  - "raw": one raw ICMP socket (needs root or CAP_NET_RAW), read through the addon's batched
 *    `startRead`. skiff gives each flow an identifier of its own (a table ourId → flow), writes
 *    whole echo requests itself (checksum included) and reads every ICMP packet of the host,
 *    IP header first: only echo replies with one of our identifiers, from the address that
 *    flow last pinged, are taken; the rest (other processes' ICMP) is ignored and counted.
 *  - "disabled": neither socket can be made. One warning is logged; guests' echo requests
 *    beyond the gateway are dropped and counted. Nothing throws.
 *
 * A reply goes to the guest as an echo reply from the replying address (the host's 127.0.0.x
 * shown as the host alias), with the guest's identifier, the sequence number and the data.
 * Destinations the address policy refuses are dropped, counted, and answered with destination
 * unreachable, "communication administratively prohibited" (code 13, RFC 1812 §5.2.7.1).
 *
 * Bounds: flows idle for `idleMs` (default 30 s) are closed; beyond `maxFlows` (default 1024)
 * the least recently used one is, by the per-guest rule of src/stack/guests.ts
 * (`maxFlowsPerGuest`, default a quarter): a guest within its share is never evicted by
 * another's flood. Not done: ICMP errors the host receives about forwarded
 * echoes (unreachable, time exceeded) are not relayed to the guest, so a guest's ping to an
 * unreachable address just times out; echo from guests is the only ICMP forwarded.
 */

import { formatIpv4, parseIpv4Address } from "../common/addr.js";
import { errnoName } from "../native/addon.js";
import {
  replyToEcho, sendProhibited, sendEchoReply, emitEcho, echoLen, parseDatagramEchoReply, parseRawEchoReply, RAW_ICMP_HEADROOM,
  type IcmpEcho, type IcmpForwarder,
} from "../stack/gateway-icmp.js";
import type { Ipv4Packet, Ipv4Repr } from "../stack/ip-host.js";
import type { NetworkStack, Port } from "../stack/stack.js";
import type { AddressPolicy } from "./policy.js";
import { EchoFlow, EchoTranslatorBase, nodeDgramWrapperFor, type IcmpTranslateOptions } from "./echo-flows.js";

export {
  IcmpTranslateCounters,
  type IcmpAddon,
  type IcmpDgramSocket,
  type IcmpDgramWrapper,
  type IcmpDropReason,
  type IcmpMode,
  type IcmpTranslateOptions,
} from "./echo-flows.js";

class IcmpFlow extends EchoFlow {
  /** raw mode: the address last pinged. */
  lastDst = 0;
  constructor(key: number, port: Port, guestMac: number, readonly guestIp: number, guestId: number, now: number) {
    super(key, port, guestMac, guestId, now);
  }
}

const LOOPBACK_NET = 127;

/** node:dgram adopting a datagram ICMP fd (libuv sees a datagram socket, so it takes it as UDP). */
export const nodeDgramWrapper = nodeDgramWrapperFor("udp4");

export class IcmpTranslator extends EchoTranslatorBase<IcmpFlow> {
  /** Where outgoing echo requests are built in raw mode (reused). */
  private readonly rawTx: Uint8Array;
  /** Installed as `stack.icmpForwarder`. */
  private readonly hook: IcmpForwarder = (_s, port, srcMac, ip, echo, packet) => this.fromGuest(port, srcMac, ip, echo, packet);
  private readonly fromDgramBound = (flow: IcmpFlow, msg: Uint8Array, address: string): void => this.fromDgram(flow, msg, address);

  constructor(
    stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: IcmpTranslateOptions = {},
  ) {
    super(stack, { ipv6: false, name: "ICMP", tag: "icmp", rawHeadroom: RAW_ICMP_HEADROOM, defaultWrap: nodeDgramWrapper }, opts);
    this.rawTx = new Uint8Array(0xffff - 20);
    this.start(opts);
    stack.icmpForwarder = this.hook;
  }

  // ---- guest → host ------------------------------------------------------------------

  private fromGuest(port: Port, srcMac: number, ip: Ipv4Repr, echo: IcmpEcho, packet: Ipv4Packet): void {
    const c = this.counters;
    if (this.currentMode === "disabled") {
      // No ICMP socket: the host's loopback would answer anyway, so answer for the host alias.
      if (ip.dst === this.stack.config.hostAliasIp) return replyToEcho(this.stack, port, srcMac, ip, echo);
      return c.drop("disabled");
    }
    const target = this.policy.resolve(ip.dst);
    if (!target.ok) {
      c.drop("denied");
      if (this.answerDenied) sendProhibited(this.stack, port, srcMac, ip, packet);
      return;
    }
    const now = this.stack.now();
    const key = ip.src * 0x10000 + echo.id;
    let flow = this.flows.get(key);
    if (flow === undefined) {
      flow = this.admit(new IcmpFlow(key, port, srcMac, ip.src, echo.id, now), now, this.fromDgramBound);
      if (flow === undefined) return;
    } else this.touch(flow, port, srcMac, now);
    if (flow.sock !== undefined) {
      // The kernel overwrites the identifier and checksum; dgram keeps the buffer until sent.
      const msg = Buffer.allocUnsafe(echoLen(echo.data.length));
      emitEcho(echo.kind, echo.id, echo.seq, echo.data, msg);
      flow.sock.send(msg, target.host, this.onDgramSent);
      return;
    }
    const dst = parseIpv4Address(target.host);
    const tx = this.rawTx;
    const len = echoLen(echo.data.length);
    if (dst === undefined || len > tx.length) return c.drop("send-error");
    // RFC 792: the request as the guest sent it, under our identifier; checksum computed here.
    emitEcho("echo-request", flow.ourId, echo.seq, echo.data, tx);
    flow.lastDst = dst;
    const n = this.addon!.sendTo(this.rawFd, tx.subarray(0, len), dst);
    if (n >= 0) c.requestsForwarded++;
    else {
      c.drop("send-error");
      this.log?.debug({ dst: target.host, code: errnoName(-n) }, "icmp: send failed");
    }
  }

  // ---- host → guest ------------------------------------------------------------------

  /** dgram mode: one ICMP message (no IP header) on a flow's socket. */
  private fromDgram(flow: IcmpFlow, msg: Uint8Array, address: string): void {
    if (!this.flows.has(flow)) return;
    // The kernel verified the checksum before queueing it to this socket.
    const icmp = parseDatagramEchoReply(msg);
    const src = parseIpv4Address(address);
    if (icmp === undefined || src === undefined) {
      this.counters.ignored++;
      return;
    }
    this.toGuest(flow, src, icmp.seq, icmp.data);
  }

  /** raw mode: a whole IP packet; only echo replies to one of our identifiers, from the address that flow last pinged. */
  protected fromRaw(bytes: Uint8Array): void {
    const reply = parseRawEchoReply(bytes);
    const flow = reply && this.byOurId.get(reply.id);
    if (reply === undefined || flow === undefined || reply.src !== flow.lastDst) return void this.counters.ignored++;
    this.toGuest(flow, reply.src, reply.seq, reply.data);
  }

  /** An echo reply from `src` to the guest of `flow`, with the guest's identifier. */
  private toGuest(flow: IcmpFlow, src: number, seq: number, data: Uint8Array): void {
    const c = this.counters;
    // Replies from the host's loopback appear to come from the host alias.
    if (src >>> 24 === LOOPBACK_NET) {
      if (this.stack.config.hostAliasIp === null) return c.drop("reply-undeliverable");
      src = this.stack.config.hostAliasIp;
    }
    flow.lastActive = this.stack.now();
    if (sendEchoReply(this.stack, flow.port, flow.guestMac, src, flow.guestIp, flow.guestId, seq, data)) c.repliesReturned++;
    else c.drop("reply-undeliverable");
  }

  // ---- lifetime ----------------------------------------------------------------------

  /**
   * Close every flow and the raw socket and uninstall the forwarding hook (the stack then drops
   * echo beyond the gateway as "icmp-unhandled").
   */
  closeAll(): void {
    this.shutdown();
    if (this.stack.icmpForwarder === this.hook) this.stack.icmpForwarder = undefined;
  }

  /** Flow listing for stats and tests. */
  list(): Array<{ guest: string; id: number; hostId: number | null; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({
      guest: formatIpv4(f.guestIp),
      id: f.guestId,
      hostId: f.ourId >= 0 ? f.ourId : null,
      idleMs: now - f.lastActive,
    }));
  }
}
