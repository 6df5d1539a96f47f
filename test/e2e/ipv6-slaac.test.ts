/**
 * End to end on IPv6 with the Linux kernel as the guest (a namespace behind a TAP device, IPv6
 * left on): the kernel configures itself by SLAAC from skiff's router advertisements (RFC 4862
 * §5.5.3: address from the prefix and its EUI-64; default route via the gateway's link-local
 * address), `rdisc6` (ndisc6) sees the RDNSS and DNSSL options (RFC 8106) and the MTU, `ping -6`
 * reaches the gateway, `dig` over IPv6 gets AAAA and ip6.arpa PTR answers for the built-in names,
 * and the kernel's DAD for its own address is never answered (its address stays, not "dadfailed").
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { createDnsServer, type DnsServer } from "../../src/stack/dns-service.js";

const GUEST6 = "fd73:6b69:6666:0:5054:ff:fe12:3456";
const GW6 = "fd73:6b69:6666::1";

function have(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("e2e: a kernel guest configures IPv6 by SLAAC from skiff's router advertisements", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);

  let ns: Netns;
  let stack: NetworkStack;
  let tap: TapChannel;
  let dns: DnsServer;

  before(async () => {
    ns = await createNetns("skiff-e2e-v6");
    tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu: 1500 });
    stack = new NetworkStack({ mtu: 1500 });
    stack.attach(tap);
    dns = createDnsServer(stack, { hostsPath: null, servers: [] });
    for (const cmd of [
      ["sysctl", "-qw", "net.ipv6.conf.sk0.accept_ra=1"],
      ["sysctl", "-qw", "net.ipv6.conf.sk0.addr_gen_mode=0"],
      ["ip", "link", "set", "sk0", "address", "52:54:00:12:34:56", "up"],
    ]) {
      const r = await ns.exec(cmd);
      expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
    }
  });

  after(async () => {
    dns?.close();
    stack?.close();
    tap?.close();
    await ns?.destroy();
  });

  it("gets its address in the prefix (past DAD) and a default route via the gateway's link-local address", async () => {
    let addrs = "";
    for (let i = 0; i < 100; i++) {
      addrs = (await ns.exec(["ip", "-6", "addr", "show", "dev", "sk0", "scope", "global"])).stdout;
      if (addrs.includes(GUEST6) && !addrs.includes("tentative")) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(addrs).to.include(`${GUEST6}/64`);
    expect(addrs).not.to.match(/tentative|dadfailed/);
    const route = (await ns.exec(["ip", "-6", "route", "show", "default"])).stdout;
    expect(route).to.match(/default via fe80::50:ff:fe00:1 dev sk0 proto ra/);
    expect(stack.counters.routerSolicitations).to.be.greaterThan(0);
    expect(stack.counters.dropped("ndp-dad-foreign")).to.be.greaterThan(0);
  });

  it("rdisc6 sees the prefix, the MTU, RDNSS and DNSSL", async function () {
    if (!have("rdisc6")) {
      console.log("      (skipped: rdisc6 not installed; Debian package ndisc6, in scripts/setup.sh)");
      this.skip();
    }
    const r = await ns.exec(["rdisc6", "-1", "-w", "2000", "sk0"], 15_000);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Prefix\s*:\s*fd73:6b69:6666::\/64/);
    expect(r.stdout).to.match(/MTU\s*:\s*1500/);
    expect(r.stdout).to.match(/Recursive DNS server\s*:\s*fd73:6b69:6666::1/);
    expect(r.stdout).to.match(/DNS search list\s*:\s*internal/);
    expect(r.stdout).to.match(/Stateful other conf\.\s*:\s*Yes/);
  });

  it("ping -6 the gateway: 3 replies", async () => {
    const r = await ns.exec(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", GW6]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/3 packets transmitted, 3 received/);
  });

  it("dig over IPv6: AAAA of host.internal and gateway.internal, PTR in ip6.arpa", async () => {
    const q = async (...args: string[]) => {
      const r = await ns.exec(["dig", "+short", "+time=2", "+tries=2", `@${GW6}`, ...args]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      return r.stdout.trim();
    };
    expect(await q("AAAA", "host.internal")).to.equal("fd73:6b69:6666::2");
    expect(await q("AAAA", "gateway.internal")).to.equal(GW6);
    expect(await q("-x", GW6)).to.equal("gateway.internal.");
    expect(dns.service.counters.udpAnswers).to.be.at.least(3);
  });
});
