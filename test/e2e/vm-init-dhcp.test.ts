/**
 * The guest image's DHCP step without booting a VM: the exact `udhcpc` command line of /init
 * (src/vm/init.ts) and its event script, run by busybox udhcpc in a namespace whose TAP device is
 * served by skiff's DHCP service with a 9000-byte MTU. The interface gets the address, the
 * default route, the resolver — and the MTU from option 26 (RFC 2132 §5.1), which the script did
 * not apply before (`skiff vm run --mtu 9000` left the guest at 1500). The QEMU guest itself is
 * checked in vm.test.ts.
 */
import { expect } from "chai";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { DhcpService } from "../../src/stack/dhcp-service.js";
import { INIT_SCRIPT, UDHCPC_SCRIPT } from "../../src/vm/init.js";

describe("e2e: the guest /init's udhcpc line and script (busybox udhcpc in a namespace)", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);

  let ns: Netns;
  let tap: TapChannel;
  let stack: NetworkStack;
  let service: DhcpService;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-e2e-init-dhcp-"));
    ns = await createNetns("skiff-e2e-initdhcp");
    tap = TapChannel.open({ name: "eth0", netns: ns.path, mtu: 9000 });
    stack = new NetworkStack({ mtu: 9000 });
    stack.attach(tap);
    service = new DhcpService(stack);
    for (const cmd of [
      ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
      // The guest's interface starts at the usual 1500 (virtio-net's default).
      ["ip", "link", "set", "eth0", "address", "52:54:00:65:00:10", "mtu", "1500", "up"],
    ]) {
      const r = await ns.exec(cmd);
      expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
    }
  });

  after(async () => {
    service?.close();
    tap?.close();
    await ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("sets the address, route, resolver and the 9000-byte MTU skiff's DHCP sends", async () => {
    // /init's udhcpc line, as the guest runs it (its output is discarded there; kept here).
    const line = INIT_SCRIPT.split("\n").find((l) => /^udhcpc /.test(l));
    expect(line, "a udhcpc line in /init").to.not.equal(undefined);
    const argv = line!.replace(/\s*>.*$/, "").split(/\s+/);
    expect(argv).to.include.members(["-O", "mtu"]);
    // The script, with the guest's /etc/resolv.conf moved into the test's directory.
    const resolv = join(dir, "resolv.conf");
    const script = join(dir, "udhcpc.sh");
    writeFileSync(script, UDHCPC_SCRIPT.replaceAll("/etc/resolv.conf", resolv));
    chmodSync(script, 0o755);
    const r = await ns.exec(["busybox", ...argv.map((a) => (a === "/etc/udhcpc.sh" ? script : a))], 20_000);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const mtu = await ns.exec(["cat", "/sys/class/net/eth0/mtu"]);
    expect(mtu.stdout.trim()).to.equal("9000");
    const addr = await ns.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    expect(addr.stdout).to.match(/inet 192\.168\.65\.\d+\/24/);
    const route = await ns.exec(["ip", "route", "show", "default"]);
    expect(route.stdout).to.match(/default via 192\.168\.65\.1 dev eth0/);
    expect(readFileSync(resolv, "utf8")).to.equal("nameserver 192.168.65.1\n");
    // A 9000-byte frame passes: an unfragmented 8900-byte echo to the gateway is answered.
    const ping = await ns.exec(["ping", "-c", "1", "-W", "2", "-M", "do", "-s", "8900", "192.168.65.1"]);
    expect(ping.code, ping.stdout + ping.stderr).to.equal(0);
  });
});
