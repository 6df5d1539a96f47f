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

import { readFileSync } from "node:fs";
import { createSocket } from "node:dgram";
import { constants } from "node:os";
import type { Logger } from "pino";
import { formatIpv4, parseIpv4Address } from "../common/addr.js";
import { DropCounters } from "../common/counters.js";
import { errnoName, loadAddon, type IcmpSocketAddon, type TapAddon } from "../native/addon.js";
import {
  replyToEcho, sendProhibited, sendEchoReply, emitEcho, echoLen, parseDatagramEchoReply, parseRawEchoReply, RAW_ICMP_HEADROOM,
  type IcmpEcho, type IcmpForwarder,
} from "../stack/gateway-icmp.js";
import type { Ipv4Packet, Ipv4Repr } from "../stack/ip-host.js";
import type { NetworkStack, Port } from "../stack/stack.js";
import type { TimerHost, TimerOwner, TimerTarget } from "../stack/timers.js";
import { IdleTable } from "../stack/idle-table.js";
import { evictForGuest, shareOption, type Guest } from "../stack/guests.js";
import type { FdBudget } from "./fd-budget.js";
import type { AddressPolicy } from "./policy.js";

export type IcmpMode = "dgram" | "raw" | "disabled";

/** The addon functions the translator uses (injectable: tests pass a stand-in). */
export type IcmpAddon = IcmpSocketAddon & Pick<TapAddon, "startRead" | "stopRead" | "close">;

/** A host ICMP datagram socket as the translator uses it. */
export interface IcmpDgramSocket {
  /** Send one ICMP message (the kernel sets its identifier and checksum); `done` reports the outcome. */
  send(msg: Uint8Array, address: string, done: (err: Error | null) => void): void;
  close(): void;
}

/**
 * Adopt the datagram ICMP socket `fd` (owned from now on): call `onMessage` with each ICMP
 * message received (no IP header) and its source address, `onError` on a socket error.
 */
export type IcmpDgramWrapper = (
  fd: number,
  onMessage: (msg: Uint8Array, address: string) => void,
  onError: (err: Error) => void,
) => IcmpDgramSocket;

export interface IcmpTranslateOptions {
  /** Close a flow after this long without a request or reply (default 30 000 ms). */
  idleMs?: number;
  /** Most flows at once; the least recently used is closed beyond it (default 1024, at most 65 535). */
  maxFlows?: number;
  /** One guest's share of `maxFlows` (default a quarter). */
  maxFlowsPerGuest?: number;
  /** Descriptor budget (fd-budget.ts; "dgram" mode, a socket per flow): a new flow past it is dropped. */
  fds?: FdBudget;
  timers?: TimerHost;
  log?: Logger;
  /** Answer refused destinations with "administratively prohibited" (default true). */
  answerDenied?: boolean;
  /** The addon (default: the compiled one, loaded on construction). */
  addon?: IcmpAddon;
  /** How a datagram ICMP fd becomes a socket (default: node:dgram `bind({fd})`). */
  wrapDgram?: IcmpDgramWrapper;
  /** Where `ping_group_range` is read from for the log message (default /proc/sys/net/ipv4/ping_group_range). */
  pingGroupRangePath?: string;
}

export type IcmpDropReason =
  /** No ICMP socket could be made (mode "disabled"). */
  | "disabled"
  /** The address policy refuses the destination. */
  | "denied"
  /** A flow's socket could not be made. */
  | "socket-error"
  /** The host socket refused the request. */
  | "send-error"
  /** The descriptor budget was spent (fd-budget.ts). */
  | "fd-budget"
  /** A reply could not go to the guest (too big for the MTU, channel full, no host alias). */
  | "reply-undeliverable";

/** A guest's flows in this table (for `evictForGuest`). */
const COUNT = (g: Guest): number => g.icmpFlows;

