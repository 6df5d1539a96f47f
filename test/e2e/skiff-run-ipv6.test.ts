/**
 * End to end through the built command: `skiff run` gives the command IPv6 by default (its
 * address in fd73:6b69:6666::/64, the default route via the gateway), so `curl -6
 * http://host.internal:PORT/` reaches a server on the host's ::1 through the host alias; with
 * `--no-ipv6` the namespace has no IPv6 and IPv4 still works.
 */
import { expect } from "chai";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import { spawn } from "node:child_process";
import { createConnection, createServer as createNetServer, type AddressInfo } from "node:net";
import { netnsUnavailable } from "../support/netns.js";
import { skiff, root, bin } from "../support/cli.js";

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as { port: number }).port)));
}

describe("e2e: skiff run with IPv6 (built CLI)", function () {
  this.timeout(40_000);
  before(function () {
    const reason = netnsUnavailable(["/dev/net/tun"]);
    if (reason) {
      console.log(`    skipped: skiff run IPv6 e2e: ${reason}`);
      this.skip();
    }
    expect(existsSync(join(root, "dist", "cli.js")), "dist/cli.js is built by `npm ci` (prepare) or `npm run build`").to.equal(true);
  });

  it("skiff run -- curl -6 http://host.internal:PORT/ reaches a server on the host's ::1", async () => {
    const server = createServer((req, res) => res.end(`hello six ${req.url}\n`));
    const port = await listen(server, "::1");
    try {
      const r = await skiff(["run", "--", "curl", "-6", "-sS", "--max-time", "10", `http://host.internal:${port}/x`]);
      expect(r.code, `${r.signal} ${r.stderr} ${r.stdout}`).to.equal(0);
      expect(r.stdout).to.equal("hello six /x\n");
    } finally {
      server.close();
    }
  });

  it("the guest has its SLAAC-form address and pings the gateway and the host alias over IPv6", async () => {
    const r = await skiff(["run", "--", "sh", "-c", "ip -6 addr show scope global && ping -6 -c 2 -i 0.2 -W 2 fd73:6b69:6666::1 && ping -6 -c 2 -i 0.2 -W 2 fd73:6b69:6666::2"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include("fd73:6b69:6666:0:5054:ff:fe65:3/64");
    expect(r.stdout.match(/2 received/g)).to.have.length(2);
  });

  it("a 3,000-byte ping to the gateway is answered in fragments, over IPv6 and IPv4 (the kernel reassembles them)", async () => {
    const r = await skiff(["run", "--", "sh", "-c", "ping -6 -c 1 -W 3 -s 3000 fd73:6b69:6666::1 && ping -c 1 -W 3 -s 3000 192.168.65.1"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout.match(/3008 bytes from/g)).to.have.length(2);
  });

  it("--subnet6 moves the prefix; --no-ipv6 leaves the namespace without IPv6 and IPv4 working", async () => {
    const moved = await skiff(["run", "--subnet6", "fd00:5:6:7::/64", "--", "ping", "-6", "-c", "1", "-W", "2", "fd00:5:6:7::1"]);
    expect(moved.code, moved.stderr).to.equal(0);
    const server = createServer((req, res) => res.end("hello four\n"));
    const port = await listen(server, "127.0.0.1");
    try {
      const t0 = Date.now();
      const r = await skiff(["run", "--no-ipv6", "--", "sh", "-c", `curl -6 -sS --max-time 5 http://[fd73:6b69:6666::2]:${port}/; echo "v6=$?"; curl -sS http://host.internal:${port}/`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/v6=[1-9]/);
      expect(r.stdout).to.include("hello four\n");
      expect(Date.now() - t0).to.be.lessThan(10_000);
    } finally {
      server.close();
    }
  });

  /** `skiff run -p [::1]:PORT:9000 -- sh -c SCRIPT`; what a client of [::1]:PORT reads. */
  async function publishAndRead(script: string): Promise<string> {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, "::1", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const p = spawn(process.execPath, [bin, "run", "-p", `[::1]:${port}:9000`, "--", "sh", "-c", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
    try {
      let got = "";
      const deadline = Date.now() + 15_000;
      while (got === "" && Date.now() < deadline) {
        got = await new Promise<string>((resolve) => {
          const c = createConnection(port, "::1");
          let data = "";
          c.on("data", (d) => (data += d));
          c.once("close", () => resolve(data));
          c.once("error", () => resolve(""));
        });
        if (got === "") await new Promise((r) => setTimeout(r, 100));
      }
      expect(await exited, stderr).to.equal(0);
      return got;
    } finally {
      p.kill("SIGKILL");
    }
  }

  it("-p [::1]:PORT:9000 reaches a guest server on its IPv6 address: the guest sees the IPv6 host alias", async () => {
    const script = `python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s.bind(("::",9000)); s.listen(); c,a=s.accept(); c.send(("peer " + a[0]).encode()); c.close()'`;
    expect(await publishAndRead(script)).to.equal("peer fd73:6b69:6666::2");
  });

  it("-p [::1]:PORT:9000 still reaches a guest server listening on IPv4 only (falls back when refused over IPv6)", async () => {
    const script = `python3 -c 'import socket; s=socket.socket(); s.bind(("",9000)); s.listen(); c,a=s.accept(); c.send(("hi over v6 host side, peer " + a[0]).encode()); c.close()'`;
    expect(await publishAndRead(script)).to.equal("hi over v6 host side, peer 192.168.65.2");
  });
});
