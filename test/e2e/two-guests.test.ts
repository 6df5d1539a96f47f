/**
 * End to end: two Linux kernel guests on one skiff network (issue 5). Each namespace has a
 * TAP device attached to the gateway stack's learning switch (`attachSwitch`), and configures
 * itself from skiff's DHCP service with busybox udhcpc. The guests reach the gateway, each
 * other directly (ping, a 20 MB TCP transfer: frames go guest → switch → guest, never through
 * the stack), and the host through 192.168.65.2.
 */
import { expect } from "chai";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { dhcpConfigure } from "../support/udhcpc.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkServices as Network } from "../../src/network/services.js";
import { attachSwitchDetailed, type SwitchedStack } from "../../src/stack/switched.js";
import type { SwitchPort } from "../../src/ethernet/switch.js";
import { formatIpv4, parseMac } from "../../src/common/addr.js";

interface TestGuest {
  ns: Netns;
  tap: TapChannel;
  port: SwitchPort;
  mac: string;
  /** Address leased by skiff's DHCP (read from the interface after udhcpc). */
  ip: string;
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

describe("e2e: two kernel guests on one skiff network (switch + gateway)", function () {
  this.timeout(120_000);
  requireNetns(["/dev/net/tun"]);

  const MTU = 1500;
  let net: Network;
  let switched: SwitchedStack;
  const guests: TestGuest[] = [];
  let dir: string;
  let http: HttpServer;
  let httpPort: number;

  async function addGuest(mac: string): Promise<TestGuest> {
    const ns = await createNetns("skiff-e2e-2g");
    const tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu: MTU });
    const port = switched.sw.addPort(tap);
    const g: TestGuest = { ns, tap, port, mac, ip: "" };
    guests.push(g);
    for (const cmd of [
      ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
      ["ip", "link", "set", "sk0", "address", mac, "mtu", String(MTU), "up"],
    ]) {
      const r = await ns.exec(cmd);
      expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
    }
    g.ip = await dhcpConfigure(ns, "sk0", dir);
    return g;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-e2e-2g-"));
    http = createHttpServer((_req, res) => res.end("hello from the host\n"));
    httpPort = await new Promise<number>((resolve) =>
      http.listen(0, "127.0.0.1", () => resolve((http.address() as { port: number }).port)),
    );
    net = new Network({ mtu: MTU, log: pino({ level: "silent" }) });
    switched = attachSwitchDetailed(net.stack);
    await addGuest("52:54:00:5a:00:0a");
    await addGuest("52:54:00:5a:00:0b");
  });

  after(async () => {
    net?.close();
    for (const g of guests) {
      g.tap.close();
      await g.ns.destroy();
    }
    http?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("each guest has its own DHCP lease, recorded by skiff for its MAC", () => {
    const [a, b] = guests;
    expect(a.ip).to.not.equal(b.ip);
    const leases = net.dhcp
      .leases()
      .map((l) => [formatIpv4(l.ip), l.mac])
      .sort();
    expect(leases).to.deep.equal(
      [
        [a.ip, parseMac(a.mac)],
        [b.ip, parseMac(b.mac)],
      ].sort(),
    );
  });

  it("each guest pings the gateway 192.168.65.1", async () => {
    for (const g of guests) {
      const r = await g.ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.65.1"]);
      expect(r.code, `${g.ip}: ${r.stdout}${r.stderr}`).to.equal(0);
    }
  });

  it("guest A pings guest B directly: the echo frames are switched between their ports, the stack sees none", async () => {
    const [a, b] = guests;
    // Warm up: ARP between the guests (broadcast, flooded — the stack sees the request too).
    const warm = await a.ns.exec(["ping", "-c", "1", "-W", "2", b.ip]);
    expect(warm.code, warm.stdout + warm.stderr).to.equal(0);
    const stackRx0 = net.stack.counters.rxFrames;
    const toStack0 = switched.stackSwitchPort.counters.txFrames;
    const unicast0 = switched.sw.counters.unicast;
    const toB0 = b.port.counters.txFrames;
    const toA0 = a.port.counters.txFrames;
    const n = 5;
    const r = await a.ns.exec(["ping", "-c", String(n), "-i", "0.2", "-W", "2", b.ip]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${n} received`);
    // Requests reached B's port and replies A's port, as known unicast.
    expect(b.port.counters.txFrames - toB0, "frames switched to B").to.be.at.least(n);
    expect(a.port.counters.txFrames - toA0, "frames switched to A").to.be.at.least(n);
    expect(switched.sw.counters.unicast - unicast0, "known-unicast frames").to.be.at.least(2 * n);
    // None of them went to the gateway.
    // 10 echo frames crossed; none went through the gateway (a stray ARP broadcast may).
    expect(switched.stackSwitchPort.counters.txFrames - toStack0, "frames switched to the stack").to.be.at.most(2);
    expect(net.stack.counters.rxFrames - stackRx0, "frames the stack received").to.be.at.most(2);
  });

  it("a 20 MB TCP transfer from guest A to a server in guest B, SHA-256 equal", async () => {
    const [a, b] = guests;
    const data = randomBytes(20 * 1000 * 1000);
    writeFileSync(join(dir, "upload.bin"), data);
    const server = [
      "import socket, hashlib",
      "l = socket.socket()",
      "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
      "l.bind(('0.0.0.0', 5000))",
      "l.listen(1)",
      "l.settimeout(30)",
      "print('listening', flush=True)",
      "s, _ = l.accept()",
      "h = hashlib.sha256()",
      "n = 0",
      "while True:",
      "    d = s.recv(1 << 20)",
      "    if not d: break",
      "    h.update(d)",
      "    n += len(d)",
      "s.sendall(('%d %s\\n' % (n, h.hexdigest())).encode())",
      "s.close()",
      "print(n)",
    ].join("\n");
    const serverRun = b.ns.exec(["python3", "-c", server], 60_000);
    const client = [
      "import socket, time",
      "for i in range(100):",
      "    try:",
      `        s = socket.create_connection(("${b.ip}", 5000), timeout=5)`,
      "        break",
      "    except ConnectionRefusedError:",
      "        time.sleep(0.05)",
      "s.settimeout(30)",
      `f = open("${join(dir, "upload.bin")}", "rb")`,
      "while True:",
      "    d = f.read(1 << 20)",
      "    if not d: break",
      "    s.sendall(d)",
      "s.shutdown(socket.SHUT_WR)",
      "print(s.makefile('rb').read().decode().strip())",
    ].join("\n");
    const toStack0 = switched.stackSwitchPort.counters.txFrames;
    const c = await a.ns.exec(["python3", "-c", client], 60_000);
    const s = await serverRun;
    expect(s.code, `server: ${s.stdout}${s.stderr}`).to.equal(0);
    expect(c.code, `client: ${c.stdout}${c.stderr}`).to.equal(0);
    expect(c.stdout.trim()).to.equal(`${data.length} ${sha256(data)}`);
    // Guest-to-guest TCP is switched, not translated: the gateway's TCP layer saw no flow and
    // at most a stray ARP reached the stack.
    expect(net.tcpTranslator.counters.open).to.equal(0);
    expect(switched.stackSwitchPort.counters.txFrames - toStack0, "frames switched to the stack").to.be.at.most(2);
  });

  it("both guests reach a host server through 192.168.65.2", async () => {
    for (const g of guests) {
      const r = await g.ns.exec(["curl", "-sS", "--max-time", "10", `http://192.168.65.2:${httpPort}/`], 20_000);
      expect(r.code, `${g.ip}: ${r.stderr}`).to.equal(0);
      expect(r.stdout).to.equal("hello from the host\n");
    }
  });
});
