/**
 * End to end: `dig` in a network namespace behind a TAP device served by skiff asks the
 * gateway's DNS server (UDP and TCP port 53). Built-in names (A, and AAAA with IPv6 on), a name
 * from an injected hosts file, PTR, names forwarded to a fake upstream on the host's
 * 127.0.0.1 (never a real outside address), a TXT answer over 512 bytes (TC over UDP when the
 * client's size is 512, the whole answer over TCP), and SERVFAIL when the upstream is silent.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireNetns } from "../support/netns.js";
import { startGuest, type Guest } from "../support/guest.js";
import { createDnsServer, type DnsServer } from "../../src/stack/dns-service.js";
import { FakeUpstream } from "../dns/fake-upstream.js";

const TXT_PARTS = ["x".repeat(250), "y".repeat(250), "z".repeat(250)];

describe("e2e: dig asks skiff's DNS server on the gateway", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);
  let guest: Guest;
  let dns: DnsServer;
  let fake: FakeUpstream;
  let dir: string;

  before(async function () {
    fake = await FakeUpstream.start({
      "fwd.example.test": [{ type: "A", name: "fwd.example.test", ttl: 60, data: "203.0.113.7" }],
      "mail.example.test": [{ type: "MX", name: "mail.example.test", ttl: 60, data: { preference: 5, exchange: "mx.example.test" } }],
      "big.example.test": [{ type: "TXT", name: "big.example.test", ttl: 60, data: [...TXT_PARTS] }],
    });
    fake.silentNames.add("slow.example.test");
    dir = mkdtempSync(join(tmpdir(), "skiff-e2e-dns-"));
    const hostsPath = join(dir, "hosts");
    writeFileSync(hostsPath, "10.20.30.40 build.corp.test\n");
    guest = await startGuest("skiff-e2e-dns");
    dns = createDnsServer(guest.stack, { tcp: guest.tcp, hostsPath, servers: [fake.server], timeoutMs: 500 });
  });

  after(async () => {
    dns?.close();
    await guest?.close();
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function dig(...args: string[]): Promise<string> {
    const r = await guest.ns.exec(["dig", "@192.168.65.1", "+time=3", "+tries=1", ...args], 20_000);
    expect(r.code, `dig ${args.join(" ")}: ${r.stdout}${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  it("host.internal A +short is 192.168.65.2; gateway.internal is 192.168.65.1; case does not matter", async () => {
    expect((await dig("host.internal", "A", "+short")).trim()).to.equal("192.168.65.2");
    expect((await dig("gateway.internal", "A", "+short")).trim()).to.equal("192.168.65.1");
    expect((await dig("HOST.Docker.Internal", "A", "+short")).trim()).to.equal("192.168.65.2");
    expect((await dig("host.containers.internal", "A", "+short")).trim()).to.equal("192.168.65.2");
  });

  it("host.internal AAAA is the host alias's IPv6 address, authoritative (an empty NOERROR with IPv6 off: test/dns/resolver.test.ts)", async () => {
    const out = await dig("host.internal", "AAAA");
    expect(out).to.match(/status: NOERROR/);
    expect(out).to.match(/ANSWER: 1,/);
    expect(out).to.match(/flags: qr aa rd ra;/);
    expect((await dig("host.internal", "AAAA", "+short")).trim()).to.equal("fd73:6b69:6666::2");
  });

  it("answers a name from the injected hosts file", async () => {
    expect((await dig("build.corp.test", "+short")).trim()).to.equal("10.20.30.40");
  });

  it("answers PTR of the gateway", async () => {
    expect((await dig("-x", "192.168.65.1", "+short")).trim()).to.equal("gateway.internal.");
  });

  it("forwards other names to the (fake) upstream: A and MX", async () => {
    const before = fake.received.length;
    expect((await dig("fwd.example.test", "+short")).trim()).to.equal("203.0.113.7");
    expect((await dig("mail.example.test", "MX", "+short")).trim()).to.equal("5 mx.example.test.");
    expect(fake.received.length).to.be.greaterThan(before);
    const nx = await dig("nothing.example.test");
    expect(nx).to.match(/status: NXDOMAIN/);
  });

  it("a TXT answer over 512 bytes: TC over UDP for a 512-byte client, whole over TCP and with EDNS", async () => {
    // +ignore keeps dig from retrying over TCP, so the truncated UDP answer is what it shows.
    const udp512 = await dig("big.example.test", "TXT", "+bufsize=512", "+ignore");
    expect(udp512).to.match(/flags: qr tc rd ra/);
    expect(udp512).to.match(/ANSWER: 0,/);
    const tcp = await dig("big.example.test", "TXT", "+tcp", "+short");
    expect(tcp.replace(/[\s"]/g, "")).to.equal(TXT_PARTS.join(""));
    // Without +ignore dig retries a truncated answer over TCP by itself.
    const retried = await dig("big.example.test", "TXT", "+noedns", "+short");
    expect(retried.replace(/[\s"]/g, "")).to.equal(TXT_PARTS.join(""));
    // dig's default EDNS size (1232) holds the whole answer over UDP.
    const edns = await dig("big.example.test", "TXT");
    expect(edns).to.match(/flags: qr rd ra;/);
    expect(edns).to.match(/ANSWER: 1,/);
    expect(dns.service.counters.tcpAnswers).to.be.at.least(2);
  });

  it("answers SERVFAIL when the upstream does not answer", async () => {
    const t0 = Date.now();
    const out = await dig("slow.example.test", "A");
    expect(out).to.match(/status: SERVFAIL/);
    expect(Date.now() - t0).to.be.lessThan(2500);
  });
});
