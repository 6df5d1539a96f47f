/**
 * What ICMP echo translation does the same way for IPv4 (icmp-translator.ts, RFC 792) and IPv6
 * (icmp6-translator.ts, RFC 4443 §4): choosing the host socket mode once (an unprivileged
 * datagram "ping" socket per flow, else one raw socket read through the addon's batched
 * `startRead`, else disabled), the flow table (idle expiry, the least recently used flow
 * evicted beyond `maxFlows` by the per-guest rule of src/stack/guests.ts, one descriptor of the
 * budget per datagram socket, skiff's own identifier per flow in raw mode) and closing flows.
 * The family's subclass parses what the guest and the host send and answers the guest.
 */

import { readFileSync } from "node:fs";
import { createSocket } from "node:dgram";
import { constants } from "node:os";
import type { Logger } from "pino";
import { DropCounters } from "../common/counters.js";
import { errnoName, loadAddon, type IcmpSocketAddon, type TapAddon } from "../native/addon.js";
import type { NetworkStack, Port } from "../stack/stack.js";
import type { TimerHost, TimerOwner, TimerTarget } from "../stack/timers.js";
import { IdleTable } from "../stack/idle-table.js";
import { evictForGuest, shareOption, type Guest } from "../stack/guests.js";
import type { FdBudget } from "./fd-budget.js";

export type IcmpMode = "dgram" | "raw" | "disabled";

/** The addon functions the translators use (injectable: tests pass a stand-in). */
export type IcmpAddon = IcmpSocketAddon & Pick<TapAddon, "startRead" | "stopRead" | "close">;

/** A host ICMP datagram socket as the translators use it. */
export interface IcmpDgramSocket {
  /** Send one ICMP message (the kernel sets its identifier and checksum); `done` reports the outcome. */
  send(msg: Uint8Array, address: string, done: (err: Error | null) => void): void;
  close(): void;
}

/**
 * Adopt the datagram ICMP socket `fd` (owned from now on): call `onMessage` with each ICMP
 * message received (no IP header) and its source address, `onError` on a socket error.
 */
export type IcmpDgramWrapper = (fd: number, onMessage: (msg: Uint8Array, address: string) => void, onError: (err: Error) => void) => IcmpDgramSocket;

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

