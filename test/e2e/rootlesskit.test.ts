/**
 * End to end: skiff as RootlessKit's `--vpnkit-binary` (reference/vpnkit.md §2.2).
 *
 * 1. With a RootlessKit that has its vpnkit driver: `rootlesskit --net=vpnkit
 *    --vpnkit-binary=<script that execs skiff vpnkit>` runs nslookup host.internal and curls a
 *    10 MB file from a host server through 192.168.65.2 (SHA-256 equal); with
 *    `--disable-host-loopback` (RootlessKit then passes `--host-ip 0.0.0.0`) the same curl fails
 *    fast and the host server sees no request. The binary is `$SKIFF_ROOTLESSKIT`, else
 *    `${XDG_CACHE_HOME:-~/.cache}/skiff/rootlesskit/bin/rootlesskit` if present, else
 *    `rootlesskit` on PATH. Debian's package is built without the vpnkit driver ("not supported
 *    in this Debian package"): the suite then skips, saying so.
 * 2. RootlessKit's vpnkit driver replayed step by step from §2.2 against the same script,
 *    started with exactly RootlessKit's arguments: readiness by Init retries, the parent's
 *    connection (Go v0.5.0 DHCPDISCOVER with zero checksums; the OFFER must satisfy both the
 *    v0.5.0 and v0.6.0 client parsers) left open and never read again, the child's second
 *    connection with the same UUID (same MAC and address) relayed to tap0 in a namespace
 *    configured like RootlessKit's child, then nslookup and curl inside.
 */
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createConnection, type Socket } from "node:net";
import { createServer, type Server } from "node:http";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createNetns, netnsUnavailable, type Netns } from "../support/netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { StreamFrameChannel, VMNET_PREFIX } from "../../src/link/stream-channel.js";
import { formatIpv4, formatMac } from "../../src/common/addr.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "bin", "skiff.js");
const BODY = randomBytes(10 << 20);
const BODY_SHA = createHash("sha256").update(BODY).digest("hex");

/** The `--vpnkit-binary` script; with `argsLog`, it also appends its argv there. */
function makeWrapper(dir: string, argsLog?: string): string {
  const script = join(dir, "vpnkit-skiff");
  const log = argsLog === undefined ? "" : `echo "$*" >>"${argsLog}"\n`;
  writeFileSync(script, `#!/bin/sh\n${log}exec "${process.execPath}" "${bin}" vpnkit "$@" 2>>"${join(dir, "skiff.log")}"\n`);
  chmodSync(script, 0o755);
  return script;
}

async function hostServer(): Promise<{ server: Server; port: number; requests: () => number }> {
  let n = 0;
  const server = createServer((_req, res) => {
    n++;
    res.writeHead(200, { "content-length": BODY.length });
    res.end(BODY);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port, requests: () => n };
}

/** The RootlessKit binary to test, and where it came from. */
function rootlesskitBinary(): { path: string; from: string } {
  const env = process.env.SKIFF_ROOTLESSKIT;
  if (env) return { path: env, from: "$SKIFF_ROOTLESSKIT" };
  const cached = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "skiff", "rootlesskit", "bin", "rootlesskit");
  if (existsSync(cached)) return { path: cached, from: "the cache dir" };
  return { path: "rootlesskit", from: "PATH" };
}

/**
 * RootlessKit maps its user namespace with `newuidmap`/`newgidmap` from the caller's subordinate
 * ids (`getsubids`, else /etc/subuid). Run as root on a machine with no /etc/subuid entry for
 * root, that fails ("No subuid ranges found for user 0"). Rather than edit /etc/subuid, give it
 * (through its own `GETSUBIDS` variable and PATH) a `getsubids` that names 100000-165535 and
 * `newuidmap`/`newgidmap` that, as root may, write /proc/PID/{uid,gid}_map directly in one
 * write. RootlessKit itself is untouched.
 */
