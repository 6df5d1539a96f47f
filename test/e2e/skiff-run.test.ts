/**
 * End to end through the built command (`bin/skiff.js`, as `npx skiff` runs it): `skiff run`
 * gives a command a private namespace served by skiff, passes its exit status through, and
 * leaves no namespace behind.
 */
import { expect } from "chai";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { existsSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer, createConnection, type AddressInfo, type Socket } from "node:net";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { until } from "../support/wait.js";
import { netnsUnavailable } from "../support/netns.js";
import { skiff, skiffNamespaces, root, bin } from "../support/cli.js";

/** A TCP port of 127.0.0.1 free a moment ago. */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe("e2e: skiff run (built CLI)", function () {
  this.timeout(40_000);
  before(function () {
    const reason = netnsUnavailable(["/dev/net/tun"]);
    if (reason) {
      console.log(`    skipped: skiff run e2e: ${reason}`);
      this.skip();
    }
    expect(existsSync(join(root, "dist", "cli.js")), "dist/cli.js is built by `npm ci` (prepare) or `npm run build`").to.equal(true);
  });

  it("runs ping against the gateway and exits 0", async () => {
    const r = await skiff(["run", "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.65.1"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/2 received/);
  });

  it("curl http://host.internal:PORT/ reaches a host server (DNS, TCP translation, host alias)", async () => {
    const server = createServer((req, res) => res.end(`hello ${req.url}\n`));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await skiff(["run", "--dns-record", "app.test=192.168.65.2", "--", "sh", "-c", `curl -sS http://host.internal:${port}/a && curl -sS http://app.test:${port}/b`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal("hello /a\nhello /b\n");
    } finally {
      server.close();
    }
  });

  it("resolves host.internal with getent, and pings the host's loopback through 192.168.65.2", async () => {
    // `getent ahosts` lists every address: with IPv6 on (the default) the AAAA comes first.
    const r = await skiff(["run", "--", "sh", "-c", "getent ahosts host.internal && ping -c 2 -i 0.2 -W 2 192.168.65.2"]);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/^fd73:6b69:6666::2\s+STREAM host\.internal/m);
    expect(r.stdout).to.match(/^192\.168\.65\.2\s+STREAM/m);
    expect(r.stdout).to.match(/2 received/);
  });

  it("passes the command's exit status through", async () => {
    const r = await skiff(["run", "--", "sh", "-c", "exit 7"]);
    expect(r.code).to.equal(7);
  });

  it("configures the guest interface with the MTU asked for", async () => {
    const r = await skiff(["run", "--mtu", "9000", "--", "ip", "-o", "addr", "show", "tap0"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/192\.168\.65\.3\/24/);
    const link = await skiff(["run", "--mtu", "9000", "--", "cat", "/sys/class/net/tap0/mtu"]);
    expect(link.stdout.trim()).to.equal("9000");
  });

  it("takes the TAP device's largest MTU, 65521 (the one range of every command)", async () => {
    const r = await skiff(["run", "--mtu", "65521", "--", "cat", "/sys/class/net/tap0/mtu"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal("65521");
  });

  it("the control API's GET /leases shows the guest's address and MAC while CMD runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-leases-"));
    const api = join(dir, "api.sock");
    try {
      // Unix sockets are files: CMD reaches the API from inside its namespace.
      const r = await skiff(["run", "--api-socket", api, "--", "curl", "-sS", "--unix-socket", api, "http://skiff/leases"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout)).to.deep.equal([{ mac: "52:54:00:65:00:03", ip: "192.168.65.3", static: true, expiresInMs: null }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("cleans up its namespace when stopped with SIGTERM", async () => {
    // Only this process's namespace is watched: other skiff processes may run meanwhile.
    const p = spawn(process.execPath, [bin, "run", "--", "sleep", "30"], { stdio: "ignore" });
    // Wait for its namespace to appear, then stop it.
    const t0 = Date.now();
    while (skiffNamespaces(p.pid).length === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(skiffNamespaces(p.pid).length).to.equal(1);
    p.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
    expect(code).to.equal(143);
    expect(skiffNamespaces(p.pid)).to.deep.equal([]);
    // …and the per-namespace /etc files it wrote for `ip netns exec`.
    const etc = existsSync("/etc/netns") ? readdirSync("/etc/netns").filter((n) => n.startsWith(`skiff-${p.pid}-`)) : [];
    expect(etc).to.deep.equal([]);
  });

  it("kills a command that ignores SIGTERM after the grace period, and still cleans up", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-trap-"));
    const trapped = join(dir, "trapped");
    const p = spawn(process.execPath, [bin, "run", "--", "sh", "-c", `trap '' TERM; touch ${trapped}; sleep 31.5; true`], { stdio: "ignore" });
    const exited = new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
    try {
      // SIGTERM only once sh has installed its trap (a fixed wait was sometimes too short: sh died of it, 143).
      await until(() => existsSync(trapped) || p.exitCode !== null, 15_000, "the command's trap installed");
      const sent = Date.now();
      p.kill("SIGTERM");
      expect(await exited).to.equal(137); // 128 + SIGKILL
      expect(Date.now() - sent).to.be.within(4000, 9000);
      expect(skiffNamespaces(p.pid)).to.deep.equal([]);
      // No process is left behind in the namespace (sh's child `sleep` included).
      const left = spawnSync("pgrep", ["-f", "sleep 31.5"], { encoding: "utf8" }).stdout.trim();
      expect(left).to.equal("");
    } finally {
      p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("CMD's exit ends skiff at once although guest flows are open; every host socket closes", async () => {
    // Host peers: a TCP server (counts open connections), a UDP server (sees the guest's datagram).
    const open = new Set<Socket>();
    let accepted = 0;
    const tcpServer = createNetServer((c) => {
      accepted++;
      open.add(c);
      c.on("error", () => {});
      c.on("close", () => open.delete(c));
    });
    await new Promise<void>((r) => tcpServer.listen(0, "127.0.0.1", () => r()));
    const tcpPort = (tcpServer.address() as AddressInfo).port;
    const udpServer = createSocket("udp4");
    let udpSeen = 0;
    udpServer.on("message", () => udpSeen++);
    await new Promise<void>((r) => udpServer.bind(0, "127.0.0.1", () => r()));
    const fwdPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "skiff-exit-"));
    const flag = join(dir, "go");
    const N = 8;
    // CMD leaves background processes holding TCP connections to the host, a UDP flow, a ping
    // and a forwarded connection, then exits 3 once the test says so.
    const script = [
      `for i in $(seq ${N}); do sleep 100 3<>/dev/tcp/192.168.65.2/${tcpPort} & done`,
      `python3 -c 'import socket,time; s=socket.socket(2,2); s.sendto(b"x",("192.168.65.2",${udpServer.address().port})); time.sleep(100)' &`,
      `python3 -c 'import socket,time; s=socket.socket(); s.bind(("",9000)); s.listen(); c,a=s.accept(); c.send(b"hi"); time.sleep(100)' &`,
      "ping -q 192.168.65.2 >/dev/null &",
      `while [ ! -e ${flag} ]; do sleep 0.05; done`,
      "exit 3",
    ].join("\n");
    const p = spawn(process.execPath, [bin, "run", "-p", `127.0.0.1:${fwdPort}:9000`, "--", "bash", "-c", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
    let client: Socket | undefined;
    try {
      await until(() => accepted === N && udpSeen > 0, 15_000, "guest flows to the host");
      // The forwarded connection, once the guest's listener is up.
      let greeted = false;
      const deadline = Date.now() + 10_000;
      while (!greeted && Date.now() < deadline) {
        const c = createConnection(fwdPort, "127.0.0.1");
        greeted = await new Promise<boolean>((r) => {
          c.once("data", () => r(true));
          c.once("close", () => r(false));
          c.once("error", () => r(false));
        });
        if (greeted) client = c;
        else await new Promise((r) => setTimeout(r, 100));
      }
      expect(greeted, "forwarded connection greeted by the guest").to.equal(true);
      const clientClosed = new Promise<void>((r) => client!.once("close", () => r()));
      client!.on("error", () => {});
      const t0 = Date.now();
      writeFileSync(flag, "");
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running after 5 s"), 5000))]);
      const took = Date.now() - t0;
      expect(code, stderr).to.equal(3);
      expect(took, "ms from CMD's exit to skiff's").to.be.below(2000);
      await until(() => open.size === 0, 2000, "the host server's connections closed");
      await clientClosed;
      expect(skiffNamespaces(p.pid)).to.deep.equal([]);
    } finally {
      p.kill("SIGKILL");
      client?.destroy();
      tcpServer.close();
      udpServer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("its one guest has the whole TCP tables: 300 connections in progress at once all open (as the bench's 10,000 idle ones, 256 at a time)", async () => {
    // The per-guest shares of the TCP tables (src/stack/guests.ts: a quarter of each by
    // default, hard caps) keep guests of one network from starving each other; skiff run has
    // one guest, and a quarter of the 256 dials in flight refused its 65th concurrent connect.
    const open = new Set<Socket>();
    const server = createNetServer((c) => {
      open.add(c);
      c.on("error", () => {});
      c.on("close", () => open.delete(c));
    });
    await new Promise<void>((r) => server.listen({ port: 0, host: "127.0.0.1", backlog: 1024 }, () => r()));
    const port = (server.address() as AddressInfo).port;
    const N = 300;
    const client = [
      `const net = require("node:net"); let ok = 0, bad = 0, first = "";`,
      `const done = () => { if (ok + bad === ${N}) { console.log(JSON.stringify({ ok, bad, first })); process.exit(0); } };`,
      `for (let i = 0; i < ${N}; i++) { const s = net.connect(${port}, "192.168.65.2");`,
      `  s.once("connect", () => { ok++; done(); }); s.once("error", (e) => { bad++; first ||= e.message; done(); }); }`,
    ].join("\n");
    try {
      const r = await skiff(["run", "--", process.execPath, "-e", client]);
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).to.deep.equal({ ok: N, bad: 0, first: "" });
    } finally {
      for (const c of open) c.destroy();
      server.close();
    }
  });

  it("rejects a bad option value with a one-line message and exit 2", async () => {
    const r = await skiff(["run", "--mtu", "10", "--", "true"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/--mtu/);
    expect(r.stderr).to.not.match(/\n\s+at /); // no stack trace
  });
});
