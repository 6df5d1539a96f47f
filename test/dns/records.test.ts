/**
 * The record store: built-in names for the stack's addresses, reserved host names when the
 * host alias is off, run-time add/remove/list, reverse lookups, and the name helpers.
 */
import { expect } from "chai";
import fc from "fast-check";
import {
  RecordStore,
  HOST_NAMES,
  GATEWAY_NAMES,
  normalizeName,
  isValidName,
  parseIpv6,
  formatIpv6,
  parseReverseName,
  reverseName,
} from "../../src/dns/records.js";
import { resolveConfig } from "../../src/stack/config.js";
import { parseIpv4Address as ip4 } from "../../src/common/addr.js";
import { ipv4 } from "../support/arbitraries.js";

const store = (hostAliasIp?: string | null) => new RecordStore(resolveConfig({ hostAliasIp }));

describe("dns/records: built-in names", () => {
  it("maps the host names to the host alias and the gateway names to the gateway", () => {
    const s = store();
    const v6 = (last: number) => Uint8Array.from([0xfd, 0x73, 0x6b, 0x69, 0x66, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]);
    for (const n of HOST_NAMES) expect(s.lookup(n), n).to.deep.equal({ a: [ip4("192.168.65.2")], aaaa: [v6(2)] });
    for (const n of GATEWAY_NAMES) expect(s.lookup(n), n).to.deep.equal({ a: [ip4("192.168.65.1")], aaaa: [v6(1)] });
    expect(new RecordStore(resolveConfig({ ipv6: false })).lookup("host.internal")?.aaaa).to.deep.equal([]);
    expect([...HOST_NAMES, ...GATEWAY_NAMES]).to.have.members([
      "host.internal",
      "gateway.internal",
      "host.docker.internal",
      "gateway.docker.internal",
      "host.containers.internal",
    ]);
  });

  it("follows a non-default subnet", () => {
    const s = new RecordStore(resolveConfig({ subnet: "10.7.0.0/16" }));
    expect(s.lookup("gateway.internal")?.a).to.deep.equal([ip4("10.7.0.1")]);
    expect(s.lookup("host.internal")?.a).to.deep.equal([ip4("10.7.0.2")]);
    expect(s.inGuestNetwork(ip4("10.7.200.9")!)).to.equal(true);
    expect(s.inGuestNetwork(ip4("10.8.0.1")!)).to.equal(false);
  });

  it("reserves the host names (no address) when the host alias is disabled", () => {
    const s = store(null);
    for (const n of HOST_NAMES) {
      expect(s.lookup(n), n).to.equal(undefined);
      expect(s.isReserved(n), n).to.equal(true);
    }
    expect(s.lookup("gateway.internal")?.a).to.deep.equal([ip4("192.168.65.1")]);
    expect(s.isReserved("gateway.internal")).to.equal(false);
    // One entry per address: A, then AAAA.
    expect(s.list().map((e) => e.name)).to.deep.equal(["gateway.internal", "gateway.internal", "gateway.docker.internal", "gateway.docker.internal"]);
  });

  it("answers reverse lookups of the gateway and host alias with the first built-in name", () => {
    const s = store();
    expect(s.reverse(ip4("192.168.65.1")!)).to.equal("gateway.internal");
    expect(s.reverse(ip4("192.168.65.2")!)).to.equal("host.internal");
    expect(s.reverse(ip4("192.168.65.3")!)).to.equal(undefined);
  });
});