function uidMapEnv(dir: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (process.getuid?.() !== 0) return env;
  const hasRoot = (f: string): boolean => existsSync(f) && /^(root|0):/m.test(readFileSync(f, "utf8"));
  if (hasRoot("/etc/subuid") && hasRoot("/etc/subgid")) return env;
  const shim = join(dir, "idmap-shim");
  mkdirSync(shim, { recursive: true });
  writeFileSync(join(shim, "getsubids"), `#!/bin/sh\necho "0: $1 100000 65536"\n`);
  for (const m of ["uid", "gid"]) {
    const js =
      `const [pid, ...a] = process.argv.slice(1); let s = ""; ` +
      `for (let i = 0; i + 2 < a.length; i += 3) s += a[i] + " " + a[i + 1] + " " + a[i + 2] + "\\n"; ` +
      `require("fs").writeFileSync("/proc/" + pid + "/${m}_map", s);`;
    writeFileSync(join(shim, `new${m}map`), `#!/bin/sh\nexec "${process.execPath}" -e '${js}' "$@"\n`);
  }
  for (const f of ["getsubids", "newuidmap", "newgidmap"]) chmodSync(join(shim, f), 0o755);
  env.GETSUBIDS = join(shim, "getsubids");
  env.PATH = `${shim}:${env.PATH ?? ""}`;
  return env;
}

describe("e2e: RootlessKit --net=vpnkit with skiff as its vpnkit", function () {
  this.timeout(120_000);
  let dir: string;
  let script: string;
  let argsLog: string;
  let rk: { path: string; from: string };
  let env: NodeJS.ProcessEnv;
  let http: { server: Server; port: number; requests: () => number };

  before(async function () {
    rk = rootlesskitBinary();
    let reason = netnsUnavailable(["/dev/net/tun"]);
    const ver = spawnSync(rk.path, ["--version"], { encoding: "utf8" });
    if (reason === undefined && ver.status !== 0) {
      reason = `${rk.path} (from ${rk.from}) does not run: ${ver.error?.message ?? ver.stderr.trim()}`;
    }
    dir = mkdtempSync(join(tmpdir(), "skiff-rk-"));
    argsLog = join(dir, "vpnkit-args.log");
    script = makeWrapper(dir, argsLog);
    env = uidMapEnv(dir);
    if (reason === undefined) {
      // Does this build have the vpnkit driver? With it, RootlessKit looks the binary up first
      // (`exec: "...": stat ...: no such file or directory`); Debian's build refuses first.
      const probe = spawnSync(rk.path, ["--net=vpnkit", `--vpnkit-binary=${join(dir, "absent")}`, `--state-dir=${join(dir, "probe")}`, "true"], {
        encoding: "utf8",
        timeout: 30_000,
        env,
      });
      if (/not supported in this Debian package/.test(probe.stderr)) {
        reason =
          `${ver.stdout.trim()} (${rk.path}, from ${rk.from}) is Debian's build, whose --net=vpnkit driver is compiled out ` +
          `("not supported in this Debian package"); set SKIFF_ROOTLESSKIT to a RootlessKit built with it, or put one at ` +
          `~/.cache/skiff/rootlesskit/bin/rootlesskit; the replay suite below covers its protocol`;
      } else if (!probe.stderr.includes(join(dir, "absent"))) {
        throw new Error(`cannot tell whether ${rk.path} has the vpnkit driver: ${probe.stderr.trim()}`);
      }
    }
    if (reason !== undefined) {
      console.log(`    skipped: ${this.test?.parent?.fullTitle()}: ${reason}`);
      this.skip();
    }
    if (!existsSync(join(root, "dist", "cli.js"))) throw new Error("dist/cli.js is missing: run npm run build");
    console.log(`    using ${ver.stdout.trim()} (${rk.path}, from ${rk.from})`);
    http = await hostServer();
  });
  after(() => {
    http?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let run = 0;
  /** `rootlesskit --net=vpnkit ... sh -c CMD`, asynchronously: the host server lives in this process. */
  function rootlesskit(extra: string[], cmd: string): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
    const t0 = Date.now();
    const args = ["--net=vpnkit", `--vpnkit-binary=${script}`, "--copy-up=/etc", `--state-dir=${join(dir, `st-${++run}`)}`, ...extra, "sh", "-c", cmd];
    return new Promise((resolve, reject) => {
      const p = spawn(rk.path, args, { env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => p.kill("SIGKILL"), 90_000);
      p.once("error", reject);
      p.once("close", (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr, ms: Date.now() - t0 });
      });
    });
  }
  const lastArgs = (): string => readFileSync(argsLog, "utf8").trim().split("\n").slice(-1)[0];
  const skiffLog = (): string => (existsSync(join(dir, "skiff.log")) ? readFileSync(join(dir, "skiff.log"), "utf8").slice(-2000) : "");

  it("resolves host.internal and fetches 10 MB from the host through 192.168.65.2", async () => {
    const r = await rootlesskit([], `nslookup host.internal && curl -sS --max-time 60 http://192.168.65.2:${http.port}/ | sha256sum`);
    expect(r.status, r.stderr + skiffLog()).to.equal(0);
    expect(lastArgs()).to.match(/^--ethernet \S+\/vpnkit-ethernet\.sock --mtu 1500$/);
    expect(r.stdout).to.match(/Server:\s+192\.168\.65\.1\b/);
    expect(r.stdout).to.match(/Address: 192\.168\.65\.2/);
    expect(r.stdout).to.contain(BODY_SHA);
  });

  it("with --disable-host-loopback the same curl fails fast and the host sees no request", async () => {
    const before = http.requests();
    const r = await rootlesskit(
      ["--disable-host-loopback"],
      `nslookup gateway.internal && curl -sS --connect-timeout 8 -o /dev/null http://192.168.65.2:${http.port}/; echo curl=$?`,
    );
    expect(r.status, r.stderr + skiffLog()).to.equal(0);
    expect(lastArgs()).to.match(/ --host-ip 0\.0\.0\.0$/);
    expect(r.stdout).to.match(/Address: 192\.168\.65\.1/);
    expect(r.stdout).to.match(/curl=[1-9]/);
    expect(http.requests()).to.equal(before);
    expect(r.ms).to.be.lessThan(30_000);
  });
});

