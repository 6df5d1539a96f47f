/**
 * UDP port forwarding, host → guest: a host datagram socket on the forward's host address and
 * port; each host client (address and port) gets its own mapping to a UDP port of the gateway,
 * so datagrams from different clients reach the guest from different source ports and the
 * guest's replies find their way back (the same per-client model as docker's userland proxy).
 *
 * The reply path uses the stack's own hook for the gateway's ports (`stack.bindUdp`): the
 * guest answers to gateway:port, which the stack delivers to the mapping before anything else
 * sees it; only datagrams from the forward's guest address and port are relayed. Mappings idle
 * for `idleMs` (default 60 s) are closed; past `maxClients` the least recently used goes: the
 * mappings are an `IdleTable` (the same bounded LRU table with idle expiry as socket
 * translation's flows) on the stack's one timer driver and clock.
 *
 * To an IPv6 guest address the same happens over IPv6: datagrams go from the gateway's ULA and
 * a port of it bound on the IPv6 gateway (`Ipv6Gateway.bindUdp`), after a neighbour
 * solicitation when the guest has not been heard from (RFC 4861 §7.2.2).
 */

import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { Logger } from "pino";
import type { NetworkStack } from "../stack/stack.js";
import { sendUdp, type UdpDatagram } from "../stack/gateway-udp.js";
import { IdleTable } from "../stack/idle-table.js";
import type { TimerOwner, TimerTarget } from "../stack/timers.js";
import type { ForwardSpec } from "./spec.js";
import type { GuestAddr, NeighborResolver } from "./neighbor.js";
import { ipv6Equal, type Ipv6Address } from "../stack/config6.js";
import type { Udp6Datagram } from "../stack/gateway-ipv6.js";
import { listenError } from "./tcp-forward.js";
import { Counters } from "../common/counters.js";

export class UdpForwardCounters extends Counters {
  clientsOpened = 0;
  clientsExpired = 0;
  clientsEvicted = 0;
  open = 0;
  datagramsToGuest = 0;
  datagramsToHost = 0;
  bytesToGuest = 0;
  bytesToHost = 0;
  /** Datagrams the guest could not be sent (unknown MAC, too big). */
  dropped = 0;
}

export interface UdpForwardOptions {
  idleMs?: number;
  maxClients?: number;
  log?: Logger;
  /** Told of an error of the host socket after it is bound. */
  onError?: (err: Error) => void;
}

/** One host client's mapping (an entry of the idle table, keyed by a serial number). */
class Client implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  lastActive = 0;

  constructor(
    readonly key: number,
    readonly addr: string,
    readonly port: number,
    readonly gwPort: number,
  ) {}
}

/** Gateway ports used for forward mappings (RFC 6335 dynamic range). */
const FIRST = 49152;
const LAST = 65535;

export class UdpForward {
  readonly counters = new UdpForwardCounters();
  private readonly sock: Socket;
  /** Clients by host address, then port (no string building per datagram). */
  private readonly clients = new Map<string, Map<number, Client>>();
  /** The mappings in least-recently-used order, each with its idle deadline. */
  private readonly table: IdleTable<Client>;
  private nextKey = 1;
  private readonly log: Logger | undefined;
  private closed = false;

  private constructor(
    private readonly stack: NetworkStack,
    private readonly resolver: NeighborResolver,
    readonly spec: ForwardSpec,
    private readonly guest: GuestAddr,
    opts: UdpForwardOptions,
  ) {
    this.log = opts.log;
    this.sock = createSocket(isIPv6(spec.hostAddr) ? { type: "udp6", ipv6Only: true } : { type: "udp4" });
    this.table = new IdleTable<Client>(stack.timers, opts.idleMs ?? 60_000, opts.maxClients ?? 1024, (cl, why) => {
      this.unmap(cl);
      if (why === "expired") this.counters.clientsExpired++;
      else this.counters.clientsEvicted++;
    });
  }

  static async listen(stack: NetworkStack, resolver: NeighborResolver, spec: ForwardSpec, guest: GuestAddr, opts: UdpForwardOptions = {}): Promise<UdpForward> {
    const f = new UdpForward(stack, resolver, spec, guest, opts);
    try {
      await new Promise<void>((resolve, reject) => {
        f.sock.once("error", (e: NodeJS.ErrnoException) => reject(listenError(e, spec)));
        f.sock.bind({ address: spec.hostAddr, port: spec.hostPort, exclusive: true }, () => resolve());
      });
    } catch (e) {
      f.destroy();
      throw e;
    }
    f.sock.on("error", (e) => {
      f.log?.debug({ err: e.message }, "forward: udp socket error");
      opts.onError?.(e);
    });
    f.sock.on("message", (msg, rinfo) => f.fromHost(msg, rinfo.address, rinfo.port));
    return f;
  }

