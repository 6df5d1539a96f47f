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
import { NeighborResolver } from "./neighbor.js";
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

  /** Why `guestAddr` cannot be forwarded to, or undefined when it can. */
  checkGuest(guestAddr: string): string | undefined {
    const ip = parseIpv4Address(guestAddr);
    const cfg = this.stack.config;
    if (ip === undefined) return `guestAddr: not an IPv4 address: ${JSON.stringify(guestAddr)}`;
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
      const why = this.checkGuest(s.guestAddr);
      if (why !== undefined) throw new Error(why);
    }
    const opened: Forward[] = [];
    try {
      for (const s of specs) {
        const guestIp = parseIpv4Address(s.guestAddr)!;
        if (s.proto === "tcp") {
          opened.push({ kind: "tcp", f: await TcpForward.listen(this.tcp, this.resolver, s, guestIp, { connectTimeoutMs: this.opts.connectTimeoutMs, log: this.opts.log, onError: (e) => this.opts.onError?.(e, s) }) });
        } else {
          opened.push({ kind: "udp", f: await UdpForward.listen(this.stack, this.resolver, s, guestIp, { idleMs: this.opts.udpIdleMs, log: this.opts.log, onError: (e) => this.opts.onError?.(e, s) }) });
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
