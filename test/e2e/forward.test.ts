/**
 * End to end: port forwarding from the host into a Linux namespace guest served by an
 * in-process skiff stack. Servers in the guest (Python asyncio) are reached from the host only
 * through forwards: each host connection becomes an active open of skiff's TCP engine toward
 * the guest's kernel.
 */
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { createSocket } from "node:dgram";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireNetns } from "../support/netns.js";
import { exchange } from "../support/ports.js";
import { startGuest, startGuestServers, type Guest } from "../support/guest.js";
import { ForwardManager } from "../../src/forward/manager.js";
import type { ForwardSpec } from "../../src/forward/spec.js";

const GUEST_SERVERS = `
import asyncio, hashlib, sys
BLOB = sys.argv[1]
async def sink(r, w):
    h = hashlib.sha256(); n = 0
    while True:
        d = await r.read(1 << 16)
        if not d: break
        h.update(d); n += len(d)
    w.write(f"{n} {h.hexdigest()}\\n".encode()); await w.drain(); w.close()
async def source(r, w):
    with open(BLOB, "rb") as f:
        while True:
            d = f.read(1 << 16)
            if not d: break
            w.write(d); await w.drain()
    w.close()
async def echo(r, w):
    try:
        while True:
            d = await r.read(1 << 16)
            if not d: break
            w.write(d); await w.drain()
    except ConnectionResetError:
        pass
    w.close()
class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr): self.t.sendto(b"echo:" + data, addr)
async def main():
    await asyncio.start_server(sink, "0.0.0.0", 9001)
    await asyncio.start_server(source, "0.0.0.0", 9002)
    await asyncio.start_server(echo, "0.0.0.0", 9003, backlog=1024)
    await asyncio.get_running_loop().create_datagram_endpoint(UdpEcho, local_addr=("0.0.0.0", 9004))
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
`;

const GUEST = "192.168.65.3";

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

function tcp(port: number, spec: Partial<ForwardSpec> = {}): ForwardSpec {
  return { proto: "tcp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: GUEST, guestPort: port, ...spec };
}


/** Free TCP port on 127.0.0.1 (listen on 0, close). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const p = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return p;
}

/**
 * `n` consecutive free ports on 127.0.0.1, below the kernel's ephemeral range (32768+) so that
 * the many client sockets of the other tests cannot take one between the check and the use.
 */
async function freeRange(n: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const servers = [];
    try {
      for (let i = 0; i < n; i++) {
        const srv = createServer();
        servers.push(srv);
        await new Promise<void>((resolve, reject) => {
          srv.once("error", reject);
          srv.listen(base + i, "127.0.0.1", () => resolve());
        });
      }
      return base;
    } catch {
      /* taken: try another base */
    } finally {
      for (const srv of servers) if (srv.listening) await new Promise((r) => srv.close(r));
    }
  }
}

