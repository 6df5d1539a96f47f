/**
 * The front door (src/network/network.ts): options checked before anything is opened, with one
 * error naming the option; a guest on a memory link gets DHCP answers; forwards, leases and
 * stats; failures after start arrive as events; close() releases everything (the process exits
 * by itself) and is idempotent.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { createNetwork, Network, NetworkWarning } from "../../src/network/network.js";
import { NetworkOptionError, resolveNetworkOptions, type NetworkOptions } from "../../src/network/options.js";
import { memoryPair } from "../../src/link/memory.js";
import { dhcpFrame, describe as describeFrame } from "../support/frames.js";
import type { FileSinkIo } from "../../src/pcap/file-sink.js";
import { root } from "../support/cli.js";

const MAC = 0x5254_0012_3456;

describe("network: createNetwork, the front door", () => {
  const bad: Array<[string, NetworkOptions | Record<string, unknown>]> = [
    ["mtu", { mtu: 100 }],
    ["subnet", { subnet: "10.0.0.0/33" }],
    ["hostIp", { hostIp: "nope" }],
    ["deny[1]", { deny: ["10.0.0.0/8", "x"] }],
    ["dnsRecords[0]", { dnsRecords: ["foo"] }],
    ["staticLeases[0].mac", { staticLeases: [{ mac: "zz", ip: "192.168.65.9" }] }],
    ["limits.udpFlows", { limits: { udpFlows: 0 } }],
    ["limits.tcpFlowz", { limits: { tcpFlowz: 1 } }],
    ["limits.shareWatchDirs", { limits: { shareWatchDirs: 0 } }],
    ["apiLimits.maxConnections", { apiLimits: { maxConnections: -1 } }],
    ["busyPollUs", { busyPollUs: 1.5 }],
    ["switch", { switch: "yes" }],
    ["mtuu", { mtuu: 1500 }],
  ];
  for (const [option, opts] of bad) {
    it(`a bad ${option} is one NetworkOptionError naming it`, async () => {
      let err: unknown;
      try {
        await createNetwork(opts as NetworkOptions);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(NetworkOptionError);
      expect((err as NetworkOptionError).option).to.equal(option);
      expect((err as Error).message.startsWith(`${option}: `)).to.equal(true);
    });
  }

  it("a guest on a memory link gets a DHCP offer; forward(), leases(), stats(); detached on close", async () => {
    const net = await createNetwork({ staticLeases: [{ mac: "52:54:00:00:00:09", ip: "192.168.65.9" }] });
    try {
      const [guest, link] = memoryPair();
      const seen: ReturnType<typeof describeFrame>[] = [];
      guest.setReceiver((f) => seen.push(describeFrame(f)));
      const attached: string[] = [];
      const detached: string[] = [];
      net.on("attached", (g) => attached.push(g.name));
      net.on("detached", (g) => detached.push(g.name));
      const g = net.attach(link);
      expect(attached).to.deep.equal([g.name]);
      guest.send(dhcpFrame(MAC, "discover"));
      for (let i = 0; i < 20 && seen.length === 0; i++) await new Promise((r) => setImmediate(r));
      expect(JSON.stringify(seen)).to.match(/dhcp/i);
      const fwd = await net.forward({ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: "192.168.65.3", guestPort: 80 });
      expect(fwd.forwards).to.have.length(1);
      expect(fwd.forwards[0]).to.deep.include({ proto: "tcp", hostAddr: "127.0.0.1", guestAddr: "192.168.65.3", guestPort: 80 });
      expect(fwd.forwards[0].hostPort).to.be.greaterThan(0);
      expect(net.forwards()).to.have.length(1);
      await fwd.close();
      expect(net.forwards()).to.have.length(0);
      expect(net.leases()).to.deep.include({ mac: "52:54:00:00:00:09", ip: "192.168.65.9", static: true, expiresInMs: null });
      const stats = net.stats();
      expect(JSON.parse(JSON.stringify(stats))).to.deep.equal(stats);
      expect(stats.attachments.map((a) => a.name)).to.include("switch-stack:a");
      // One stats tree: every group of the services, the forwards and the switch.
      expect(Object.keys(stats)).to.include.members(["attachments", "stack", "tcp", "tcpTranslate", "udpTranslate", "icmpTranslate", "fdBudget", "forwards", "shares", "dhcp", "dns", "switch"]);
      expect(stats.tcp).to.include.keys("segmentsIn", "flowsOpen", "halfOpen");
      expect(stats.dhcp).to.deep.include({ discovers: 1, offers: 1 });
      expect(Object.keys(stats.dns)).to.deep.equal(["service", "resolver", "upstream"]);
      expect(stats.stack.rxFrames).to.be.greaterThan(0);
      expect(stats.ipv6).to.deep.include({ prefix: "fd73:6b69:6666::/64", gateway: "fd73:6b69:6666::1", hostAlias: "fd73:6b69:6666::2", neighbors: [] });
      guest.close();
      for (let i = 0; i < 20 && detached.length === 0; i++) await new Promise((r) => setImmediate(r));
      expect(detached).to.deep.equal([g.name]);
    } finally {
      await net.close();
    }
  });

  it("stats() lists the guest listeners with vmnet's handshake counters", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-net-"));
    const net = new Network();
    try {
      const path = join(dir, "vmnet.sock");
      await net.listenVmnet(path);
      // A client that connects and leaves before its handshake: counted as a drop.
      const c = connect(path);
      await new Promise<void>((r) => c.on("connect", () => r()));
      c.destroy();
      const drops = () => (net.stats().listeners?.[0]?.drops ?? {}) as Record<string, number>;
      for (let i = 0; i < 200 && drops()["closed-during-handshake"] === undefined; i++) await new Promise((r) => setTimeout(r, 5));
      expect(net.stats().listeners).to.deep.equal([{ address: `unix:${path}`, accepted: 1, handshakes: 0, drops: { "closed-during-handshake": 1 } }]);
    } finally {
      await net.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ipv6: false leaves IPv6 out of the stack and the stats; subnet6 is checked", async () => {
    const net = await createNetwork({ ipv6: false });
    try {
      expect(net.stats().ipv6).to.equal(undefined);
    } finally {
      await net.close();
    }
    expect(() => resolveNetworkOptions({ subnet6: "fd00::/56" })).to.throw(/^subnet6: .*\/64/);
  });

  it("a capture's write error is a warning event, not a throw", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-net-"));
    const net = new Network();
    try {
      const warnings: NetworkWarning[] = [];
      net.on("warning", (w) => warnings.push(w));
      const io: FileSinkIo = {
        writev: (_fd, _b, _p, cb) => setImmediate(() => cb(Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" }), 0)),
        writeSync: (_fd, _b, _o, len) => len,
        close: (fd) => closeSync(fd),
      };
      const [guest, link] = memoryPair();
      guest.setReceiver(() => {});
      net.attach(link);
      net.capture.startFile(join(dir, "c.pcap"), { io });
      for (let i = 0; i < 5; i++) net.services.stack.requestArp(0xc0a84103 + i);
      for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setImmediate(r));
      expect(warnings).to.have.length(1);
      expect(warnings[0].source).to.equal("capture");
      expect(warnings[0].message).to.match(/EIO/);
      expect(net.captureStatus()).to.deep.include({ running: false, error: "EIO: i/o error, write" });
    } finally {
      await net.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("close() is idempotent, and methods of a closed network refuse", async () => {
    const net = await createNetwork();
    const a = net.close();
    expect(net.close()).to.equal(a);
    await a;
    expect(() => net.attach(memoryPair()[1])).to.throw(/closed/);
    let err: unknown;
    await net.forward("8080:80").catch((e) => (err = e));
    expect(String(err)).to.match(/closed/);
  });

  it("a script that creates a network, listens, forwards and closes exits by itself", function () {
    this.timeout(20_000);
    const dir = mkdtempSync(join(tmpdir(), "skiff-net-"));
    try {
      const script = [
        'import { createNetwork } from "./src/index.ts";',
        "const net = await createNetwork();",
        `await net.listenQemuStream("unix:${join(dir, "q.sock")}");`,
        `await net.listenApi("${join(dir, "api.sock")}");`,
        'await net.forward({ proto: "udp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: "192.168.65.3", guestPort: 53 });',
        'await net.forward({ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: "192.168.65.3", guestPort: 80 });',
        "await net.close();",
        'console.log("done");',
      ].join("\n");
      const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8", timeout: 8000 });
      expect(out.trim()).to.equal("done");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
