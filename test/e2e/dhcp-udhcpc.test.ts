/**
 * End to end: busybox udhcpc, a real DHCP client, configures a Linux namespace from skiff's
 * DHCP service. The namespace's only interface is a TAP device served by an in-process stack
 * with the service bound; udhcpc's script records the variables it is given (one file per
 * event) and applies the address, so the test checks both what the client understood and
 * that the result works (ping of the gateway). Then a second exchange (same MAC, same
 * address) and a renewal by unicast (SIGUSR1 → RENEWING, RFC 2131 §4.3.2).
 */
import { expect } from "chai";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { writeScript } from "../support/udhcpc.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { DhcpService } from "../../src/stack/dhcp-service.js";
import { macHash } from "../../src/dhcp/server.js";
import { formatIpv4, parseMac } from "../../src/common/addr.js";

const MAC = "52:54:00:12:34:56";
/** What the address function gives for MAC in .3 … .254 (pinned in test/dhcp/server.test.ts). */
const EXPECTED_IP = formatIpv4(0xc0a8_4103 + (macHash(parseMac(MAC)!) % 252));

/** A udhcpc script writing `env` to `DIR/env-<event>` and applying bound/renew to the interface. */
function writeDhcpScript(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return writeScript(join(dir, "script.sh"), [
    `env > "${dir}/env-$1"`,
    'case "$1" in',
    '  deconfig) ip -4 addr flush dev "$interface" ;;',
    "  bound|renew)",
    '    ip -4 addr flush dev "$interface"',
    '    ip addr add "$ip/$mask" broadcast "$broadcast" dev "$interface"',
    '    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"',
    '    ip route replace default via "$router" dev "$interface" ;;',
    "esac",
    "exit 0",
  ]);
}

function readEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

describe("e2e: busybox udhcpc configures a namespace from skiff's DHCP service", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);

  let ns: Netns;
  let stack: NetworkStack;
  let service: DhcpService;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-e2e-dhcp-"));
    ns = await createNetns("skiff-e2e-dhcp");
    const tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu: 1500 });
    stack = new NetworkStack({ mtu: 1500 });
    stack.attach(tap);
    service = new DhcpService(stack, { searchDomains: ["internal", "example.com"] });
    for (const cmd of [
      ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
      ["ip", "link", "set", "sk0", "address", MAC, "up"],
    ]) {
      const r = await ns.exec(cmd);
      expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
    }
  });

  after(async () => {
    await ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("udhcpc -n -q gets the address for its MAC and every option, as the script sees them", async () => {
    const run = join(dir, "first");
    const script = writeDhcpScript(run);
    const r = await ns.exec(["udhcpc", "-i", "sk0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script], 20_000);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(existsSync(join(run, "env-bound")), `events: ${r.stderr}`).to.equal(true);
    const env = readEnv(join(run, "env-bound"));
    expect({
      ip: env.ip, subnet: env.subnet, mask: env.mask, broadcast: env.broadcast, router: env.router, dns: env.dns,
      domain: env.domain, search: env.search, mtu: env.mtu, lease: env.lease, serverid: env.serverid, interface: env.interface,
    }).to.deep.equal({
      ip: EXPECTED_IP, subnet: "255.255.255.0", mask: "24", broadcast: "192.168.65.255", router: "192.168.65.1", dns: "192.168.65.1",
      domain: "internal", search: "internal example.com", mtu: "1500", lease: "3600", serverid: "192.168.65.1", interface: "sk0",
    });
    expect(r.stderr).to.match(new RegExp(`lease of ${EXPECTED_IP.replace(/\./g, "\\.")} obtained from 192\\.168\\.65\\.1`));
    expect(service.leases().map((l) => [formatIpv4(l.ip), l.mac])).to.deep.equal([[EXPECTED_IP, parseMac(MAC)]]);
  });

  it("the address the script applied works: the interface has it and the gateway answers ping", async () => {
    const addr = await ns.exec(["ip", "-4", "-o", "addr", "show", "dev", "sk0"]);
    expect(addr.stdout).to.include(`inet ${EXPECTED_IP}/24 brd 192.168.65.255`);
    const ping = await ns.exec(["ping", "-c", "1", "-W", "2", "192.168.65.1"]);
    expect(ping.code, ping.stdout + ping.stderr).to.equal(0);
  });

  it("`busybox udhcpc` (a second exchange, same MAC) gets the same address", async function () {
    const udhcpc = realpathSync("/usr/sbin/udhcpc");
    if (udhcpc === realpathSync("/usr/bin/busybox")) console.log(`    note: udhcpc is ${udhcpc} here, the same program`);
    const run = join(dir, "second");
    const script = writeDhcpScript(run);
    const r = await ns.exec(["busybox", "udhcpc", "-i", "sk0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script], 20_000);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(readEnv(join(run, "env-bound")).ip).to.equal(EXPECTED_IP);
    expect(service.leases()).to.have.length(1);
  });

  it("a renewal (SIGUSR1: unicast REQUEST with ciaddr) is ACKed by unicast and keeps the address", async () => {
    const run = join(dir, "renew");
    const script = writeDhcpScript(run);
    const acksBefore = service.counters.acks;
    const waitFor = (f: string) => `i=0; while [ ! -e "${run}/${f}" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done`;
    const sh = [
      `udhcpc -i sk0 -f -t 5 -T 1 -s "${script}" 2>"${run}/log" &`,
      "pid=$!",
      waitFor("env-bound"),
      "kill -USR1 $pid",
      waitFor("env-renew"),
      "kill $pid; wait $pid",
      `test -e "${run}/env-renew"`,
    ].join("\n");
    const r = await ns.exec(["sh", "-c", sh], 20_000);
    const log = existsSync(join(run, "log")) ? readFileSync(join(run, "log"), "utf8") : "";
    expect(r.code, r.stdout + r.stderr + log).to.equal(0);
    const env = readEnv(join(run, "env-renew"));
    expect([env.ip, env.serverid, env.lease]).to.deep.equal([EXPECTED_IP, "192.168.65.1", "3600"]);
    expect(log).to.include("sending renew to server 192.168.65.1");
    // The binding, then the renewal. busybox sends the unicast renew from a throw-away socket
    // bound to ciaddr:68 and connected to the server; an ACK arriving before that socket is
    // closed (skiff answers within microseconds) is delivered to it and lost, and udhcpc then
    // rebinds by broadcast ("broadcasting renew"), which is ACKed too: 2 or 3 ACKs.
    expect(service.counters.acks - acksBefore).to.be.within(2, 3);
    expect(service.counters.naks).to.equal(0);
    expect(stack.counters.drops).to.not.have.property("ipv4-bad-checksum");
  });
});