describe("e2e: port forwarding host → guest", function () {
  this.timeout(180_000);
  requireNetns(["/dev/net/tun"]);

  let guest: Guest;
  let fm: ForwardManager;
  let servers: ChildProcess | undefined;
  let dir: string;
  const blob = randomBytes(100 * 1000 * 1000);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-fwd-e2e-"));
    writeFileSync(join(dir, "blob.bin"), blob);
    // With TAP offload: forwarded connections (skiff's active opens) send super-segments too.
    guest = await startGuest("skiff-e2e-fwd", { mtu: 1500, offload: true });
    fm = new ForwardManager(guest.stack, guest.tcp, { connectTimeoutMs: 3000 });
    servers = await startGuestServers(guest, GUEST_SERVERS, [join(dir, "blob.bin")]);
  });

  after(async () => {
    fm?.closeAll();
    servers?.kill("SIGKILL");
    await guest?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the guest has not talked yet: skiff finds it with ARP and connects (echo)", async () => {
    expect(guest.stack.neighbors.lookup(0xc0a84103)).to.equal(undefined);
    const [f] = await fm.add([tcp(9003)]);
    const out = await exchange(f.hostPort, Buffer.from("hello guest\n"));
    expect(out.toString()).to.equal("hello guest\n");
    await fm.remove(f.id);
  });

  it("100 MB host → guest, SHA-256 equal at the guest", async () => {
    const [f] = await fm.add([tcp(9001)]);
    const out = await exchange(f.hostPort, blob);
    expect(out.toString()).to.equal(`${blob.length} ${sha256(blob)}\n`);
    await fm.remove(f.id);
  });

  it("100 MB guest → host, SHA-256 equal at the host", async () => {
    const [f] = await fm.add([tcp(9002)]);
    const out = await exchange(f.hostPort, new Uint8Array(0));
    expect(out.length).to.equal(blob.length);
    expect(sha256(out)).to.equal(sha256(blob));
    await fm.remove(f.id);
  });

  it("500 concurrent forwarded connections all echo their own bytes", async () => {
    const [f] = await fm.add([tcp(9003)]);
    const payloads = Array.from({ length: 500 }, () => randomBytes(4096));
    const outs = await Promise.all(payloads.map((p) => exchange(f.hostPort, p)));
    outs.forEach((o, i) => expect(Buffer.compare(o, payloads[i]), `connection ${i}`).to.equal(0));
    await fm.remove(f.id);
  });

  it("a guest port with no listener resets the host client promptly", async () => {
    const [f] = await fm.add([tcp(9999)]);
    const t0 = Date.now();
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = connect({ host: "127.0.0.1", port: f.hostPort });
      s.on("error", (e) => resolve(e));
      s.on("close", () => resolve(undefined));
    });
    expect(err?.code).to.equal("ECONNRESET");
    expect(Date.now() - t0).to.be.below(1000);
    await fm.remove(f.id);
  });

  it("a host client's RST resets the guest's connection (the flow goes away)", async () => {
    const [f] = await fm.add([tcp(9003)]);
    try {
      // Earlier tests' connections may still be closing: follow this connection's own flow.
      const before = new Set(guest.tcp.all());
      const s: Socket = connect({ host: "127.0.0.1", port: f.hostPort });
      await new Promise((r) => s.on("connect", r));
      s.write("x");
      await new Promise((r) => s.once("data", r));
      const mine = [...guest.tcp.all()].filter((fl) => !before.has(fl) && fl.guestPort === 9003);
      expect(mine).to.have.length(1);
      s.resetAndDestroy();
      const t0 = Date.now();
      while (!mine[0].removed && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
      expect(mine[0].removed, "the guest-side flow is gone").to.equal(true);
    } finally {
      await fm.remove(f.id);
    }
  });

  it("UDP forward: datagrams round-trip, one guest-side port per host client", async () => {
    const [f] = await fm.add([{ proto: "udp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: GUEST, guestPort: 9004 }]);
    const ask = async (msg: string) => {
      const s = createSocket("udp4");
      const got = new Promise<string>((resolve) => s.on("message", (m) => resolve(m.toString())));
      s.send(msg, f.hostPort, "127.0.0.1");
      const r = await Promise.race([got, new Promise<string>((r) => setTimeout(() => r("timeout"), 3000))]);
      s.close();
      return r;
    };
    expect(await ask("one")).to.equal("echo:one");
    expect(await ask("two")).to.equal("echo:two");
    const st = fm.stats().find((x) => x.id === f.id)!.counters as { clientsOpened: number };
    expect(st.clientsOpened).to.equal(2);
    await fm.remove(f.id);
  });

  it("forwards added and removed while traffic flows: open connections finish, new ones are refused", async () => {
    const [a] = await fm.add([tcp(9002)]);
    const transfer = exchange(a.hostPort, new Uint8Array(0));
    const [b] = await fm.add([tcp(9003)]);
    expect((await exchange(b.hostPort, Buffer.from("during"))).toString()).to.equal("during");
    await fm.remove(a.id);
    const refused = await new Promise<string | undefined>((resolve) => {
      const s = connect({ host: "127.0.0.1", port: a.hostPort });
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code));
      s.on("connect", () => resolve("connected"));
    });
    expect(refused).to.equal("ECONNREFUSED");
    const out = await transfer;
    expect(sha256(out)).to.equal(sha256(blob));
    await fm.remove(b.id);
    expect(fm.list()).to.deep.equal([]);
  });

  it("a range with one port in use fails naming the port, and leaves nothing listening", async () => {
    const busy = createServer();
    const base = await freeRange(4);
    await new Promise<void>((r) => busy.listen(base + 2, "127.0.0.1", () => r()));
    try {
      const specs = [0, 1, 2, 3].map((i) => tcp(9003, { hostPort: base + i }));
      let msg = "";
      await fm.add(specs).catch((e: Error) => (msg = e.message));
      expect(msg).to.match(new RegExp(`port ${base + 2} is already in use`));
      expect(fm.list()).to.deep.equal([]);
      // The ports opened before the failure were closed again.
      const again = await fm.add([tcp(9003, { hostPort: base }), tcp(9003, { hostPort: base + 1 })]);
      for (const f of again) await fm.remove(f.id);
    } finally {
      busy.close();
    }
  });

  it("a guest address outside the network is refused", async () => {
    let msg = "";
    await fm.add([tcp(80, { guestAddr: "10.0.0.1" })]).catch((e: Error) => (msg = e.message));
    expect(msg).to.match(/guestAddr: 10\.0\.0\.1 is not a guest address/);
  });
});

