/**
 * The file-sharing service of the gateway: 9P2000.L on TCP port 564 of the gateway address,
 * through the stack's TCP layer (the same service interface DNS over TCP uses), so a guest on any
 * attachment mounts with
 *   mount -t 9p -o trans=tcp,port=564,version=9p2000.L,aname=NAME 192.168.65.1 /mnt
 * One `ShareRegistry` (name → host directory) serves every connection; shares can be added and
 * removed while guests are connected. Connections beyond `maxConnections` are refused with RST;
 * fids of all connections together are bounded by `maxTotalFids` (each holds a descriptor), and
 * requests running on the thread pool by maxConnections × maxInFlight, closed connections' included.
 * Memory per connection is bounded by about (maxInFlight + 2) × msize.
 * The same service serves the shares' file events to guest agents on TCP 5640 (event-service.ts).
 */

import { TcpEvent, type TcpFlow, type TcpLayer } from "../stack/tcp.js";
import { P9Connection, type P9Transport } from "./connection.js";
import { ShareRegistry, type ShareSpec } from "./registry.js";
import { RequestBudget, type SessionOptions } from "./session.js";
import { FidBudget } from "./fids.js";
import { EventService, type EventServiceOptions } from "./event-service.js";
import type { ShareEventOptions } from "./events.js";
import { Counters } from "../common/counters.js";

/** The 9P port (IANA "9pfs", the Linux client's default). */
export const P9_PORT = 564;

export interface ShareServiceOptions extends SessionOptions {
  port?: number;
  /** Connections at once (default 32). */
  maxConnections?: number;
  /** Fids of all connections together (default 16384). */
  maxTotalFids?: number;
  /** Shares to start with. */
  shares?: ShareSpec[];
  /** File events for guest agents (event-service.ts, TCP 5640): port, bounds, watches. */
  events?: EventServiceOptions & ShareEventOptions;
}

export class ShareServiceCounters extends Counters {
  connections = 0;
  refused = 0;
  protocolClosed = 0;
}

export class ShareService {
  readonly counters = new ShareServiceCounters();
  readonly registry: ShareRegistry;
  /** File events for the guests' agents (event-service.ts). */
  readonly events: EventService;
  readonly port: number;
  private readonly maxConnections: number;
  private readonly fidBudget: FidBudget;
  private readonly requestBudget: RequestBudget;
  private readonly conns = new Set<P9Connection>();
  private closed = false;

  constructor(
    private readonly opts: ShareServiceOptions = {},
    registry?: ShareRegistry,
  ) {
    this.registry = registry ?? new ShareRegistry(opts.events);
    this.events = new EventService(this.registry, opts.events);
    this.port = opts.port ?? P9_PORT;
    this.maxConnections = opts.maxConnections ?? 32;
    this.fidBudget = new FidBudget(opts.maxTotalFids ?? 16384);
    // Requests on the thread pool, closed connections' included: at most every connection's share.
    this.requestBudget = new RequestBudget(this.maxConnections * Math.max(1, opts.maxInFlight ?? 16));
    try {
      for (const spec of opts.shares ?? []) this.registry.add(spec);
    } catch (e) {
      this.registry.close();
      throw e;
    }
  }

  /** Serve the port on the gateway through `layer`. */
  bindTcp(layer: TcpLayer): void {
    layer.bindLocal(this.port, (flow) => this.onSyn(flow));
    this.events.bindTcp(layer);
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Stop: connections aborted, new ones refused, shares closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.conns]) c.close();
    this.conns.clear();
    this.events.close();
    this.registry.close();
  }

  private onSyn(flow: TcpFlow): void {
    if (this.closed || this.conns.size >= this.maxConnections) {
      this.counters.refused++;
      flow.refuse();
      return;
    }
    let conn: P9Connection | undefined;
    const transport: P9Transport = {
      read: (max) => flow.read(max),
      write: (data) => flow.write(data),
      close: () => {
        this.counters.protocolClosed++;
        if (conn !== undefined) this.conns.delete(conn);
        flow.abort();
      },
    };
    conn = new P9Connection(this.registry, transport, { ...this.opts, fidBudget: this.fidBudget, requestBudget: this.requestBudget });
    const c = conn;
    this.conns.add(c);
    this.counters.connections++;
    flow.onEvents = (_f, ev) => {
      if (ev & (TcpEvent.Reset | TcpEvent.Closed)) {
        this.conns.delete(c);
        c.close();
        return;
      }
      if (ev & TcpEvent.Writable) c.flush();
      if (ev & TcpEvent.Readable) c.pump();
      if (ev & TcpEvent.PeerFin && !c.closed) {
        // The client is done sending: answer what is running, then close our side.
        c.pump();
        c.whenDrained(() => {
          this.conns.delete(c);
          c.close();
          flow.shutdownWrite();
        });
      }
    };
    flow.accept();
  }
}
