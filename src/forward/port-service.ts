/**
 * Host ports opened at a guest's request (the port protocol of VPNKit's Docker for Mac, as
 * skiff speaks it). Used for `skiff docker`'s published ports: the guest's dockerd runs
 * `/skiff/docker-proxy` (see src/desktop/init.ts) in place of docker-proxy for every published port (`--userland-proxy-path`;
 * dockerd starts it with `-proto P -host-ip IP -host-port N -container-ip CIP -container-port M`
 * and waits for "0\n", or "1\n<error>", on its descriptor 3 before the container starts). The
 * script asks this service, on a TCP port of skiff's gateway, to listen on the host first:
 *
 *   OPEN tcp|udp HOST_IP HOST_PORT\n   →  OK ID\n   |  ERR message\n
 *   CLOSE ID\n                         →  OK\n      |  ERR message\n
 *
 * one request per connection, answered and then closed. OPEN adds a forward HOST_IP:HOST_PORT →
 * guest:HOST_PORT (the script then DNATs that guest port to the container), so a host port that
 * is busy fails `docker run` itself with skiff's message, as VPNKit's port protocol did, and the
 * host port is listening before the container starts; CLOSE (the script's SIGTERM handler, when
 * the container stops) removes it. Lines are at most `MAX_LINE` bytes; a connection that sends
 * none within `idleMs` is closed; at most `maxConnections` at once (more are refused with RST).
 * Only the docker guest itself may reach the port: the guest drops containers' packets to it
 * (init.ts).
 */

import type { Logger } from "pino";
import { networkInterfaces } from "node:os";
import { isHostAddr } from "./spec.js";
import { TcpEvent, type TcpFlow, type TcpLayer } from "../stack/tcp.js";
import type { ForwardManager } from "./manager.js";
import type { NetworkClock } from "../common/clock.js";
import { Counters } from "../common/counters.js";

/** The gateway's TCP port of the service. */
export const PORT_SERVICE_PORT = 1999;

const MAX_LINE = 256;

export type PortRequest =
  | { kind: "open"; proto: "tcp" | "udp"; hostAddr: string; hostPort: number }
  | { kind: "close"; id: string }
  | { kind: "bad"; error: string };

/** Parse one request line (without its newline). */
export function parsePortRequest(line: string): PortRequest {
  const w = line.trim().split(/\s+/);
  if (w[0] === "OPEN" && w.length === 4) {
    const [, proto, hostAddr, portText] = w;
    if (proto !== "tcp" && proto !== "udp") return { kind: "bad", error: `protocol ${proto} is not tcp or udp` };
    if (!isHostAddr(hostAddr)) return { kind: "bad", error: `host address ${hostAddr} is not an IPv4 or IPv6 address` };
    const hostPort = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(hostPort >= 1 && hostPort <= 65535)) return { kind: "bad", error: `host port ${portText} is not 1..65535` };
    return { kind: "open", proto, hostAddr, hostPort };
  }
  if (w[0] === "CLOSE" && w.length === 2 && /^\d{1,10}$/.test(w[1])) return { kind: "close", id: w[1] };
  return { kind: "bad", error: "expected OPEN tcp|udp HOST_IP HOST_PORT or CLOSE ID" };
}

export class PortServiceCounters extends Counters {
  connections = 0;
  refused = 0;
  opened = 0;
  openFailed = 0;
  closed = 0;
  badRequests = 0;
  /** `OPEN … :: PORT` answered OK without listening: the host has no IPv6. */
  ipv6Skipped = 0;
}

export interface PortServiceOptions {
  maxConnections?: number;
  idleMs?: number;
  log?: Logger;
}

export class PortService {
  readonly counters = new PortServiceCounters();
  private open = 0;
  private readonly maxConnections: number;
  private readonly idleMs: number;
  private readonly clock: NetworkClock;

  constructor(
    tcp: TcpLayer,
    private readonly forwards: ForwardManager,
    private readonly guestIp: string,
    private readonly opts: PortServiceOptions = {},
  ) {
    this.maxConnections = opts.maxConnections ?? 64;
    this.idleMs = opts.idleMs ?? 10_000;
    this.clock = tcp.stack.timers;
    tcp.bindLocal(PORT_SERVICE_PORT, (flow) => this.onSyn(flow));
  }

  /** Answer one request: the reply line without its newline. */
  async handle(line: string): Promise<string> {
    const req = parsePortRequest(line);
    const c = this.counters;
    if (req.kind === "bad") {
      c.badRequests++;
      return `ERR ${req.error}`;
    }
    if (req.kind === "close") {
      if (req.id === "0") return "OK";
      const ok = await this.forwards.remove(req.id);
      if (ok) c.closed++;
      return ok ? "OK" : `ERR no forward ${req.id}`;
    }
    // dockerd asks for `::` beside `0.0.0.0` for every default publish (the guest has IPv6); on a
    // host without IPv6 that half is skipped rather than failing `docker run`. An explicit IPv6
    // address still fails there.
    if (req.hostAddr === "::" && !hostHasIpv6()) {
      c.ipv6Skipped++;
      return "OK 0";
    }
    try {
      const [info] = await this.forwards.add([{ proto: req.proto, hostAddr: req.hostAddr, hostPort: req.hostPort, guestAddr: this.guestIp, guestPort: req.hostPort }]);
      c.opened++;
      this.opts.log?.info({ proto: req.proto, host: `${req.hostAddr}:${req.hostPort}`, id: info.id }, "published port");
      return `OK ${info.id}`;
    } catch (e) {
      c.openFailed++;
      // One line: the message goes back to `docker run` as its error.
      return `ERR ${(e as Error).message.replace(/[\r\n]+/g, " ")}`;
    }
  }

  private onSyn(flow: TcpFlow): void {
    const c = this.counters;
    if (this.open >= this.maxConnections) {
      c.refused++;
      flow.refuse();
      return;
    }
    this.open++;
    c.connections++;
    let buf = "";
    let answered = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.open--;
      timer.cancel();
    };
    // On the network's clock and timer driver (stack/timers.ts).
    const timer = this.clock.after(this.idleMs, () => {
      finish();
      flow.abort();
    });
    flow.onEvents = (f, ev) => {
      if (ev & (TcpEvent.Reset | TcpEvent.Closed)) return finish();
      if (answered || !(ev & (TcpEvent.Readable | TcpEvent.PeerFin))) return;
      const d = f.read(MAX_LINE + 1 - buf.length);
      buf += Buffer.from(d).toString("latin1");
      const nl = buf.indexOf("\n");
      if (nl < 0 && buf.length <= MAX_LINE && !f.conn.peerFinished) return;
      answered = true;
      const reply = nl < 0 && buf.length > MAX_LINE ? Promise.resolve("ERR request line too long") : this.handle(nl < 0 ? buf : buf.slice(0, nl));
      void reply.then((r) => {
        if (done) return;
        f.write(new TextEncoder().encode(r + "\n"));
        f.shutdownWrite();
        finish();
      });
    };
    flow.accept();
  }
}

/** Whether any host interface has an IPv6 address (none when the kernel runs with ipv6.disable=1). */
function hostHasIpv6(): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((a) => a.family === "IPv6"));
}