describe("e2e: skiff run -p and --api-socket (built CLI)", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);
  const bin = join(import.meta.dirname, "..", "..", "bin", "skiff.js");

  /** Start `skiff run ARGS`; resolves once `ready` (a host-side check) succeeds. */
  function skiffRun(args: string[]): { proc: ChildProcess; exit: Promise<{ code: number | null; stderr: string }> } {
    const proc = spawn(process.execPath, [bin, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    proc.stderr!.on("data", (d) => (stderr += d));
    const exit = new Promise<{ code: number | null; stderr: string }>((r) => proc.on("exit", (code) => r({ code, stderr })));
    return { proc, exit };
  }

  async function fetchText(url: string, ms = 15_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      try {
        const r = await fetch(url);
        return await r.text();
      } catch (e) {
        if (Date.now() - t0 > ms) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  it("-p HOST:GUEST reaches busybox httpd inside from 127.0.0.1:HOST, and the API adds and removes a forward", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-run-p-"));
    writeFileSync(join(dir, "index.html"), "hello from inside\n");
    const hostPort = await freePort();
    const second = await freePort();
    const sock = join(dir, "api.sock");
    const { proc, exit } = skiffRun(["-p", `${hostPort}:8080`, "--api-socket", sock, "--", "busybox", "httpd", "-f", "-p", "8080", "-h", dir]);
    try {
      expect(await fetchText(`http://127.0.0.1:${hostPort}/index.html`)).to.equal("hello from inside\n");
      const add = spawnSyncSkiff(bin, ["forward", "add", `${second}:8080`, "--api-socket", sock]);
      expect(add.status, add.stderr).to.equal(0);
      expect(add.stdout).to.match(new RegExp(`127\\.0\\.0\\.1:${second}\\s+->\\s+192\\.168\\.65\\.3:8080`));
      expect(await fetchText(`http://127.0.0.1:${second}/index.html`)).to.equal("hello from inside\n");
      // On [::1] the forward goes to the guest's IPv6 address (IPv4 if refused there).
      const third = await freePort();
      const add6 = spawnSyncSkiff(bin, ["forward", "add", `[::1]:${third}:8080`, "--api-socket", sock]);
      expect(add6.status, add6.stderr).to.equal(0);
      expect(add6.stdout).to.match(new RegExp(`\\[::1\\]:${third}\\s+->\\s+\\[fd73:6b69:6666:0:5054:ff:fe65:3\\]:8080 \\(or 192\\.168\\.65\\.3:8080\\)`));
      expect(await fetchText(`http://[::1]:${third}/index.html`)).to.equal("hello from inside\n");
      const ls = spawnSyncSkiff(bin, ["forward", "ls", "--json", "--api-socket", sock]);
      const list = JSON.parse(ls.stdout) as Array<{ id: string; hostPort: number }>;
      expect(list.map((f) => f.hostPort)).to.deep.equal([hostPort, second, third]);
      const rm = spawnSyncSkiff(bin, ["forward", "rm", list[1].id, "--api-socket", sock]);
      expect(rm.status, rm.stderr).to.equal(0);
      const bad = spawnSyncSkiff(bin, ["forward", "add", "99999:1", "--api-socket", sock]);
      expect(bad.status).to.equal(1);
      expect(bad.stderr).to.match(/bad host port "99999"/);
    } finally {
      proc.kill("SIGTERM");
      const r = await exit;
      expect(r.code, r.stderr).to.equal(143);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a -p port already in use fails at start, naming the port", async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const { exit } = skiffRun(["-p", `${port}:80`, "--", "true"]);
      const r = await exit;
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(new RegExp(`port ${port} is already in use`));
    } finally {
      busy.close();
    }
  });
});

function spawnSyncSkiff(bin: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
