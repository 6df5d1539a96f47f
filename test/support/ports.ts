/** Ports free on 127.0.0.1 right now, for tests that listen on (or publish) them soon after. */
import { createSocket } from "node:dgram";
import { connect, createServer } from "node:net";

/** A TCP (or UDP) port free on 127.0.0.1 right now (closed again; the caller uses it soon after). */
export function freePort(kind: "tcp" | "udp" = "tcp"): Promise<number> {
  if (kind === "udp") {
    return new Promise((resolve, reject) => {
      const s = createSocket("udp4");
      s.once("error", reject);
      s.bind(0, "127.0.0.1", () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Connect to `host:port`, send `data` (then half-close unless told not to), collect everything
 * until the server closes: one request/response exchange through a forward.
 */
export function exchange(port: number, data: Uint8Array, opts: { host?: string; halfClose?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: opts.host ?? "127.0.0.1", port, allowHalfOpen: true });
    const got: Buffer[] = [];
    s.on("data", (d) => got.push(d));
    s.on("error", reject);
    s.on("end", () => {
      s.end();
      resolve(Buffer.concat(got));
    });
    s.on("connect", () => {
      s.write(data);
      if (opts.halfClose ?? true) s.end();
    });
  });
}
