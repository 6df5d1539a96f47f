/**
 * End to end with the Linux kernel as the guest: a network namespace whose only interface is
 * a TAP device served by skiff's stack. The kernel resolves the gateway with ARP, `ping`s the
 * gateway and the host alias, and `arping`s the gateway; skiff's replies must satisfy the real
 * tools. The whole exchange is also captured and checked frame by frame.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { CaptureChannel } from "../../src/link/capture.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { readPcapFile } from "../../src/pcap/reader.js";
import { parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { isWireError } from "../../src/common/wire-error.js";

describe("e2e: kernel guest pings skiff's gateway through a TAP device", function () {
  this.timeout(30_000);
  requireNetns(["/dev/net/tun"]);

  let ns: Netns;
  let stack: NetworkStack;
  let cap: CaptureChannel;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-e2e-"));
    ns = await createNetns("skiff-e2e-ping");
    const tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu: 1500 });
    cap = CaptureChannel.toFile(tap, join(dir, "session.pcap"));
    stack = new NetworkStack({ mtu: 1500 });
    stack.attach(cap);
    for (const cmd of [
      ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
      ["ip", "link", "set", "sk0", "address", "52:54:00:12:34:56", "up"],
      ["ip", "addr", "add", "192.168.65.3/24", "dev", "sk0"],
      ["ip", "route", "add", "default", "via", "192.168.65.1"],
    ]) {
      const r = await ns.exec(cmd);
      expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
    }
  });

  after(async () => {
    cap?.close();
    await ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("ping -c 3 192.168.65.1 gets 3 replies", async () => {
    const r = await ns.exec(["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.65.1"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/3 packets transmitted, 3 received, 0% packet loss/);
  });

  it("ping with a large payload (1472 bytes, a full 1500-byte packet) is answered in full", async () => {
    const r = await ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", "192.168.65.1"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/1480 bytes from 192\.168\.65\.1/);
  });

  it("ping to the host alias 192.168.65.2 is answered", async () => {
    const r = await ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.65.2"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
  });

  it("arping the gateway gets replies from the gateway MAC", async () => {
    const r = await ns.exec(["arping", "-c", "2", "-w", "4", "-I", "sk0", "192.168.65.1"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout.toLowerCase()).to.match(/reply from 192\.168\.65\.1 \[02:50:00:00:00:01\]/);
  });

  it("the kernel's neighbour table holds the gateway's MAC", async () => {
    const r = await ns.exec(["ip", "neigh", "show", "192.168.65.1"]);
    expect(r.stdout).to.match(/lladdr 02:50:00:00:00:01/);
  });

  it("the capture holds the exchange in both directions, readable as pcap", async () => {
    // Capture writes are asynchronous: wait until what was captured is in the file.
    await cap.capturing?.flushed();
    const c = readPcapFile(join(dir, "session.pcap"));
    if (isWireError(c)) throw new Error(c.reason);
    const kinds = c.packets.map((p) => {
      const e = parseEthernet(p.data);
      return isWireError(e) ? "bad" : `${e.src === 0x025000000001 ? "gw" : "guest"}:${e.ethertype === EtherType.ARP ? "arp" : "ip"}`;
    });
    expect(kinds).to.include.members(["guest:arp", "gw:arp", "guest:ip", "gw:ip"]);
    // 3 + 2 + 2 echo requests, each answered.
    expect(kinds.filter((k) => k === "gw:ip").length).to.equal(7);
    expect(stack.counters.icmpEchoReplies).to.equal(7);
  });
});