  get hostPort(): number {
    return this.sock.address().port;
  }

  get clientCount(): number {
    return this.table.size;
  }

  private fromHost(msg: Buffer, addr: string, port: number): void {
    const c = this.counters;
    let byPort = this.clients.get(addr);
    let client = byPort?.get(port);
    const now = this.stack.now();
    if (client === undefined) {
      const gwPort = this.freeGatewayPort();
      if (gwPort < 0) return void c.dropped++;
      this.table.makeRoom();
      client = new Client(this.nextKey++, addr, port, gwPort);
      const cl = client;
      if (typeof this.guest === "number") this.stack.bindUdp(gwPort, (_s, d) => this.fromGuest(cl, d));
      else this.stack.ipv6!.bindUdp(gwPort, (_g, d) => this.fromGuest6(cl, d));
      if (byPort === undefined) {
        byPort = new Map();
        this.clients.set(addr, byPort);
      }
      byPort.set(port, client);
      this.table.add(client, now);
      c.clientsOpened++;
      c.open++;
    } else this.table.touch(client, now);
    if (this.resolver.known(this.guest)) return this.send(client, msg);
    // The guest has not been heard from yet: ask for its MAC, then send.
    const cl = client;
    void this.resolver.resolve(this.guest).then((ok) => {
      if (ok && !this.closed) this.send(cl, msg);
      else c.dropped++;
    });
  }

  private send(client: Client, msg: Uint8Array): void {
    const c = this.counters;
    if (this.sendTo(client.gwPort, msg)) {
      c.datagramsToGuest++;
      c.bytesToGuest += msg.length;
    } else c.dropped++;
  }

  /** One datagram to the guest from the gateway's `gwPort`, over its family; false when it cannot go. */
  private sendTo(gwPort: number, msg: Uint8Array): boolean {
    const g = this.guest;
    if (typeof g === "number") {
      const nb = this.stack.neighbors.lookup(g);
      return nb !== undefined && sendUdp(this.stack, nb.port, nb.mac, this.stack.config.gatewayIp, gwPort, g, this.spec.guestPort, msg);
    }
    const gw = this.stack.ipv6;
    const nb = gw?.neighbors.lookup(g);
    return nb !== undefined && gw!.sendUdp(nb.port, nb.mac, gw!.cfg.gateway, gwPort, g, this.spec.guestPort, msg);
  }

  private fromGuest(client: Client, d: UdpDatagram): void {
    if (d.srcIp !== this.guest || d.srcPort !== this.spec.guestPort || d.dstIp !== this.stack.config.gatewayIp) return;
    this.relayToHost(client, d.payload);
  }

  private fromGuest6(client: Client, d: Udp6Datagram): void {
    const gw = this.stack.ipv6!;
    if (!ipv6Equal(d.src, this.guest as Ipv6Address) || d.srcPort !== this.spec.guestPort || !ipv6Equal(d.dst, gw.cfg.gateway)) return;
    this.relayToHost(client, d.payload);
  }

  private relayToHost(client: Client, payload: Uint8Array): void {
    const c = this.counters;
    if (this.table.has(client)) this.table.touch(client, this.stack.now());
    c.datagramsToHost++;
    c.bytesToHost += payload.length;
    // The payload is borrowed: dgram keeps what it is given until sent.
    this.sock.send(Buffer.from(payload), client.port, client.addr);
  }

  private freeGatewayPort(): number {
    const span = LAST - FIRST + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const p = FIRST + ((start + i) % span);
      if (typeof this.guest === "number" ? this.stack.udpService(p) === undefined : this.stack.ipv6?.udpService(p) === undefined) return p;
    }
    return -1;
  }

  /** Undo a mapping that left the table: unbind its gateway port, forget it. */
  private unmap(client: Client): void {
    if (typeof this.guest === "number") this.stack.unbindUdp(client.gwPort);
    else this.stack.ipv6?.unbindUdp(client.gwPort);
    const byPort = this.clients.get(client.addr);
    byPort?.delete(client.port);
    if (byPort?.size === 0) this.clients.delete(client.addr);
    this.counters.open--;
  }

  /** Close the socket and every mapping. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cl of [...this.table.values()]) if (this.table.delete(cl)) this.unmap(cl);
    this.table.stop();
    try {
      this.sock.close();
    } catch {
      /* never bound */
    }
  }
}
