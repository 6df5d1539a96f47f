/** Tests of src/ipv6/dhcpv6.ts: stateless DHCPv6 (RFC 8415, RFC 3646) by hand, round trips, malformed and damaged messages. */
import { expect } from "chai";
import fc from "fast-check";
import { WireError } from "../../src/common/wire-error.js";
import { formatIpv6 } from "../../src/ipv6/addr.js";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  dhcpv6Len,
  duidLl,
  emitDhcpv6,
  findDhcpv6Option,
  informationRequestRefusal,
  isAllDhcpServers,
  parseDhcpv6,
  type Dhcpv6Message,
  type Dhcpv6Option,
} from "../../src/ipv6/dhcpv6.js";
import { damaged, u16, u8 } from "../support/arbitraries.js";
import { a6, hex, ipv6Addr, ok, reasonOf, toHex } from "./helpers.js";

// RFC 8415 §8 and §21 by hand: a client's INFORMATION-REQUEST (transaction 0x123456) with its
// DUID-LL, an Option Request for DNS servers (23) and the domain list (24), elapsed time 0.
const INFO_REQUEST = hex(`0b 123456
  0001 000a 0003 0001 525400123456
  0006 0004 0017 0018
  0008 0002 0000`);
// The gateway's REPLY: its DUID-LL, the client's, DNS server fd53:6b69:6666::1, domain
// "internal", information refresh time 3600 s (RFC 8415 §21.23).
const REPLY = hex(`07 123456
  0002 000a 0003 0001 025000000001
  0001 000a 0003 0001 525400123456
  0017 0010 fd536b69666600000000000000000001
  0018 000a 08696e7465726e616c00
  0020 0004 00000e10`);
const REPLY_MSG: Dhcpv6Message = {
  msgType: 7,
  transactionId: 0x123456,
  options: [
    { type: "server-id", duid: duidLl(0x025000000001) },
    { type: "client-id", duid: duidLl(0x525400123456) },
    { type: "dns-servers", servers: [a6("fd53:6b69:6666::1")] },
    { type: "domain-list", domains: ["internal"] },
    { type: "information-refresh-time", seconds: 3600 },
  ],
};

const domain = fc.array(fc.stringMatching(/^[a-z0-9-]{1,10}$/), { minLength: 1, maxLength: 3 }).map((l) => l.join("."));
const optionArb: fc.Arbitrary<Dhcpv6Option> = fc.oneof(
  fc.record({ type: fc.constantFrom("client-id" as const, "server-id" as const), duid: fc.uint8Array({ minLength: 2, maxLength: 130 }) }),
  fc.record({ type: fc.constant("oro" as const), requested: fc.array(u16(), { maxLength: 6 }) }),
  fc.record({ type: fc.constant("elapsed-time" as const), centiseconds: u16() }),
  fc.record({ type: fc.constant("status" as const), status: u16(), message: fc.string({ maxLength: 20 }) }),
  fc.record({ type: fc.constant("rapid-commit" as const) }),
  fc.record({ type: fc.constant("dns-servers" as const), servers: fc.array(ipv6Addr(), { maxLength: 3 }) }),
  fc.record({ type: fc.constant("domain-list" as const), domains: fc.array(domain, { maxLength: 3 }) }),
  fc.record({ type: fc.constant("information-refresh-time" as const), seconds: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ type: fc.constant("other" as const), code: u16().filter((c) => ![1, 2, 6, 8, 13, 14, 23, 24, 32].includes(c)), data: fc.uint8Array({ maxLength: 20 }) }),
);
const msgArb: fc.Arbitrary<Dhcpv6Message> = fc.record({
  msgType: u8().filter((t) => t !== 12 && t !== 13),
  transactionId: fc.integer({ min: 0, max: 0xffffff }),
  options: fc.array(optionArb, { maxLength: 6 }),
});

function emitted(m: Dhcpv6Message): Uint8Array {
  const b = new Uint8Array(dhcpv6Len(m));
  expect(emitDhcpv6(m, b)).to.equal(b.length);
  return b;
}