describe("dns/records: run-time records", () => {
  it("adds several A records and an AAAA record to one name, ignoring duplicates", () => {
    const s = store();
    s.add("db.test", "10.0.0.1");
    s.add("DB.test.", "10.0.0.2");
    s.add("db.test", "10.0.0.1");
    s.add("db.test", "fd00::1");
    const r = s.lookup("db.test")!;
    expect(r.a).to.deep.equal([ip4("10.0.0.1"), ip4("10.0.0.2")]);
    expect(r.aaaa.map(formatIpv6)).to.deep.equal(["fd00::1"]);
    expect(s.list().filter((e) => !e.builtin)).to.deep.equal([
      { name: "db.test", ip: "10.0.0.1", builtin: false },
      { name: "db.test", ip: "10.0.0.2", builtin: false },
      { name: "db.test", ip: "fd00::1", builtin: false },
    ]);
    expect(s.reverse(ip4("10.0.0.2")!)).to.equal("db.test");
  });

  it("removes one address or the whole name", () => {
    const s = store();
    s.add("a.test", "10.0.0.1");
    s.add("a.test", "10.0.0.2");
    s.add("a.test", "fd00::2");
    expect(s.remove("a.test", "10.0.0.1")).to.equal(1);
    expect(s.lookup("a.test")?.a).to.deep.equal([ip4("10.0.0.2")]);
    expect(s.remove("A.TEST.", "fd00:0::2")).to.equal(1);
    expect(s.remove("a.test")).to.equal(1);
    expect(s.lookup("a.test")).to.equal(undefined);
    expect(s.remove("a.test")).to.equal(0);
    expect(s.list().every((e) => e.builtin)).to.equal(true);
  });

  it("refuses bad names, bad addresses and built-in names with a clear error", () => {
    const s = store(null);
    expect(() => s.add("", "10.0.0.1")).to.throw(/invalid DNS name/);
    expect(() => s.add("a..b", "10.0.0.1")).to.throw(/invalid DNS name/);
    expect(() => s.add("x".repeat(64) + ".test", "10.0.0.1")).to.throw(/invalid DNS name/);
    expect(() => s.add("sp ace.test", "10.0.0.1")).to.throw(/invalid DNS name/);
    expect(() => s.add("ok.test", "10.0.0.256")).to.throw(/invalid IP address/);
    expect(() => s.add("ok.test", "nope")).to.throw(/invalid IP address/);
    expect(() => s.add("Gateway.Internal", "10.0.0.1")).to.throw(/built-in/);
    expect(() => s.add("host.internal", "10.0.0.1")).to.throw(/built-in/); // reserved while disabled
    expect(s.lookup("ok.test")).to.equal(undefined);
  });

  it("bounds the number of run-time records", () => {
    const s = new RecordStore(resolveConfig({}), { maxRecords: 3 });
    s.add("a.test", "10.0.0.1");
    s.add("a.test", "10.0.0.2");
    s.add("b.test", "10.0.0.3");
    expect(() => s.add("c.test", "10.0.0.4")).to.throw(/too many/);
    s.add("a.test", "10.0.0.1"); // a duplicate takes no room
    s.remove("b.test");
    s.add("c.test", "10.0.0.4");
    expect(s.lookup("c.test")?.a).to.deep.equal([ip4("10.0.0.4")]);
  });
});

describe("dns/records: name and address helpers", () => {
  it("normalises case and one trailing dot", () => {
    expect(normalizeName("Host.Docker.INTERNAL.")).to.equal("host.docker.internal");
    expect(normalizeName("a.b")).to.equal("a.b");
    expect(isValidName("_sip._udp.example.test")).to.equal(true);
    expect(isValidName("a".repeat(63) + ".b")).to.equal(true);
    expect(isValidName(("a".repeat(60) + ".").repeat(5))).to.equal(false);
  });

  it("parses IPv6 addresses to 16 bytes (zone ignored) and rejects others", () => {
    expect(Array.from(parseIpv6("::1")!)).to.deep.equal([...new Array(15).fill(0), 1]);
    expect(Array.from(parseIpv6("fe80::1%eth0")!.subarray(0, 2))).to.deep.equal([0xfe, 0x80]);
    expect(formatIpv6(parseIpv6("::ffff:1.2.3.4")!)).to.equal("::ffff:102:304");
    expect(parseIpv6("1.2.3.4")).to.equal(undefined);
    expect(parseIpv6("zz::1::2")).to.equal(undefined);
  });

  it("reverse names round-trip for every IPv4 address (property)", () => {
    fc.assert(fc.property(ipv4(), (ip) => parseReverseName(reverseName(ip)) === ip));
    expect(reverseName(ip4("192.168.65.1")!)).to.equal("1.65.168.192.in-addr.arpa");
    expect(parseReverseName("65.168.192.in-addr.arpa")).to.equal(undefined);
    expect(parseReverseName("300.65.168.192.in-addr.arpa")).to.equal(undefined);
    expect(parseReverseName("1.65.168.192.in-addr.arpa.evil")).to.equal(undefined);
  });
});
