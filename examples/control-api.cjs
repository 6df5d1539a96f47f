// A network with the control API (CommonJS): skiff serves HTTP+JSON on a Unix socket (mode
// 0600) for forwards, leases, DNS records, stats and capture, the same API `skiff serve
// --api-socket` serves. Here the script is its own client. Run: node examples/control-api.cjs
const { createNetwork, apiRequest } = require("skiff");
const { mkdtempSync, rmSync } = require("node:fs");
const { tmpdir } = require("node:os");
const { join } = require("node:path");

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "skiff-example-"));
  const net = await createNetwork({ apiLimits: { maxConnections: 8 } });
  net.on("warning", (w) => console.error(`warning (${w.source}): ${w.message}`));
  try {
    const sock = join(dir, "api.sock");
    await net.listenApi(sock);
    // A forward from the host's 127.0.0.1, any free port, to port 80 of the first guest.
    const added = await apiRequest(sock, "POST", "/forwards", { hostPort: 0, guestPort: 80 });
    console.log(`POST /forwards ${added.status} -> ${added.body.guestAddr}:${added.body.guestPort}`);
    const dns = await apiRequest(sock, "POST", "/dns/records", { name: "db.internal", ip: "192.168.65.9" });
    console.log(`POST /dns/records ${dns.status}`);
    const list = await apiRequest(sock, "GET", "/forwards");
    console.log(`GET /forwards ${list.body.length} forward(s); net.forwards() ${net.forwards().length}`);
    const stats = await apiRequest(sock, "GET", "/stats");
    console.log(`GET /stats keys ${Object.keys(stats.body).sort().join(",")}`);
  } finally {
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