/** One guest flow (guest address, guest identifier); the family's subclass adds the address. */
export class EchoFlow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  lastActive: number;
  /** dgram mode: the flow's socket. */
  sock: IcmpDgramSocket | undefined;
  /** The flow holds a descriptor of the budget. */
  holdsFd = false;
  /** raw mode: the identifier skiff uses on the host. */
  ourId = -1;
  /** The guest that opened the flow (charged for it). */
  guest: Guest | undefined;
  constructor(
    readonly key: number,
    public port: Port,
    public guestMac: number,
    readonly guestId: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

/** node:dgram adopting a datagram ICMP fd of `type` (libuv sees a datagram socket, so it takes it as UDP). */
export function nodeDgramWrapperFor(type: "udp4" | "udp6"): IcmpDgramWrapper {
  return (fd, onMessage, onError) => {
    const sock = createSocket(type);
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
}

/** A guest's flows in the table (for `evictForGuest`). */
const COUNT = (g: Guest): number => g.icmpFlows;
const RAW_SLOTS = 32;

/** The family a translator serves: its sockets, its read slot, its names in messages. */
export interface EchoFamily {
  ipv6: boolean;
  /** "ICMP" or "ICMPv6", in log messages and reasons. */
  name: string;
  /** Logger tag ("icmp", "icmp6"). */
  tag: string;
  /** A raw socket's read slot beyond the MTU (an IPv4 header with options; nothing for IPv6). */
  rawHeadroom: number;
  defaultWrap: IcmpDgramWrapper;
}

export abstract class EchoTranslatorBase<F extends EchoFlow> {
  readonly counters = new IcmpTranslateCounters();
  protected currentMode: IcmpMode = "disabled";
  protected currentReason = "";
  protected readonly flows: IdleTable<F>;
  /** raw mode: flows by the identifier skiff gave them. */
  protected readonly byOurId = new Map<number, F>();
  private nextOurId = (Math.random() * 0x10000) >>> 0;
  protected readonly answerDenied: boolean;
  private readonly maxFlowsPerGuest: number;
  private readonly fds: FdBudget | undefined;
  protected readonly log: Logger | undefined;
  protected addon: IcmpAddon | undefined;
  private readonly wrapDgram: IcmpDgramWrapper;
  protected rawFd = -1;
  private rawRing: Uint8Array = new Uint8Array(0);
  private rawSlot = 0;
  private readonly rawLengths = new Uint32Array(RAW_SLOTS);
  protected readonly onDgramSent = (err: Error | null): void => {
    if (err === null) this.counters.requestsForwarded++;
    else {
      this.counters.drop("send-error");
      this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, `${this.family.tag}: send failed`);
    }
  };

  constructor(
    protected readonly stack: NetworkStack,
    private readonly family: EchoFamily,
    opts: IcmpTranslateOptions,
  ) {
    this.answerDenied = opts.answerDenied ?? true;
    this.fds = opts.fds;
    this.log = opts.log;
    this.wrapDgram = opts.wrapDgram ?? family.defaultWrap;
    // At most 65 535 flows: raw mode gives each its own 16-bit identifier.
    const maxFlows = Math.min(opts.maxFlows ?? 1024, 0xffff);
    this.maxFlowsPerGuest = shareOption(opts.maxFlowsPerGuest, maxFlows, "maxFlowsPerGuest");
    this.flows = new IdleTable<F>(opts.timers ?? stack.timers, opts.idleMs ?? 30_000, maxFlows, (f, why) => {
      if (why === "expired") this.counters.flowsExpired++;
      else this.counters.flowsEvicted++;
      this.release(f);
    });
  }

  /** Choose the mode (call once, from the subclass's constructor, before installing its hook). */
  protected start(opts: IcmpTranslateOptions): void {
    const { addon, mode, reason } = this.select(opts);
    this.addon = addon;
    this.currentMode = mode;
    this.currentReason = reason;
    const f = this.family;
    if (mode === "disabled") this.log?.warn({ reason }, `${f.tag}: echo to addresses beyond the gateway is disabled: ${reason}`);
    else this.log?.info({ mode, reason }, `${f.tag}: echo forwarding through ${mode} ${f.name} sockets`);
  }

  /**
   * A probe datagram socket first (unprivileged, and the kernel then owns identifiers and
   * filtering), else a raw one, else disabled. Never throws: an addon that is missing or fails
   * counts as "disabled".
   */
  private select(opts: IcmpTranslateOptions): { addon: IcmpAddon | undefined; mode: IcmpMode; reason: string } {
    const { name, ipv6 } = this.family;
    let addon: IcmpAddon;
    try {
      addon = opts.addon ?? loadAddon(`${name} sockets`);
    } catch (err) {
      return { addon: undefined, mode: "disabled", reason: `the native addon is not available (${(err as Error).message})` };
    }
    try {
      const range = readRange(opts.pingGroupRangePath);
      const probe = addon.icmpSocket(false, ipv6);
      if (probe >= 0) {
        addon.close(probe);
        return { addon, mode: "dgram", reason: `${name} datagram sockets are allowed (net.ipv4.ping_group_range = ${range})` };
      }
      const dgramWhy =
        -probe === constants.errno.EACCES
          ? `${name} datagram sockets refused (EACCES: net.ipv4.ping_group_range = ${range} does not include a group of ` +
            `this process (gid ${process.getgid?.() ?? "?"}); allow them with: sysctl -w net.ipv4.ping_group_range="0 2147483647")`
          : `${name} datagram sockets refused (${errnoName(-probe)})`;
      const raw = addon.icmpSocket(true, ipv6);
      if (raw < 0) return { addon, mode: "disabled", reason: `${dgramWhy}, and raw ${name} sockets refused (${errnoName(-raw)}: needs root or CAP_NET_RAW)` };
      this.startRaw(addon, raw);
      return { addon, mode: "raw", reason: `raw ${name} socket; ${dgramWhy}` };
    } catch (err) {
      return { addon, mode: "disabled", reason: `the native addon failed (${(err as Error).message})` };
    }
  }

  private startRaw(addon: IcmpAddon, fd: number): void {
    this.rawFd = fd;
    this.rawSlot = this.stack.config.mtu + this.family.rawHeadroom;
    this.rawRing = new Uint8Array(this.rawSlot * RAW_SLOTS);
    try {
      addon.startRead(fd, this.rawRing.buffer as ArrayBuffer, this.rawSlot, this.rawLengths, (n) => this.onRawRead(n));
    } catch (err) {
      addon.close(fd);
      this.rawFd = -1;
      throw err;
    }
  }

  /** raw mode: `count` packets in the ring, or -errno (reading has stopped). */
  private onRawRead(count: number): void {
    if (count < 0) {
      this.currentMode = "disabled";
      this.currentReason = `reading the raw ${this.family.name} socket failed (${errnoName(-count)})`;
      this.log?.warn({ reason: this.currentReason }, `${this.family.tag}: echo forwarding stops: ${this.currentReason}`);
      this.shutdown();
      return;
    }
    const ring = this.rawRing;
    const slot = this.rawSlot;
    for (let i = 0; i < count; i++) {
      // A datagram longer than the slot was truncated; its length field then fails the parse.
      this.fromRaw(ring.subarray(i * slot, i * slot + Math.min(this.rawLengths[i], slot)));
    }
  }

  /** raw mode: one packet as the raw socket delivers it (borrowed). */
  protected abstract fromRaw(bytes: Uint8Array): void;

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

  /**
   * Enter the new `flow` in the table: room for it (the guest's share first, then the cap), its
   * datagram socket (a descriptor of the budget) or raw identifier. Undefined (counted) when
   * its socket cannot be made.
   */
  protected admit(flow: F, now: number, onMessage: (flow: F, msg: Uint8Array, address: string) => void): F | undefined {
    const guest = this.stack.rxGuest;
    if (evictForGuest(this.flows, guest, this.maxFlowsPerGuest, COUNT)) this.counters.guestShareEvictions++;
    this.flows.makeRoom();
    if (this.currentMode === "dgram") {
      if (this.fds !== undefined && !this.fds.tryAcquire()) {
        this.counters.drop("fd-budget");
        return undefined;
      }
      flow.holdsFd = this.fds !== undefined;
      const fd = this.addon!.icmpSocket(false, this.family.ipv6);
      try {
        if (fd < 0) throw new Error(errnoName(-fd));
        flow.sock = this.wrapDgram(
          fd,
          (msg, address) => onMessage(flow, msg, address),
          (err) => {
            this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, `${this.family.tag}: host socket error`);
            this.close(flow);
          },
        );
      } catch (err) {
        if (fd >= 0) this.addon!.close(fd);
        this.releaseFd(flow);
        this.counters.drop("socket-error");
        this.log?.debug({ err: (err as Error).message }, `${this.family.tag}: cannot open a datagram ${this.family.name} socket`);
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

  /** The existing `flow` carries another request: touched, and moved to the port and MAC it came from. */
  protected touch(flow: F, port: Port, srcMac: number, now: number): void {
    this.flows.touch(flow, now);
    flow.port = port;
    flow.guestMac = srcMac;
  }

  protected close(flow: F): void {
    if (this.flows.delete(flow)) this.release(flow);
  }

  private releaseFd(flow: F): void {
    if (!flow.holdsFd) return;
    flow.holdsFd = false;
    this.fds!.release();
  }

  private release(flow: F): void {
    if (flow.guest !== undefined) flow.guest.icmpFlows--;
    this.releaseFd(flow);
    if (flow.sock !== undefined) flow.sock.close();
    if (flow.ourId >= 0) this.byOurId.delete(flow.ourId);
  }

  /** Close every flow and the raw socket. */
  protected shutdown(): void {
    for (const f of [...this.flows.values()]) this.close(f);
    this.flows.stop();
    if (this.rawFd < 0) return;
    this.addon!.close(this.rawFd);
    this.rawFd = -1;
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