// ---- RootlessKit's vpnkit driver replayed from §2.2 -----------------------------------------

/** A vmnet client as RootlessKit's Go client (vpnkit v0.5.0 go/pkg/vmnet) behaves. */
class GoVmnetClient {
  private buf = Buffer.alloc(0);
  private ended = false;
  private readonly onData = (d: Buffer) => (this.buf = Buffer.concat([this.buf, d]));
  mac = 0;
  constructor(readonly sock: Socket) {
    sock.on("data", this.onData);
    sock.on("close", () => (this.ended = true));
    sock.on("error", () => {});
  }
  static dial(path: string): Promise<GoVmnetClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once("error", reject);
      s.once("connect", () => resolve(new GoVmnetClient(s)));
    });
  }
  async read(n: number, ms = 5000): Promise<Buffer> {
    const t0 = Date.now();
    while (this.buf.length < n) {
      if (this.ended) throw new Error("closed");
      if (Date.now() - t0 > ms) throw new Error(`timeout reading ${n} bytes`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  /** `negotiate`: the 49-byte Init with the Go client's commit; 49 bytes back. */
  async negotiate(): Promise<Buffer> {
    const init = Buffer.alloc(49);
    init.write("VMN3T", 0, "latin1");
    init.writeUInt32LE(22, 5);
    init.write("0123456789012345678901234567890123456789", 9, "latin1");
    this.sock.write(init);
    return this.read(49);
  }
  /** `ConnectVif`: Ethernet command (41 bytes, IP field 0), 1 + 2 + 2 + 6 + 247 bytes back. */
  async connectVif(uuid: string): Promise<void> {
    const cmd = Buffer.alloc(41);
    cmd[0] = 1;
    cmd.write(uuid, 1, "latin1");
    this.sock.write(cmd);
    const r = await this.read(258);
    if (r[0] !== 1) throw new Error(`ConnectVif refused: ${r.subarray(2, 2 + r[1]).toString("latin1")}`);
    this.mac = r.readUIntBE(5, 6);
  }
  /** `Vif.dhcp` of v0.5.0: DISCOVER every second until a frame passes its parser; yiaddr. */
  async dhcp(ms = 10_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      if (Date.now() - t0 > ms) throw new Error("no DHCP offer");
      this.sendFrame(discover(this.mac));
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        let f: Buffer;
        try {
          const h = await this.read(2, until - Date.now());
          f = await this.read(h.readUInt16LE(0), 2000);
        } catch {
          break;
        }
        const offer = parseOffer(f, this.mac);
        if (offer !== undefined) return offer;
      }
    }
  }
  sendFrame(f: Uint8Array): void {
    const b = Buffer.alloc(2 + f.length);
    b.writeUInt16LE(f.length, 0);
    b.set(f, 2);
    this.sock.write(b);
  }
  /** Hand the socket (and any bytes already read) to a frame channel. */
  toChannel(name: string): StreamFrameChannel {
    this.sock.off("data", this.onData);
    this.sock.pause();
    if (this.buf.length > 0) this.sock.unshift(this.buf);
    const ch = new StreamFrameChannel(name, this.sock, VMNET_PREFIX, { mtu: 1500 });
    this.sock.resume();
    return ch;
  }
}

