import { expect } from "chai";
import fc from "fast-check";
import { ARP_LEN, ArpOp, ArpPacket, emitArp, parseArp, type ArpRepr } from "../../src/ethernet/arp.js";
import { WireError } from "../../src/common/wire-error.js";
import { damaged, ipv4, mac, u16 } from "../support/arbitraries.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

const reprArb: fc.Arbitrary<ArpRepr> = fc.record({
  op: fc.oneof(fc.constantFrom(ArpOp.Request, ArpOp.Reply), u16()),
  senderMac: mac(),
  senderIp: ipv4(),
  targetMac: mac(),
  targetIp: ipv4(),
});

// fixtures/pcaps/arp-ping.pcap frames 1 and 2, the Ethernet header removed:
// "Who has 192.168.65.1? Tell 192.168.65.3" and "192.168.65.1 is at 02:50:00:00:00:01".
const REQUEST = hex("0001 0800 06 04 0001 525400123456 c0a84103 000000000000 c0a84101");
const REPLY = hex("0001 0800 06 04 0002 025000000001 c0a84101 525400123456 c0a84103");

describe("ethernet/arp codec (RFC 826)", () => {
  it("parse(emit(r)) equals r", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(8), (r, off) => {
        const buf = new Uint8Array(off + ARP_LEN);
        expect(emitArp(r, buf, off)).to.equal(ARP_LEN);
        expect(parseArp(buf.subarray(off))).to.deep.equal(r);
      }),
    );
  });

  it("decodes a real ARP request field by field, through the view and through parse", () => {
    const p = new ArpPacket(REQUEST);
    expect(p.check()).to.equal(true);
    expect([p.htype, p.ptype, p.hlen, p.plen, p.op]).to.deep.equal([1, 0x0800, 6, 4, ArpOp.Request]);
    expect(p.senderMac).to.equal(0x525400123456);
    expect(p.senderIp).to.equal(0xc0a84103);
    expect(p.targetMac).to.equal(0);
    expect(p.targetIp).to.equal(0xc0a84101);
    expect(parseArp(REQUEST)).to.deep.equal({
      op: ArpOp.Request,
      senderMac: 0x525400123456,
      senderIp: 0xc0a84103,
      targetMac: 0,
      targetIp: 0xc0a84101,
    });
  });

  it("emits the real ARP reply byte for byte", () => {
    const buf = new Uint8Array(ARP_LEN);
    emitArp(
      { op: ArpOp.Reply, senderMac: 0x025000000001, senderIp: 0xc0a84101, targetMac: 0x525400123456, targetIp: 0xc0a84103 },
      buf,
    );
    expect(Buffer.from(buf).toString("hex")).to.equal(Buffer.from(REPLY).toString("hex"));
  });

  it("ignores Ethernet padding after the 28 bytes", () => {
    const padded = new Uint8Array(46).fill(0xee);
    padded.set(REQUEST);
    expect(parseArp(padded)).to.deep.equal(parseArp(REQUEST));
  });

  it("rejects truncated packets", () => {
    for (const n of [0, 7, 8, 27]) {
      const r = parseArp(REQUEST.subarray(0, n));
      expect(r).to.be.instanceOf(WireError);
      expect((r as WireError).reason).to.equal("truncated");
    }
    expect(new ArpPacket(REQUEST.subarray(0, 27)).check()).to.equal(false);
  });

  it("rejects hardware/protocol pairs other than Ethernet/IPv4", () => {
    // [byte index, value]: htype 6 (IEEE 802), ptype IPv6, hlen 8, plen 16.
    for (const [i, v] of [[1, 6], [2, 0x86], [4, 8], [5, 16]]) {
      const b = Uint8Array.from(REQUEST);
      b[i] = v;
      const r = parseArp(b);
      expect(r).to.be.instanceOf(WireError);
      expect((r as WireError).layer).to.equal("arp");
      expect((r as WireError).reason).to.match(/^unsupported/);
    }
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), fc.uint8Array({ maxLength: 40 }), (r, seed, junk) => {
        const buf = new Uint8Array(ARP_LEN);
        emitArp(r, buf);
        for (const input of [damaged(buf, seed), junk]) {
          const p = parseArp(input);
          expect(p instanceof WireError || typeof p.op === "number").to.equal(true);
        }
      }),
    );
  });
});