describe("ipv6/dhcpv6 codec (RFC 8415 stateless, RFC 3646)", () => {
  it("decodes a hand-written INFORMATION-REQUEST and emits the REPLY byte for byte", () => {
    const req = ok(parseDhcpv6(INFO_REQUEST));
    expect([req.msgType, req.transactionId]).to.deep.equal([11, 0x123456]);
    expect(req.options).to.deep.equal([
      { type: "client-id", duid: hex("00030001525400123456") },
      { type: "oro", requested: [23, 24] },
      { type: "elapsed-time", centiseconds: 0 },
    ]);
    const server = duidLl(0x025000000001);
    expect(informationRequestRefusal(req, server)).to.equal(undefined);
    expect(toHex(emitted(REPLY_MSG))).to.equal(toHex(REPLY));
    const rep = ok(parseDhcpv6(REPLY));
    expect(rep).to.deep.equal(REPLY_MSG);
    expect(findDhcpv6Option(rep, "dns-servers")?.servers.map(formatIpv6)).to.deep.equal(["fd53:6b69:6666::1"]);
    expect(findDhcpv6Option(rep, "rapid-commit")).to.equal(undefined);
  });

  it("refuses information-requests RFC 8415 §16.12 says to discard", () => {
    const server = duidLl(0x025000000001);
    const base = ok(parseDhcpv6(INFO_REQUEST));
    expect(informationRequestRefusal({ ...base, options: [...base.options, { type: "server-id", duid: duidLl(2) }] }, server)).to.equal("another server's identifier");
    expect(informationRequestRefusal({ ...base, options: [...base.options, { type: "server-id", duid: server }] }, server)).to.equal(undefined);
    expect(informationRequestRefusal({ ...base, options: [{ type: "other", code: 3, data: new Uint8Array(12) }] }, server)).to.equal("IA option in an information-request");
    expect(informationRequestRefusal({ ...base, msgType: 1 }, server)).to.equal("not an information-request");
    expect(isAllDhcpServers(ALL_DHCP_RELAY_AGENTS_AND_SERVERS)).to.equal(true);
    expect(formatIpv6(ALL_DHCP_RELAY_AGENTS_AND_SERVERS)).to.equal("ff02::1:2");
  });

  it("parse(emit(m)) equals m", () => {
    fc.assert(
      fc.property(msgArb, (m) => {
        expect(parseDhcpv6(emitted(m))).to.deep.equal(m);
      }),
      { numRuns: 300 },
    );
  });

  it("names malformed messages", () => {
    expect(reasonOf(parseDhcpv6(hex("0b1234")), "dhcpv6")).to.equal("truncated");
    expect(reasonOf(parseDhcpv6(hex("0c123456")), "dhcpv6")).to.equal("relay message");
    expect(reasonOf(parseDhcpv6(hex("0b123456 0001")), "dhcpv6")).to.equal("bad option length");
    expect(reasonOf(parseDhcpv6(hex("0b123456 0008 0003 000000")), "dhcpv6")).to.equal("bad option 8");
    expect(reasonOf(parseDhcpv6(hex("0b123456 0006 0003 001700")), "dhcpv6")).to.equal("bad option 6");
    expect(reasonOf(parseDhcpv6(hex("0b123456 0001 0001 00")), "dhcpv6")).to.equal("bad option 1");
    expect(reasonOf(parseDhcpv6(hex("07123456 0017 0004 00000000")), "dhcpv6")).to.equal("bad option 23");
    expect(reasonOf(parseDhcpv6(hex("07123456 0018 0004 03616263")), "dhcpv6")).to.equal("bad option 24"); // name without its end
    expect(reasonOf(parseDhcpv6(hex("07123456 0018 0006 0361626300 00")), "dhcpv6")).to.equal("bad option 24"); // no padding here
    expect(reasonOf(parseDhcpv6(hex("07123456 000e 0001 00")), "dhcpv6")).to.equal("bad option 14");
    expect(() => emitDhcpv6({ ...REPLY_MSG, transactionId: 0x1000000 }, new Uint8Array(200))).to.throw(RangeError);
    expect(() => emitDhcpv6({ msgType: 7, transactionId: 1, options: [{ type: "client-id", duid: new Uint8Array(1) }] }, new Uint8Array(200))).to.throw(RangeError);
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(msgArb, fc.nat(), fc.uint8Array({ maxLength: 60 }), (m, seed, junk) => {
        for (const input of [damaged(emitted(m), seed), junk]) {
          const p = parseDhcpv6(input);
          expect(p instanceof WireError || Array.isArray(p.options)).to.equal(true);
        }
      }),
    );
  });
});
