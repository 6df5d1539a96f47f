/** Ports free on 127.0.0.1 right now, for tests that listen on (or publish) them soon after. */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

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