/** The Go client's DHCPDISCOVER (§2.2): zero IPv4 and UDP checksums, id 0x7f61, no parameter list. */
function discover(mac: number): Buffer {
  const bootp = Buffer.alloc(244);
  bootp[0] = 1;
  bootp[1] = 1;
  bootp[2] = 6;
  bootp.set([1, 0, 0, 0], 4); // xid
  bootp.writeUInt16BE(0x8000, 10);
  bootp.writeUIntBE(mac, 28, 6);
  bootp.set([0x63, 0x82, 0x53, 0x63, 53, 1, 1, 255], 236);
  const udpLen = 8 + bootp.length;
  const f = Buffer.alloc(14 + 20 + udpLen);
  f.fill(0xff, 0, 6);
  f.writeUIntBE(mac, 6, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(20 + udpLen, 16);
  f.writeUInt16BE(0x7f61, 18);
  f[22] = 64;
  f[23] = 17;
  f.fill(0xff, 30, 34);
  f.writeUInt16BE(68, 34);
  f.writeUInt16BE(67, 36);
  f.writeUInt16BE(udpLen, 38);
  bootp.copy(f, 42);
  return f;
}

/** Both client parsers (§2.2): v0.5.0's (UDP 67→68, ≥ 243 bytes, bytes 240-242 = 53 1 2) and v0.6.0's. */
function parseOffer(f: Buffer, mac: number): number | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== 0x0800 || f[23] !== 17) return undefined;
  const ihl = (f[14] & 0xf) * 4;
  const udp = 14 + ihl;
  if (f.readUInt16BE(udp) !== 67 || f.readUInt16BE(udp + 2) !== 68) return undefined;
  const p = f.subarray(udp + 8);
  if (p.length < 243 || p[240] !== 53 || p[241] !== 1 || p[242] !== 2) return undefined;
  const dst = f.readUIntBE(0, 6);
  if (dst !== mac && dst !== 0xffff_ffff_ffff) throw new Error(`offer to ${formatMac(dst)} fails v0.6.0's MAC check`);
  if (p[0] !== 2 || p.readUInt32BE(4) !== 0x0100_0000) throw new Error("offer fails v0.6.0's op/xid check");
  return p.readUInt32BE(16);
}

