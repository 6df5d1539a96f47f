// Idle TCP connections for the peers benchmark's RSS figure. `node hold.mjs server PORT ADDR...` accepts connections on each address and holds them; `node hold.mjs client ADDR PORT N` opens N connections (at most 256 in progress at once), prints a JSON progress line every second and a final one with "done": true, then holds them until killed.
import net from "node:net";

const [mode, ...args] = process.argv.slice(2);

if (mode === "server") {
  const [port, ...addrs] = args;
  const held = new Set();
  for (const host of addrs) {
    const srv = net.createServer((s) => {
      held.add(s);
      s.on("error", () => {});
      s.on("end", () => s.destroy());
      s.on("close", () => held.delete(s));
    });
    srv.on("error", (e) => {
      console.error(`hold server ${host}:${port}: ${e.message}`);
      process.exit(1);
    });
    srv.listen({ port: Number(port), host, backlog: 4096 }, () => console.log(`listening ${host}:${port}`));
  }
} else if (mode === "client") {
  const [host, port, nStr] = args;
  const n = Number(nStr);
  const socks = [];
  let opened = 0;
  let errors = 0;
  let firstError = "";
  let started = 0;
  const t0 = Date.now();
  const report = (done) =>
    console.log(JSON.stringify({ opened, errors, firstError, done, ms: Date.now() - t0 }));
  const next = () => {
    if (started >= n) return;
    started++;
    const s = net.connect({ host, port: Number(port) });
    socks.push(s);
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      if (opened + errors === n) {
        clearInterval(tick);
        report(true);
      } else next();
    };
    s.once("connect", () => {
      opened++;
      settle();
    });
    s.on("error", (e) => {
      if (!settled) {
        errors++;
        firstError ||= e.message;
      }
      settle();
    });
  };
  const tick = setInterval(() => report(false), 1000);
  for (let i = 0; i < Math.min(256, n); i++) next();
  process.on("SIGTERM", () => process.exit(0));
} else {
  console.error("usage: hold.mjs server PORT ADDR... | client ADDR PORT N");
  process.exit(2);
}