export class IcmpTranslateCounters extends DropCounters<IcmpDropReason> {
  flowsOpened = 0;
  flowsExpired = 0;
  flowsEvicted = 0;
  /** Flows of a guest at or over its share evicted for a new flow (guests.ts). */
  guestShareEvictions = 0;
  requestsForwarded = 0;
  repliesReturned = 0;
  /** ICMP read on the host socket that is not a reply to a live flow (raw mode: other processes'). */
  ignored = 0;
}

class IcmpFlow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  lastActive: number;
  /** dgram mode: the flow's socket. */
  sock: IcmpDgramSocket | undefined;
  /** The flow holds a descriptor of the budget. */
  holdsFd = false;
  /** raw mode: the identifier skiff uses on the host, and the address last pinged. */
  ourId = -1;
  lastDst = 0;
  /** The guest that opened the flow (charged for it). */
  guest: Guest | undefined;
  constructor(
    readonly key: number,
    public port: Port,
    public guestMac: number,
    readonly guestIp: number,
    readonly guestId: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

/** Raw mode read ring: slots of this many bytes beyond the MTU (an IP header with options). */
const RAW_SLOT_EXTRA = RAW_ICMP_HEADROOM;
const RAW_SLOTS = 32;
const LOOPBACK_NET = 127;

/** node:dgram adopting a datagram ICMP fd (libuv sees a datagram socket, so it takes it as UDP). */
export const nodeDgramWrapper: IcmpDgramWrapper = (fd, onMessage, onError) => {
  const sock = createSocket("udp4");
  sock.on("message", (msg, rinfo) => onMessage(msg, rinfo.address));
  sock.on("error", onError);
  sock.bind({ fd });
  sock.unref();
  return {
    // The port is required by node:dgram and ignored by the kernel for ICMP sockets.
    send: (msg, address, done) => sock.send(msg, 1, address, done),
    close: () => {
      try {
        sock.close();
      } catch {
        /* already closed */
      }
    },
  };
};

export class IcmpTranslator {
  readonly counters = new IcmpTranslateCounters();
  private currentMode: IcmpMode;
  private currentReason: string;
  private readonly flows: IdleTable<IcmpFlow>;
  /** raw mode: flows by the identifier skiff gave them. */
  private readonly byOurId = new Map<number, IcmpFlow>();
  private nextOurId: number;
  private readonly answerDenied: boolean;
  private readonly maxFlowsPerGuest: number;
  private readonly fds: FdBudget | undefined;
  private readonly log: Logger | undefined;
  private readonly addon: IcmpAddon | undefined;
  private readonly wrapDgram: IcmpDgramWrapper;
  private rawFd = -1;
  private rawRing: Uint8Array = new Uint8Array(0);
  private rawSlot = 0;
  private readonly rawLengths = new Uint32Array(RAW_SLOTS);
  /** raw mode: where outgoing echo requests are built (reused). */
  private rawTx: Uint8Array = new Uint8Array(0);
  /** Installed as `stack.icmpForwarder`. */
  private readonly hook: IcmpForwarder = (_s, port, srcMac, ip, echo, packet) => this.fromGuest(port, srcMac, ip, echo, packet);
  private readonly onDgramSent = (err: Error | null): void => {
    if (err === null) this.counters.requestsForwarded++;
    else {
      this.counters.drop("send-error");
      this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, "icmp: send failed");
    }
  };

  constructor(
    private readonly stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: IcmpTranslateOptions = {},
  ) {
    this.answerDenied = opts.answerDenied ?? true;
    this.fds = opts.fds;
    this.log = opts.log;
    this.wrapDgram = opts.wrapDgram ?? nodeDgramWrapper;
    this.nextOurId = (Math.random() * 0x10000) >>> 0;
    // At most 65 535 flows: raw mode gives each its own 16-bit identifier.
    const host = opts.timers ?? stack.timers;
    const maxFlows = Math.min(opts.maxFlows ?? 1024, 0xffff);
    this.maxFlowsPerGuest = shareOption(opts.maxFlowsPerGuest, maxFlows, "maxFlowsPerGuest");
    this.flows = new IdleTable<IcmpFlow>(host, opts.idleMs ?? 30_000, maxFlows, (f, why) => {
      if (why === "expired") this.counters.flowsExpired++;
      else this.counters.flowsEvicted++;
      this.release(f);
    });

    const { addon, mode, reason } = this.select(opts);
    this.addon = addon;
    this.currentMode = mode;
    this.currentReason = reason;
    if (mode === "disabled") {
      this.log?.warn({ reason: this.reason }, `icmp: echo to addresses beyond the gateway is disabled: ${this.reason}`);
    } else this.log?.info({ mode, reason: this.reason }, `icmp: echo forwarding through ${mode} ICMP sockets`);
    stack.icmpForwarder = this.hook;
  }

  /**
   * Choose the mode: a probe datagram ICMP socket first (unprivileged, and the kernel then
   * owns identifiers and filtering), else a raw one, else disabled. Never throws: an addon
   * that is missing or fails counts as "disabled".
   */
  private select(opts: IcmpTranslateOptions): { addon: IcmpAddon | undefined; mode: IcmpMode; reason: string } {
    let addon: IcmpAddon;
    try {
      addon = opts.addon ?? loadAddon("ICMP sockets");
    } catch (err) {
      return { addon: undefined, mode: "disabled", reason: `the native addon is not available (${(err as Error).message})` };
    }
    try {
      const range = readRange(opts.pingGroupRangePath);
      const probe = addon.icmpSocket(false);
      if (probe >= 0) {
        addon.close(probe);
        return { addon, mode: "dgram", reason: `ICMP datagram sockets are allowed (net.ipv4.ping_group_range = ${range})` };
      }
      const dgramWhy =
        -probe === constants.errno.EACCES
          ? `ICMP datagram sockets refused (EACCES: net.ipv4.ping_group_range = ${range} does not include a group of ` +
            `this process (gid ${process.getgid?.() ?? "?"}); allow them with: sysctl -w net.ipv4.ping_group_range="0 2147483647")`
          : `ICMP datagram sockets refused (${errnoName(-probe)})`;
      const raw = addon.icmpSocket(true);
      if (raw < 0) {
        return { addon, mode: "disabled", reason: `${dgramWhy}, and raw ICMP sockets refused (${errnoName(-raw)}: needs root or CAP_NET_RAW)` };
      }
      this.startRaw(addon, raw);
      return { addon, mode: "raw", reason: `raw ICMP socket; ${dgramWhy}` };
    } catch (err) {
      return { addon, mode: "disabled", reason: `the native addon failed (${(err as Error).message})` };
    }
  }

  /** The mode chosen at construction ("disabled" also after the raw socket failed). */
  get mode(): IcmpMode {
    return this.currentMode;
  }

  /** Why this mode (for logs, the control API and tests). */
  get reason(): string {
    return this.currentReason;
  }

  /** Live flows. */
  get size(): number {
    return this.flows.size;
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
      flow = this.open(key, port, srcMac, ip.src, echo.id, now);
      if (flow === undefined) return;
    } else {
      this.flows.touch(flow, now);
      flow.port = port;
      flow.guestMac = srcMac;
    }
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

  private open(key: number, port: Port, srcMac: number, guestIp: number, guestId: number, now: number): IcmpFlow | undefined {
    const guest = this.stack.rxGuest;
    if (evictForGuest(this.flows, guest, this.maxFlowsPerGuest, COUNT)) this.counters.guestShareEvictions++;
    this.flows.makeRoom();
    const flow = new IcmpFlow(key, port, srcMac, guestIp, guestId, now);
    if (this.currentMode === "dgram") {
      if (this.fds !== undefined && !this.fds.tryAcquire()) {
        this.counters.drop("fd-budget");
        return undefined;
      }
      flow.holdsFd = this.fds !== undefined;
      const fd = this.addon!.icmpSocket(false);
      if (fd < 0) {
        this.releaseFd(flow);
        this.counters.drop("socket-error");
        this.log?.debug({ code: errnoName(-fd) }, "icmp: cannot open a datagram ICMP socket");
        return undefined;
      }
      try {
        flow.sock = this.wrapDgram(
          fd,
          (msg, address) => this.fromDgram(flow, msg, address),
          (err) => {
            this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, "icmp: host socket error");
            this.close(flow);
          },
        );
      } catch (err) {
        this.addon!.close(fd);
        this.releaseFd(flow);
        this.counters.drop("socket-error");
        this.log?.debug({ err: (err as Error).message }, "icmp: cannot adopt a datagram ICMP socket");
        return undefined;
      }
    } else {
      // Raw mode: the next identifier not in use (maxFlows ≤ 65 535 guarantees one is free).
      let id = this.nextOurId;
      while (this.byOurId.has(id)) id = (id + 1) & 0xffff;
      this.nextOurId = (id + 1) & 0xffff;
      flow.ourId = id;
      this.byOurId.set(id, flow);
    }
    flow.guest = guest;
    if (guest !== undefined) guest.icmpFlows++;
    this.flows.add(flow, now);
    this.counters.flowsOpened++;
    return flow;
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

  private startRaw(addon: IcmpAddon, fd: number): void {
    this.rawFd = fd;
    this.rawSlot = this.stack.config.mtu + RAW_SLOT_EXTRA;
    this.rawRing = new Uint8Array(this.rawSlot * RAW_SLOTS);
    this.rawTx = new Uint8Array(0xffff - 20);
    try {
      addon.startRead(fd, this.rawRing.buffer as ArrayBuffer, this.rawSlot, this.rawLengths, (n) => this.onRawRead(n));
    } catch (err) {
      addon.close(fd);
      this.rawFd = -1;
      throw err;
    }
  }

  /** raw mode: `count` whole IP packets in the ring, or -errno (reading has stopped). */
  private onRawRead(count: number): void {
    if (count < 0) {
      this.currentMode = "disabled";
      this.currentReason = `reading the raw ICMP socket failed (${errnoName(-count)})`;
      this.log?.warn({ reason: this.currentReason }, `icmp: echo forwarding stops: ${this.currentReason}`);
      this.shutdown();
      return;
    }
    const ring = this.rawRing;
    const slot = this.rawSlot;
    for (let i = 0; i < count; i++) {
      const n = this.rawLengths[i];
      // A datagram longer than the slot was truncated; its Total Length then fails the parse.
      const bytes = ring.subarray(i * slot, i * slot + Math.min(n, slot));
      this.fromRaw(bytes);
    }
  }

  private fromRaw(bytes: Uint8Array): void {
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

  private close(flow: IcmpFlow): void {
    if (this.flows.delete(flow)) this.release(flow);
  }

  private releaseFd(flow: IcmpFlow): void {
    if (!flow.holdsFd) return;
    flow.holdsFd = false;
    this.fds!.release();
  }

  private release(flow: IcmpFlow): void {
    if (flow.guest !== undefined) flow.guest.icmpFlows--;
    this.releaseFd(flow);
    if (flow.sock !== undefined) flow.sock.close();
    if (flow.ourId >= 0) this.byOurId.delete(flow.ourId);
  }

  private closeRaw(): void {
    if (this.rawFd < 0) return;
    this.addon!.close(this.rawFd);
    this.rawFd = -1;
  }

  /**
   * Close every flow and the raw socket and uninstall the forwarding hook (the stack then drops
   * echo beyond the gateway as "icmp-unhandled").
   */
  closeAll(): void {
    this.shutdown();
    if (this.stack.icmpForwarder === this.hook) this.stack.icmpForwarder = undefined;
  }

  private shutdown(): void {
    for (const f of [...this.flows.values()]) this.close(f);
    this.flows.stop();
    this.closeRaw();
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

/** The sysctl's value, quoted, for log messages. */
function readRange(path = "/proc/sys/net/ipv4/ping_group_range"): string {
  try {
    return `"${readFileSync(path, "utf8").trim().replace(/\s+/g, " ")}"`;
  } catch {
    return "(unreadable)";
  }
}