describe("e2e: RootlessKit's vpnkit driver replayed against skiff vpnkit (§2.2)", function () {
  this.timeout(120_000);
  let dir: string;
  let script: string;
  let http: { server: Server; port: number };

  before(async function () {
    const why = netnsUnavailable(["/dev/net/tun"]);
    if (why !== undefined) {
      console.log(`    skipped: ${this.test?.parent?.fullTitle()}: ${why}`);
      this.skip();
    }
    if (!existsSync(join(root, "dist", "cli.js"))) throw new Error("dist/cli.js is missing: run npm run build");
    dir = mkdtempSync(join(tmpdir(), "skiff-rkr-"));
    script = makeWrapper(dir);
    http = await hostServer();
  });
  after(() => {
    http?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function session(disableHostLoopback: boolean, body: (ns: Netns, ip: number) => Promise<void>): Promise<void> {
    const stateDir = mkdtempSync(join(dir, "state-"));
    const sock = join(stateDir, "vpnkit-ethernet.sock");
    // 1. Process: exactly RootlessKit's command line.
    const args = ["--ethernet", sock, "--mtu", "1500", ...(disableHostLoopback ? ["--host-ip", "0.0.0.0"] : [])];
    const proc: ChildProcess = spawn(script, args, { stdio: "ignore" });
    let parent: GoVmnetClient | undefined;
    let child: GoVmnetClient | undefined;
    let ns: Netns | undefined;
    let tap: TapChannel | undefined;
    let vif: StreamFrameChannel | undefined;
    try {
      // 2. Readiness: dial and negotiate, retried for up to 10 s.
      const t0 = Date.now();
      for (;;) {
        try {
          parent = await GoVmnetClient.dial(sock);
          const reply = await parent.negotiate();
          expect(reply.subarray(0, 5).toString("latin1")).to.equal("VMN3T");
          break;
        } catch (e) {
          parent?.sock.destroy();
          parent = undefined;
          if (Date.now() - t0 > 10_000) throw new Error(`skiff vpnkit not ready in 10 s: ${(e as Error).message}\n${readFileSync(join(dir, "skiff.log"), "utf8").slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      // 3. Parent ConnectVif + DHCP; the connection then stays open and is never read again.
      const uuid = randomUUID();
      await parent.connectVif(uuid);
      const ip = await parent.dhcp();
      expect(ip >>> 8).to.equal(0xc0a841); // 192.168.65.x
      parent.sock.pause();
      // 5. Child: tap0 in a namespace, a second connection with the same UUID → same MAC and IP.
      ns = await createNetns("skiff-rkr");
      tap = TapChannel.open({ name: "tap0", netns: ns.path, mtu: 1500 });
      child = await GoVmnetClient.dial(sock);
      await child.negotiate();
      await child.connectVif(uuid);
      expect(child.mac).to.equal(parent.mac);
      expect(await child.dhcp()).to.equal(ip);
      vif = child.toChannel("rootlesskit-child");
      const t = tap;
      const v = vif;
      t.setReceiver((f) => v.send(f));
      v.setReceiver((f) => t.send(f));
      for (const cmd of [
        ["ip", "link", "set", "tap0", "address", formatMac(child.mac)],
        ["ip", "link", "set", "tap0", "up"],
        ["ip", "link", "set", "dev", "tap0", "mtu", "1500"],
        ["ip", "addr", "add", `${formatIpv4(ip)}/24`, "dev", "tap0"],
        ["ip", "route", "add", "default", "via", "192.168.65.1", "dev", "tap0"],
      ]) {
        const r = await ns.exec(cmd);
        if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
      }
      await body(ns, ip);
    } finally {
      vif?.close();
      tap?.close();
      child?.sock.destroy();
      parent?.sock.destroy();
      await ns?.destroy();
      // RootlessKit's cleanup is a SIGKILL; SIGTERM here also checks the socket is removed.
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
      expect(existsSync(sock), "socket removed on exit").to.equal(false);
    }
  }

  it("nslookup host.internal and a 10 MB curl through 192.168.65.2 (SHA-256 equal)", async () => {
    await session(false, async (ns) => {
      const dns = await ns.exec(["nslookup", "host.internal", "192.168.65.1"]);
      expect(dns.code, dns.stderr + dns.stdout).to.equal(0);
      expect(dns.stdout).to.match(/Address: 192\.168\.65\.2/);
      const out = join(dir, "body");
      const c = await ns.exec(["curl", "-sS", "--max-time", "60", "-o", out, `http://192.168.65.2:${http.port}/`], 70_000);
      expect(c.code, c.stderr).to.equal(0);
      expect(createHash("sha256").update(readFileSync(out)).digest("hex")).to.equal(BODY_SHA);
    });
  });

  it("with --host-ip 0.0.0.0 (RootlessKit's --disable-host-loopback) the curl fails fast", async () => {
    await session(true, async (ns) => {
      const t0 = Date.now();
      const c = await ns.exec(["curl", "-sS", "--connect-timeout", "8", "-o", "/dev/null", `http://192.168.65.2:${http.port}/`], 20_000);
      expect(c.code).to.not.equal(0);
      expect(Date.now() - t0).to.be.lessThan(9_000);
      // DNS on the gateway still works.
      const dns = await ns.exec(["nslookup", "gateway.internal", "192.168.65.1"]);
      expect(dns.code, dns.stderr + dns.stdout).to.equal(0);
    });
  });
});
