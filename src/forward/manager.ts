/**
 * ForwardManager: the set of port forwards of one stack, as `skiff run -p` and the control API
 * see it. `add` takes a batch (a port range is one batch) and applies all of it or none: if
 * one port cannot be listened on, the listeners already opened for the batch are closed and
 * the error names the port. `remove` closes a forward's listener; connections already open
 * through it finish on their own.
 */

import type { Logger } from "pino";
import { parseIpv4Address } from "../common/addr.js";
import { inSubnet, broadcastAddress } from "../common/cidr.js";
import type { NetworkStack } from "../stack/stack.js";
import type { TcpLayer } from "../stack/tcp.js";
import type { ForwardSpec } from "./spec.js";
import { NeighborResolver, type GuestAddr } from "./neighbor.js";
import { inPrefix64, parseIpv6Address } from "../stack/config6.js";
import { TcpForward, type TcpForwardCounters } from "./tcp-forward.js";
import { UdpForward, type UdpForwardCounters } from "./udp-forward.js";
import type { CounterValues } from "../common/counters.js";

export interface ForwardInfo extends ForwardSpec {
  id: string;
}

export interface ForwardManagerOptions {
  /** Give up on a guest that does not answer a forwarded SYN after this long (ms). */
  connectTimeoutMs?: number;
  /** UDP client mappings idle this long are closed (ms). */
  udpIdleMs?: number;
  /** How long to wait for a guest's ARP answer (ms). */
  arpTimeoutMs?: number;
  log?: Logger;
  /** Told of a forward's host socket error after it opened (e.g. the listener is lost). */
  onError?: (err: Error, spec: ForwardSpec) => void;
}

type Forward = { kind: "tcp"; f: TcpForward } | { kind: "udp"; f: UdpForward };

export class ForwardManager {
  private readonly forwards = new Map<string, { info: ForwardInfo; fwd: Forward }>();
  private nextId = 1;
  private readonly resolver: NeighborResolver;

  constructor(
    private readonly stack: NetworkStack,
    private readonly tcp: TcpLayer,
    private readonly opts: ForwardManagerOptions = {},
  ) {
    this.resolver = new NeighborResolver(stack, opts.arpTimeoutMs);
  }

  /**
   * Why `guestAddr` (IPv4, or IPv6 inside the guest prefix) cannot be forwarded to, or
   * undefined when it can; `fallback` is a spec's `guestAddrFallback`.
   */
  checkGuest(guestAddr: string, fallback?: string): string | undefined {
    if (fallback !== undefined) {
      const why = this.checkGuest(fallback);
      if (why !== undefined) return why.replace(/^guestAddr/, "guestAddrFallback");
    }
    const ip = parseIpv4Address(guestAddr);
    const cfg = this.stack.config;
    if (ip === undefined) return checkGuest6(this.stack, guestAddr);
    if (!inSubnet(cfg, ip) || ip === cfg.network || ip === broadcastAddress(cfg) || this.stack.isLocalAddress(ip)) {
      return `guestAddr: ${guestAddr} is not a guest address of the network`;
    }
    return undefined;
  }

  /**
   * Open every forward of `specs`, or none: rejects with an error naming the first port that
   * failed (in use, no permission, bad guest address) after closing what it had opened.
   */
  async add(specs: ForwardSpec[]): Promise<ForwardInfo[]> {
    for (const s of specs) {
      const why = this.checkGuest(s.guestAddr, s.guestAddrFallback);
      if (why !== undefined) throw new Error(why);
    }
    const opened: Forward[] = [];
    try {
      for (const s of specs) {
        const guest: GuestAddr = parseIpv4Address(s.guestAddr) ?? parseIpv6Address(s.guestAddr)!;
        const fallback = s.guestAddrFallback === undefined ? undefined : parseIpv4Address(s.guestAddrFallback);
        if (s.proto === "tcp") {
          opened.push({ kind: "tcp", f: await TcpForward.listen(this.tcp, this.resolver, s, guest, { connectTimeoutMs: this.opts.connectTimeoutMs, log: this.opts.log, fallback, onError: (e) => this.opts.onError?.(e, s) }) });
        } else {
          opened.push({ kind: "udp", f: await UdpForward.listen(this.stack, this.resolver, s, guest, { idleMs: this.opts.udpIdleMs, log: this.opts.log, onError: (e) => this.opts.onError?.(e, s) }) });
        }
      }
    } catch (e) {
      for (const o of opened) o.f.destroy();
      throw e;
    }
    return opened.map((fwd) => {
      const id = String(this.nextId++);
      const info: ForwardInfo = { id, ...fwd.f.spec, hostPort: fwd.f.hostPort };
      this.forwards.set(id, { info, fwd });
      return info;
    });
  }

  /** Close forward `id`'s listener (open connections finish). False when there is no such forward. */
  async remove(id: string): Promise<boolean> {
    const e = this.forwards.get(id);
    if (e === undefined) return false;
    this.forwards.delete(id);
    if (e.fwd.kind === "tcp") await e.fwd.f.close();
    else e.fwd.f.destroy();
    return true;
  }

  list(): ForwardInfo[] {
    return [...this.forwards.values()].map((e) => ({ ...e.info }));
  }

  /** Counters per forward, for `GET /stats`. */
  stats(): Array<ForwardInfo & { counters: CounterValues<TcpForwardCounters> | CounterValues<UdpForwardCounters> }> {
    return [...this.forwards.values()].map((e) => ({ ...e.info, counters: e.fwd.f.counters.snapshot() }));
  }

  /** Close every forward and reset its connections (shutting down). */
  closeAll(): void {
    for (const e of this.forwards.values()) e.fwd.f.destroy();
    this.forwards.clear();
  }
}

/** `ForwardManager.checkGuest` for an address that is not IPv4. */
function checkGuest6(stack: NetworkStack, guestAddr: string): string | undefined {
  const a = guestAddr.includes("%") ? undefined : parseIpv6Address(guestAddr);
  if (a === undefined) return `guestAddr: not an IPv4 or IPv6 address: ${JSON.stringify(guestAddr)}`;
  const gw = stack.ipv6;
  if (gw === undefined) return `guestAddr: ${guestAddr} is IPv6, and IPv6 is off on this network`;
  if (!inPrefix64(gw.cfg, a) || gw.isReserved(a)) return `guestAddr: ${guestAddr} is not a guest address of the network (a guest's address in ${gw.cfg.prefix}/64)`;
  return undefined;
}
