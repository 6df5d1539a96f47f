/**
 * Issue 19 end to end: a Linux kernel guest in a namespace behind a TAP device, served by the
 * assembled network (`Network`, as `skiff run` builds it: a static lease for the guest's MAC).
 * The guest reaches the host through 192.168.65.2 from its own address; from a second address
 * it adds by hand (not leased to it) nothing reaches the host (source validation); with host
 * loopback off, a connection to 192.168.65.2 fails at once (administratively prohibited) and
 * nothing is dialled.
 */
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import { pino } from "pino";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkServices as Network } from "../../src/network/services.js";
import { parseIpv4Address, parseMac } from "../../src/common/addr.js";

const MAC = "52:54:00:12:34:56";

async function guest(hostIp?: string): Promise<{ net: Network; ns: Netns; tap: TapChannel; close(): Promise<void> }> {
  const net = new Network({ mtu: 1500, hostIp, log: pino({ level: "silent" }), staticLeases: [{ mac: parseMac(MAC)!, ip: parseIpv4Address("192.168.65.3")! }] });
  const ns = await createNetns("skiff-e2e-iso");
  const tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu: 1500 });
  net.stack.attach(tap);
  for (const cmd of [
    ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    ["ip", "link", "set", "sk0", "address", MAC, "up"],
    ["ip", "addr", "add", "192.168.65.3/24", "dev", "sk0"],
    ["ip", "route", "add", "default", "via", "192.168.65.1"],
  ]) {
    const r = await ns.exec(cmd);
    expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
  }
  return {
    net,
    ns,
    tap,
    close: async () => {
      net.close();
      tap.close();
      await ns.destroy();
    },
  };
}

describe("e2e: isolation of a kernel guest (source validation, host loopback off)", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);
  let server: Server;
  let port = 0;
  let requests = 0;

  before(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.end("hello\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  it("curl from the guest's own address reaches the host; from a hand-added address nothing does", async () => {
    const g = await guest();
    try {
      const ok = await g.ns.exec(["curl", "-sS", "--max-time", "10", `http://192.168.65.2:${port}/`]);
      expect(ok.code, ok.stderr).to.equal(0);
      expect(ok.stdout).to.equal("hello\n");
      expect(requests).to.equal(1);
      expect((await g.ns.exec(["ip", "addr", "add", "192.168.65.50/24", "dev", "sk0"])).code).to.equal(0);
      const spoofed = await g.ns.exec(["curl", "-sS", "--max-time", "3", "--interface", "192.168.65.50", `http://192.168.65.2:${port}/`]);
      expect(spoofed.code, "curl from an address not leased to the guest").to.not.equal(0);
      expect(requests).to.equal(1);
      expect(g.net.stack.counters.dropped("src-not-bound")).to.be.greaterThan(0);
      expect(g.net.tcpTranslator.counters.dials).to.equal(1);
    } finally {
      await g.close();
    }
  });

  it("with host loopback off, curl to 192.168.65.2 fails at once and nothing is dialled", async () => {
    const g = await guest("0.0.0.0");
    try {
      // The gateway does not answer ARP for the alias when it is off; a guest that sends to it
      // anyway (a static neighbour entry: the raw SYN to .2) is refused at once.
      expect((await g.ns.exec(["ip", "neigh", "replace", "192.168.65.2", "lladdr", "02:50:00:00:00:01", "dev", "sk0"])).code).to.equal(0);
      const t0 = Date.now();
      const r = await g.ns.exec(["curl", "-sS", "--max-time", "10", `http://192.168.65.2:${port}/`]);
      expect(r.code).to.not.equal(0);
      expect(Date.now() - t0, "fails fast (ICMP administratively prohibited)").to.be.below(2000);
      expect(g.net.tcpTranslator.counters.dials).to.equal(0);
      expect(g.net.tcpTranslator.counters.denied).to.be.greaterThan(0);
      expect(requests).to.equal(1);
    } finally {
      await g.close();
    }
  });
});
