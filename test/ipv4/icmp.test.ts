import { expect } from "chai";
import fc from "fast-check";
import {
  emitIcmp,
  ICMP_HEADER_LEN,
  icmpLen,
  IcmpPacket,
  IcmpType,
  IcmpUnreachCode,
  parseIcmp,
  type IcmpRepr,
} from "../../src/ipv4/icmp.js";
import { IpProtocol, parseIpv4 } from "../../src/ipv4/ipv4.js";
import { WireError } from "../../src/common/wire-error.js";
import { bytes, damaged, u16, u32, u8 } from "../support/arbitraries.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const NAMED_TYPES: number[] = [IcmpType.EchoReply, IcmpType.DestUnreachable, IcmpType.EchoRequest, IcmpType.TimeExceeded];

const reprArb: fc.Arbitrary<IcmpRepr> = fc.oneof(
  fc.record({
    kind: fc.constantFrom("echo-request" as const, "echo-reply" as const),
    id: u16(),
    seq: u16(),
    data: bytes(200),
  }),
  u8().chain((code) =>
    fc.record({
      kind: fc.constant("dest-unreachable" as const),
      code: fc.constant(code),
      nextHopMtu: code === IcmpUnreachCode.FragNeeded ? u16() : fc.constant(0),
      original: bytes(100),
    }),
  ),
  fc.record({ kind: fc.constant("time-exceeded" as const), code: u8(), original: bytes(100) }),
  fc.record({
    kind: fc.constant("other" as const),
    // Types decoded by name come back under their name; an echo with a non-zero code does not.
    type: u8(),
    code: u8(),
    rest: u32(),
    data: bytes(100),
  }).filter((r) => !NAMED_TYPES.includes(r.type) || ((r.type === 0 || r.type === 8) && r.code !== 0)),
);

function message(r: IcmpRepr): Uint8Array {
  const buf = new Uint8Array(icmpLen(r));
  expect(emitIcmp(r, buf)).to.equal(buf.length);
  return buf;
}

function reason(x: unknown): string {
  expect(x).to.be.instanceOf(WireError);
  expect((x as WireError).layer).to.equal("icmp");
  return (x as WireError).reason;
}

// fixtures/pcaps/arp-ping.pcap frames 3 and 4 (ICMP part): `ping` from Linux, id 0x1468 seq 1,
// 56 bytes of data (a timeval and the bytes 0x10..0x37); checksums 0x460b and 0x4e0b.
const PING_DATA = hex(
  "56 08 04 6b 00 00 00 00 7b 45 09 00 00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f" +
    "20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37",
);
const ECHO_REQUEST = hex("08 00 46 0b 14 68 00 01" + toHex(PING_DATA));
const ECHO_REPLY = hex("00 00 4e 0b 14 68 00 01" + toHex(PING_DATA));
// The invoking datagram quoted in the errors below: the IP header and first 8 bytes of a
// 1500-byte DF UDP datagram 192.168.65.3:40000 -> 93.184.216.34:53.
const QUOTED = hex("45 00 05 dc 04 d2 40 00 40 11 f8 b8 c0 a8 41 03 5d b8 d8 22 9c 40 00 35 05 c8 20 62");
// Errors about it (checksums checked with tshark 4.0): fragmentation needed with next-hop
// MTU 1400 (RFC 1191), port unreachable, TTL exceeded in transit.
const FRAG_NEEDED = hex("03 04 34 e4 00 00 05 78" + toHex(QUOTED));
const PORT_UNREACHABLE = hex("03 03 3a 5d 00 00 00 00" + toHex(QUOTED));
const TTL_EXCEEDED = hex("0b 00 32 60 00 00 00 00" + toHex(QUOTED));

