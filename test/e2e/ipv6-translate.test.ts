/**
 * End to end over IPv6: the Linux kernel's TCP and UDP in a namespace reach servers on the
 * host's ::1 through skiff's host alias fd73:6b69:6666::2 (the same TCP engine and socket
 * translation as IPv4), by name through skiff's DNS over IPv6; a closed port is refused at once
 * (RST); a destination the host has no route to fails at once (ICMPv6 destination unreachable,
 * RFC 4443 §3.1); the alias with host loopback off is administratively prohibited. `curl -6`
 * moves 100 MB each way through the alias with SHA-256 equal (issue 18). Plain frames and the TAP
 * offload mode (partial checksums, super-segments toward the guest).
 */
import { expect } from "chai";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { createSocket, type Socket } from "node:dgram";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { answerBodyHash, hashingSink, uploadScript } from "../support/upload.js";
import { createNetns, requireNetns, run, type Netns } from "../support/netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { TcpTranslator } from "../../src/socket-translate/tcp-translator.js";
import { Udp6Translator } from "../../src/socket-translate/udp6-translator.js";
import { createDnsServer, type DnsServer } from "../../src/stack/dns-service.js";

const ALIAS6 = "fd73:6b69:6666::2";
const UNROUTED = "2001:db8:5f::/48";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
/** The `curl -6` transfers each way (issue 18: 100 MB). */
const BIG = 100 * 1000 * 1000;

