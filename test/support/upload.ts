/**
 * Both ends of the end-to-end upload tests: a TCP sink on the host that hashes what it receives
 * until the client half-closes and answers "<bytes> <sha256>", and a Python client for the guest
 * that connects to `host`:`port` (IPv4 or IPv6), sends a file in 1 MiB writes, half-closes, and
 * prints the answer; and the same answer for an HTTP request's body (`curl -T`, POST).
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:net";

/** Hash an HTTP request's body as it arrives; answer "<bytes> <sha256>". */
export function answerBodyHash(req: IncomingMessage, res: ServerResponse): void {
  const h = createHash("sha256");
  let n = 0;
  req.on("data", (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  req.on("end", () => res.end(`${n} ${h.digest("hex")}\n`));
}

/** The hashing sink (not listening yet). */
export function hashingSink(): Server {
  return createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash("sha256");
    let n = 0;
    s.on("data", (d) => {
      h.update(d);
      n += d.length;
    });
    s.on("end", () => s.end(`${n} ${h.digest("hex")}\n`));
  });
}

export function uploadScript(host: string, port: number, file: string): string {
  return [
    "import socket",
    `s = socket.create_connection(("${host}", ${port}))`,
    `f = open("${file}", "rb")`,
    "while True:",
    "    b = f.read(1 << 20)",
    "    if not b: break",
    "    s.sendall(b)",
    "s.shutdown(socket.SHUT_WR)",
    "r = b''",
    "while True:",
    "    d = s.recv(4096)",
    "    if not d: break",
    "    r += d",
    "print(r.decode().strip())",
  ].join("\n");
}
