/**
 * The control API's connection slots (issue 19): at most `max` connections at once, so a
 * client that opens connections without end cannot take every descriptor; and a cap that slow
 * or idle clients cannot use to lock the others out. At the cap, a new connection takes the
 * place of the oldest one that has no request in progress (still sending its headers, like a
 * slowloris client, or idle between keep-alive requests), which is closed; only when every
 * connection has a request in progress is the new one closed instead. Both are counted.
 * Requests in progress are bounded in time by the server's request timeout.
 */
import type { Socket } from "node:net";
import { Counters } from "../common/counters.js";

export class ApiCounters extends Counters {
  /** Connections open now. */
  connections = 0;
  /** New connections closed at once because `max` connections all had a request in progress. */
  connectionsRefused = 0;
  /** Connections without a request in progress closed to make room for a new one. */
  connectionsEvicted = 0;
}

export class ApiConnections {
  /** Open connections, oldest first; true while a request is in progress. */
  private readonly open = new Map<Socket, boolean>();

  constructor(
    private readonly max: number,
    readonly counters: ApiCounters,
  ) {}

  /** A new connection: admit it (making room if needed) or close it. */
  admit(sock: Socket): void {
    if (this.open.size >= this.max) {
      let victim: Socket | undefined;
      for (const [s, busy] of this.open) {
        if (!busy) {
          victim = s;
          break;
        }
      }
      if (victim === undefined) {
        this.counters.connectionsRefused++;
        sock.destroy();
        return;
      }
      this.counters.connectionsEvicted++;
      this.forget(victim);
      victim.destroy();
    }
    this.open.set(sock, false);
    this.counters.connections++;
    sock.once("close", () => this.forget(sock));
  }

  /** A request's headers arrived on `sock`; `done` is called once its response is over. */
  requestStarted(sock: Socket): () => void {
    if (this.open.has(sock)) this.open.set(sock, true);
    return () => {
      if (this.open.has(sock)) this.open.set(sock, false);
    };
  }

  private forget(sock: Socket): void {
    if (this.open.delete(sock)) this.counters.connections--;
  }
}