describe("ipv4/icmp codec (RFC 792, RFC 1191)", () => {
  it("parse(emit(r)) equals r, for every kind", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(6), (r, off) => {
        const buf = new Uint8Array(off + icmpLen(r));
        expect(emitIcmp(r, buf, off)).to.equal(icmpLen(r));
        expect(parseIcmp(buf.subarray(off))).to.deep.equal(r);
      }),
      { numRuns: 300 },
    );
  });

  it("decodes a real echo request field by field", () => {
    const p = new IcmpPacket(ECHO_REQUEST);
    expect(p.check()).to.equal(true);
    expect([p.type, p.code, p.checksum, p.id, p.seq]).to.deep.equal([IcmpType.EchoRequest, 0, 0x460b, 0x1468, 1]);
    expect(p.checksumOk()).to.equal(true);
    expect(p.payload.length).to.equal(56);
    expect(parseIcmp(ECHO_REQUEST)).to.deep.equal({ kind: "echo-request", id: 0x1468, seq: 1, data: PING_DATA });
  });

  it("emits the real echo reply byte for byte, checksum included", () => {
    const req = parseIcmp(ECHO_REQUEST);
    if (req instanceof WireError || req.kind !== "echo-request") throw new Error("not an echo request");
    const reply: IcmpRepr = { kind: "echo-reply", id: req.id, seq: req.seq, data: req.data };
    expect(toHex(message(reply))).to.equal(toHex(ECHO_REPLY));
    expect(toHex(message({ ...reply, kind: "echo-request" }))).to.equal(toHex(ECHO_REQUEST));
  });

  it("turns a request into a reply in place (data already where it belongs)", () => {
    const buf = Uint8Array.from(ECHO_REQUEST);
    const req = parseIcmp(buf);
    if (req instanceof WireError || req.kind !== "echo-request") throw new Error("not an echo request");
    expect(emitIcmp({ kind: "echo-reply", id: req.id, seq: req.seq, data: req.data }, buf)).to.equal(64);
    expect(toHex(buf)).to.equal(toHex(ECHO_REPLY));
  });

  it("decodes fragmentation needed with its next-hop MTU and the quoted datagram", () => {
    const r = parseIcmp(FRAG_NEEDED);
    expect(r).to.deep.equal({ kind: "dest-unreachable", code: IcmpUnreachCode.FragNeeded, nextHopMtu: 1400, original: QUOTED });
    const p = new IcmpPacket(FRAG_NEEDED);
    expect([p.type, p.code, p.checksum, p.nextHopMtu, p.rest]).to.deep.equal([3, 4, 0x34e4, 1400, 1400]);
    // The quoted header parses once truncation is allowed; ports are the first 4 bytes after it.
    const orig = parseIpv4((r as { original: Uint8Array }).original, { allowTruncated: true });
    if (orig instanceof WireError) throw new Error(orig.toString());
    expect([orig.src, orig.dst, orig.protocol, orig.payloadLength]).to.deep.equal([0xc0a84103, 0x5db8d822, IpProtocol.UDP, 1480]);
    expect(toHex(message(r as IcmpRepr))).to.equal(toHex(FRAG_NEEDED));
  });

  it("decodes port unreachable (no MTU) and time exceeded, and emits them byte for byte", () => {
    const unreach = parseIcmp(PORT_UNREACHABLE);
    expect(unreach).to.deep.equal({ kind: "dest-unreachable", code: IcmpUnreachCode.Port, nextHopMtu: 0, original: QUOTED });
    const ttl = parseIcmp(TTL_EXCEEDED);
    expect(ttl).to.deep.equal({ kind: "time-exceeded", code: 0, original: QUOTED });
    expect(toHex(message(unreach as IcmpRepr))).to.equal(toHex(PORT_UNREACHABLE));
    expect(toHex(message(ttl as IcmpRepr))).to.equal(toHex(TTL_EXCEEDED));
  });

  it("writes the next-hop MTU only for code 4", () => {
    const r: IcmpRepr = { kind: "dest-unreachable", code: IcmpUnreachCode.Host, nextHopMtu: 1400, original: QUOTED };
    expect(new IcmpPacket(message(r)).rest).to.equal(0);
  });

  it("keeps an echo with a non-zero code, and unnamed types, as kind other", () => {
    const odd = Uint8Array.from(ECHO_REQUEST);
    odd[1] = 1;
    new IcmpPacket(odd).fillChecksum();
    expect(parseIcmp(odd)).to.deep.equal({ kind: "other", type: 8, code: 1, rest: 0x14680001, data: PING_DATA });
    // Timestamp request (type 13): id, seq, three timestamps.
    const ts: IcmpRepr = { kind: "other", type: 13, code: 0, rest: 0x00010002, data: new Uint8Array(12).fill(7) };
    expect(parseIcmp(message(ts))).to.deep.equal(ts);
  });

  it("rejects a corrupted checksum unless told not to verify", () => {
    for (const good of [ECHO_REQUEST, FRAG_NEEDED, TTL_EXCEEDED]) {
      for (const i of [2, 5, good.length - 1]) {
        const bad = Uint8Array.from(good);
        bad[i] ^= 0x10;
        expect(reason(parseIcmp(bad))).to.equal("bad checksum");
        expect(new IcmpPacket(bad).checksumOk()).to.equal(false);
        expect(parseIcmp(bad, { verifyChecksum: false })).to.not.be.instanceOf(WireError);
      }
    }
  });

  it("rejects messages shorter than the 8-byte header", () => {
    for (let n = 0; n < ICMP_HEADER_LEN; n++) {
      expect(reason(parseIcmp(ECHO_REQUEST.subarray(0, n), { verifyChecksum: false }))).to.equal("truncated");
      expect(new IcmpPacket(ECHO_REQUEST.subarray(0, n)).check()).to.equal(false);
    }
  });

  it("checksums odd-length messages (RFC 1071 pads the last byte)", () => {
    fc.assert(
      fc.property(u16(), u16(), bytes(41).filter((d) => d.length % 2 === 1), (id, seq, data) => {
        const m = message({ kind: "echo-request", id, seq, data });
        expect(new IcmpPacket(m).checksumOk()).to.equal(true);
      }),
      { numRuns: 50 },
    );
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), fc.uint8Array({ maxLength: 60 }), (r, seed, junk) => {
        for (const input of [damaged(message(r), seed), junk]) {
          for (const opts of [undefined, { verifyChecksum: false }]) {
            const p = parseIcmp(input, opts);
            expect(p instanceof WireError || typeof p.kind === "string").to.equal(true);
          }
        }
      }),
    );
  });
});
