/**
 * Parsing the hosts file (hosts(5)) and resolv.conf (resolv.conf(5)), and re-reading them
 * when they change (checked at most once per interval, on an injected clock).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync, unlinkSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHosts, parseResolvConf, HostsFile, ResolvConfFile, PolledFile } from "../../src/dns/hosts.js";
import { formatIpv6 } from "../../src/dns/records.js";
import { parseIpv4Address as ip4 } from "../../src/common/addr.js";

const SAMPLE = [
  "# comment line",
  "127.0.0.1\tlocalhost",
  "::1     localhost ip6-localhost ip6-loopback",
  "10.1.2.3  Build.Example.Test  build   # trailing comment",
  "10.1.2.4  build.example.test.",
  "fe80::1%eth0 linklocal.test",
  "not-an-ip  bogus.test",
  "10.9.9.9",
  "   ",
  "192.0.2.7 crlf.test\r",
].join("\n");

describe("dns/hosts: parseHosts", () => {
  const t = parseHosts(SAMPLE);

  it("gives every name on a line the line's address, case-insensitively, trailing dot ignored", () => {
    expect(t.byName.get("build.example.test")?.a).to.deep.equal([ip4("10.1.2.3"), ip4("10.1.2.4")]);
    expect(t.byName.get("build")?.a).to.deep.equal([ip4("10.1.2.3")]);
    expect(t.byName.get("crlf.test")?.a).to.deep.equal([ip4("192.0.2.7")]);
  });

  it("keeps IPv4 and IPv6 addresses of one name apart", () => {
    const lh = t.byName.get("localhost")!;
    expect(lh.a).to.deep.equal([ip4("127.0.0.1")]);
    expect(lh.aaaa.map(formatIpv6)).to.deep.equal(["::1"]);
    expect(t.byName.get("ip6-loopback")?.a).to.deep.equal([]);
    expect(t.byName.get("linklocal.test")?.aaaa.map(formatIpv6)).to.deep.equal(["fe80::1"]);
  });

  it("skips comments, lines without a name and lines whose first field is not an address", () => {
    expect(t.byName.has("bogus.test")).to.equal(false);
    expect(t.byName.has("comment")).to.equal(false);
    expect(t.byName.has("trailing")).to.equal(false);
    expect([...t.byName.keys()].sort()).to.deep.equal(
      ["build", "build.example.test", "crlf.test", "ip6-localhost", "ip6-loopback", "linklocal.test", "localhost"].sort(),
    );
  });

  it("maps each IPv4 address to its first name for reverse lookups", () => {
    expect(t.byIpv4.get(ip4("10.1.2.3")!)).to.equal("build.example.test");
    expect(t.byIpv4.get(ip4("127.0.0.1")!)).to.equal("localhost");
    expect(t.byIpv4.has(ip4("10.9.9.9")!)).to.equal(false);
  });

  it("never throws on arbitrary text", () => {
    for (const s of ["", "\n\n", "#", "::: x", "1.2.3.4 " + "a".repeat(10_000), "\u0000\u00ff 1.1.1.1 x"]) parseHosts(s);
  });
});

describe("dns/hosts: parseResolvConf", () => {
  it("reads nameservers in order (IPv4, IPv6, loopback), search domains, and skips junk", () => {
    const r = parseResolvConf(
      [
        "# generated",
        "nameserver 127.0.0.53",
        "nameserver 2001:db8::53 ; comment",
        "nameserver fe80::1%eth0",
        "nameserver not-an-address",
        "domain old.test",
        "search Corp.Test lab.test.",
        "options edns0 trust-ad",
      ].join("\n"),
    );
    expect(r.nameservers).to.deep.equal(["127.0.0.53", "2001:db8::53", "fe80::1%eth0"]);
    expect(r.search).to.deep.equal(["corp.test", "lab.test"]);
  });

  it("gives no nameservers for an empty file", () => {
    expect(parseResolvConf("")).to.deep.equal({ nameservers: [], search: [] });
  });
});

describe("dns/hosts: re-reading changed files", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-dns-hosts-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("re-reads the hosts file after it changes, at most once per interval", () => {
    const path = join(dir, "hosts");
    writeFileSync(path, "10.0.0.1 one.test\n");
    let now = 0;
    const h = new HostsFile(path, { now: () => now, checkIntervalMs: 1000 });
    expect(h.lookup("one.test")?.a).to.deep.equal([ip4("10.0.0.1")]);
    writeFileSync(path, "10.0.0.2 two.test\n");
    utimesSync(path, new Date(), new Date(Date.now() + 5000)); // a different mtime, whatever the fs granularity
    now = 500;
    expect(h.lookup("one.test"), "within the interval the old contents stand").to.not.equal(undefined);
    now = 1500;
    expect(h.lookup("one.test")).to.equal(undefined);
    expect(h.lookup("two.test")?.a).to.deep.equal([ip4("10.0.0.2")]);
    expect(h.reverse(ip4("10.0.0.2")!)).to.equal("two.test");
    now = 3000;
    h.lookup("two.test");
    expect(h.loads, "an unchanged file is not parsed again").to.equal(2);
  });

  it("reads a missing file as empty, with one log line, and picks it up when it appears", () => {
    const path = join(dir, "resolv.conf");
    const warnings: unknown[] = [];
    const log = { warn: (...a: unknown[]) => warnings.push(a), debug: () => {} } as never;
    let now = 0;
    const r = new ResolvConfFile(path, { now: () => now, log });
    expect(r.nameservers).to.deep.equal([]);
    now = 2000;
    expect(r.nameservers).to.deep.equal([]);
    expect(warnings.length).to.equal(1);
    writeFileSync(path, "nameserver 127.0.0.1\nsearch a.test\n");
    now = 4000;
    expect(r.nameservers).to.deep.equal(["127.0.0.1"]);
    expect(r.search).to.deep.equal(["a.test"]);
    unlinkSync(path);
    now = 6000;
    expect(r.nameservers).to.deep.equal([]);
    expect(warnings.length).to.equal(2);
  });

  it("PolledFile parses once for many reads within the interval", () => {
    const path = join(dir, "f");
    writeFileSync(path, "x");
    let parses = 0;
    const f = new PolledFile(path, (t) => (parses++, t), "", { now: () => 0 });
    for (let i = 0; i < 100; i++) expect(f.get()).to.equal("x");
    expect(parses).to.equal(1);
  });
});