/** Write `bytes` random bytes to `path` in 1 MB pieces (not all in memory); their SHA-256. */
function randomFile(path: string, bytes: number): string {
  const h = createHash("sha256");
  const fd = openSync(path, "w");
  try {
    for (let left = bytes; left > 0; left -= 1_000_000) {
      const b = randomBytes(Math.min(left, 1_000_000));
      h.update(b);
      writeSync(fd, b);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}
const listen6 = (server: HttpServer | Server): Promise<number> => new Promise((resolve) => server.listen(0, "::1", () => resolve((server.address() as { port: number }).port)));

for (const offload of [false, true]) {
  describe(`e2e: guest TCP and UDP over IPv6 to the host's ::1 through skiff${offload ? " (TAP offload)" : ""}`, function () {
    this.timeout(120_000);
    requireNetns(["/dev/net/tun"]);

    let ns: Netns;
    let stack: NetworkStack;
    let tap: TapChannel;
    let tcp: TcpLayer;
    let translator: TcpTranslator;
    let udp6: Udp6Translator;
    let dns: DnsServer;
    let http: HttpServer;
    let httpPort: number;
    let sink: Server;
    let sinkPort: number;
    let echo: Socket;
    let echoPort: number;
    let dir: string;
    const blob = randomBytes(BIG);
    const upload = randomBytes(32 * 1000 * 1000);
    let bigUploadSha: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "skiff-v6-e2e-"));
      writeFileSync(join(dir, "upload.bin"), upload);
      bigUploadSha = randomFile(join(dir, "big.bin"), BIG);
      http = createHttpServer((req, res) => {
        if (req.method === "PUT" && req.url === "/sink") answerBodyHash(req, res);
        else if (req.url === "/blob") {
          res.writeHead(200, { "content-length": blob.length });
          res.end(blob);
        } else res.end("hello over IPv6\n");
      });
      httpPort = await listen6(http);
      sink = hashingSink();
      sinkPort = await listen6(sink);
      echo = createSocket("udp6");
      echo.on("message", (m, r) => echo.send(Buffer.from(m.toString().toUpperCase()), r.port, r.address));
      await new Promise<void>((resolve) => echo.bind(0, "::1", () => resolve()));
      echoPort = echo.address().port;
      ns = await createNetns("skiff-e2e-v6t");
      stack = new NetworkStack({ mtu: 1500 });
      tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu: 1500, offload });
      stack.attach(tap);
      tcp = new TcpLayer(stack);
      const cfg = stack.config;
      const policy = new AddressPolicy({ hostAliasIp: cfg.hostAliasAddress, hostLoopback: true, guestSubnet: cfg });
      translator = new TcpTranslator(tcp, policy);
      udp6 = new Udp6Translator(stack, policy);
      dns = createDnsServer(stack, { hostsPath: null, servers: [], tcp });
      // Names resolve through skiff's DNS server over IPv6 (`ip netns exec` binds this over /etc/resolv.conf).
      mkdirSync(`/etc/netns/${ns.name}`, { recursive: true });
      writeFileSync(`/etc/netns/${ns.name}/resolv.conf`, "nameserver fd73:6b69:6666::1\n");
      // The host has no route to this documentation prefix: dials to it fail at once, nothing leaves.
      // (`replace`: a run that died before its `after` left the route; `add` failed then, unchecked.)
      const unreachable = await run(["ip", "-6", "route", "replace", "unreachable", UNROUTED]);
      expect(unreachable.code, unreachable.stderr).to.equal(0);
      for (const cmd of [
        ["ip", "link", "set", "sk0", "address", "52:54:00:12:34:56", "up"],
        ["ip", "-6", "addr", "add", "fd73:6b69:6666::3/64", "dev", "sk0", "nodad"],
        ["ip", "-6", "route", "replace", "default", "via", "fe80::50:ff:fe00:1", "dev", "sk0"],
      ]) {
        const r = await ns.exec(cmd);
        expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
      }
    });

    after(async () => {
      await run(["ip", "-6", "route", "del", "unreachable", UNROUTED]);
      dns?.close();
      udp6?.closeAll();
      tcp?.close();
      stack?.close();
      tap?.close();
      if (ns) rmSync(`/etc/netns/${ns.name}`, { recursive: true, force: true });
      await ns?.destroy();
      http?.close();
      sink?.close();
      echo?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("curl -6 http://host.internal:PORT/ reaches a server on the host's ::1 (AAAA over IPv6 DNS)", async () => {
      const r = await ns.exec(["curl", "-6", "-sS", "--max-time", "10", `http://host.internal:${httpPort}/`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal("hello over IPv6\n");
    });

    it("dig +tcp over IPv6: DNS over TCP at the gateway's IPv6 address", async () => {
      const r = await ns.exec(["dig", "+tcp", "+short", "+time=3", "@fd73:6b69:6666::1", "AAAA", "gateway.internal"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal("fd73:6b69:6666::1");
      expect(dns.service.counters.tcpAnswers).to.be.at.least(1);
    });

    it("curl -6 downloads 100 MB from ::1 through the alias, SHA-256 equal", async function () {
      this.timeout(240_000);
      const r = await ns.exec(["sh", "-c", `curl -6 -sS --max-time 180 http://[${ALIAS6}]:${httpPort}/blob | sha256sum`], 200_000);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.split(" ")[0]).to.equal(sha256(blob));
      if (offload) expect(tap.offloadStats.txSuperSegments).to.be.above(10);
    });

    it("curl -6 uploads 100 MB to ::1 through the alias (PUT), SHA-256 equal at the host", async function () {
      this.timeout(240_000);
      const r = await ns.exec(["curl", "-6", "-sS", "--max-time", "180", "-T", join(dir, "big.bin"), `http://[${ALIAS6}]:${httpPort}/sink`], 200_000);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(`${BIG} ${bigUploadSha}`);
    });

    it("uploads 32 MB to a host socket on ::1 with half-close, SHA-256 equal at the host", async () => {
      const script = uploadScript(ALIAS6, sinkPort, join(dir, "upload.bin"));
      const r = await ns.exec(["python3", "-c", script], 90_000);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(`${upload.length} ${sha256(upload)}`);
    });

    it("UDP over IPv6 both ways: a datagram to ::1 through the alias and the answer back from the alias", async () => {
      const script = [
        "import socket",
        "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)",
        "s.settimeout(3)",
        `s.sendto(b"hello six", ("${ALIAS6}", ${echoPort}))`,
        "d, a = s.recvfrom(100)",
        "print(d.decode(), a[0])",
      ].join("\n");
      const r = await ns.exec(["python3", "-c", script]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(`HELLO SIX ${ALIAS6}`);
      expect(udp6.counters.datagramsToHost).to.be.at.least(1);
      expect(udp6.counters.datagramsToGuest).to.be.at.least(1);
    });

    it("a closed port on ::1 is refused at once", async () => {
      const closed = createServer();
      const port = await listen6(closed);
      closed.close();
      // Timed inside the guest around the connect only (Python's start-up on a loaded machine is not the point).
      const py = await ns.exec([
        "python3",
        "-c",
        `import socket, time\nt = time.monotonic()\ntry:\n    socket.create_connection(("${ALIAS6}", ${port}), timeout=5)\nexcept ConnectionRefusedError:\n    print("refused", int((time.monotonic() - t) * 1000))`,
      ]);
      const [word, ms] = py.stdout.trim().split(" ");
      expect(word, py.stderr).to.equal("refused");
      // A lost or unanswered SYN would take at least the 1 s retransmission.
      expect(Number(ms)).to.be.lessThan(1000);
    });

    it("a destination the host has no route to fails at once (ICMPv6 unreachable)", async () => {
      const t0 = Date.now();
      const py = await ns.exec([
        "python3",
        "-c",
        `import socket\ntry:\n    socket.create_connection(("2001:db8:5f::1", 80), timeout=8)\nexcept OSError as e:\n    print(type(e).__name__, e.errno)`,
      ]);
      // EHOSTUNREACH (113) or ENETUNREACH (101), from the ICMPv6 error: not a timeout.
      expect(py.stdout.trim(), py.stderr).to.match(/OSError (113|101)|HostUnreachable|NetworkUnreachable/i);
      expect(Date.now() - t0).to.be.lessThan(3000);
      expect(translator.counters.unreachable).to.be.at.least(1);
    });

    it("an IPv4-compatible destination (::127.0.0.1, past the IPv4 policy) is refused at once (administratively prohibited)", async () => {
      const before = translator.counters.denied;
      const t0 = Date.now();
      const py = await ns.exec(["python3", "-c", `import socket\ntry:\n    socket.create_connection(("::7f00:1", 80), timeout=5)\nexcept OSError as e:\n    print("refused", e.errno)`]);
      // EACCES (13): the kernel's reading of ICMPv6 code 1.
      expect(py.stdout.trim(), py.stderr).to.equal("refused 13");
      expect(Date.now() - t0).to.be.lessThan(3000);
      expect(translator.counters.denied).to.equal(before + 1);
    });
  });
}
