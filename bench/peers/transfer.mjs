// Fixed-size TCP transfer for the loss rows of the peers benchmark (issue 19): a host server and a guest client.
//
//   node transfer.mjs server PORT BYTES ADDR...   port PORT sends BYTES then closes (download);
//                                                  port PORT+1 counts bytes until EOF, answers the count (upload)
//   node transfer.mjs down HOST PORT BYTES         prints {"ms":…,"bytes":…}: connection established to the last byte read
//   node transfer.mjs up HOST PORT BYTES           prints {"ms":…,"bytes":…}: connection established to the server's count
//
// Timed from the established connection, so a lost SYN or SYN-ACK (a 1 s retry for every TCP)
// does not count: the rows compare data transfer under loss.

import net from "node:net";

const [mode, ...rest] = process.argv.slice(2);
const CHUNK = 64 * 1024;

function fail(msg) {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

/** A fixed pseudo-random chunk (not compressible, same every run). */
function pattern() {
  const b = Buffer.allocUnsafe(CHUNK);
  let x = 0x9e3779b9;
  for (let i = 0; i < CHUNK; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Write `total` bytes of the pattern to `sock` with backpressure, then call `done`. */
function pump(sock, total, done) {
  const chunk = pattern();
  let left = total;
  const more = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK);
      left -= n;
      if (!sock.write(n === CHUNK ? chunk : chunk.subarray(0, n))) return void sock.once("drain", more);
    }
    done();
  };
  more();
}

if (mode === "server") {
  const [port, bytes, ...addrs] = rest;
  const total = Number(bytes);
  for (const a of addrs) {
    net.createServer((s) => {
      s.on("error", () => {});
      pump(s, total, () => s.end());
    }).listen(Number(port), a);
    net.createServer({ allowHalfOpen: true }, (s) => {
      let n = 0;
      s.on("error", () => {});
      s.on("data", (d) => (n += d.length));
      s.on("end", () => s.end(String(n)));
    }).listen(Number(port) + 1, a);
  }
} else if (mode === "down" || mode === "up") {
  const [host, port, bytes] = rest;
  const total = Number(bytes);
  let t0 = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
  const s = net.connect({ host, port: Number(port) + (mode === "up" ? 1 : 0), allowHalfOpen: true });
  s.on("error", (e) => fail(`${mode}: ${e.message}`));
  s.on("connect", () => (t0 = process.hrtime.bigint()));
  if (mode === "down") {
    let n = 0;
    s.on("data", (d) => (n += d.length));
    s.on("end", () => {
      if (n !== total) fail(`down: received ${n} of ${total} bytes`);
      console.log(JSON.stringify({ ms: ms(), bytes: n }));
      s.end();
    });
  } else {
    let reply = "";
    s.on("connect", () => pump(s, total, () => s.end()));
    s.on("data", (d) => (reply += d));
    s.on("end", () => {
      if (Number(reply) !== total) fail(`up: server counted ${reply} of ${total} bytes`);
      console.log(JSON.stringify({ ms: ms(), bytes: total }));
    });
  }
} else {
  fail("usage: transfer.mjs server PORT BYTES ADDR... | down HOST PORT BYTES | up HOST PORT BYTES");
}
