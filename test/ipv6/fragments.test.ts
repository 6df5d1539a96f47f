/** Tests of src/ipv6/fragments.ts: reassembly (RFC 8200 §4.5), overlaps (RFC 5722), atomic fragments (RFC 6946), timeout and bounds. */
import { expect } from "chai";
import fc from "fast-check";
import { fileURLToPath } from "node:url";
import { readPcapFile } from "../../src/pcap/reader.js";
import { WireError } from "../../src/common/wire-error.js";
import { emitFragmentHeader, walkExtensionHeaders } from "../../src/ipv6/ext.js";
import { Ipv6Reassembler, type ExpiredDatagram } from "../../src/ipv6/fragments.js";
import { parseIcmpv6 } from "../../src/ipv6/icmpv6.js";
import { parseIpv6 } from "../../src/ipv6/ipv6.js";
import { a6, cat, hex, ok, packet6, toHex } from "./helpers.js";
import { fragmentPacket, offer } from "./frag-support.js";

const FIXTURES = fileURLToPath(new URL("../../fixtures/pcaps/ipv6/", import.meta.url));

/** A UDP-over-IPv6 packet with `n` bytes of patterned payload (Next Header 17 at byte 6). */
function udpPacket(n: number, seed = 1): Uint8Array {
  const payload = new Uint8Array(n);
  for (let i = 0; i < n; i++) payload[i] = (i * 31 + seed) & 0xff;
  return packet6(17, payload);
}

describe("ipv6/fragments: reassembly (RFC 8200 §4.5, RFC 5722, RFC 6946)", () => {
  it("reassembles Linux's fragmented echo request from the capture into one valid ICMPv6 message", () => {
    const cap = readPcapFile(`${FIXTURES}frag-ping.pcap`);
    if (cap instanceof WireError) throw new Error(cap.toString());
    const r = new Ipv6Reassembler();
    const ip = cap.packets.slice(0, 3).map((p) => p.data.subarray(14));
    expect(offer(r, ip[0], 0)).to.equal(undefined);
    expect(offer(r, ip[1], 1)).to.equal(undefined);
    const whole = offer(r, ip[2], 2)!;
    expect(whole.length).to.equal(40 + 3008);
    const h = ok(parseIpv6(whole));
    expect([h.nextHeader, h.payloadLength]).to.deep.equal([58, 3008]);
    const echo = ok(parseIcmpv6(whole.subarray(40), h.src, h.dst)); // the checksum covers all 3008 bytes
    expect(echo.kind).to.equal("echo-request");
    expect(r.counters).to.include({ reassembled: 1, bytes: 0, datagrams: 0 });
  });

  it("reassembles in any order back to the original packet, byte for byte", () => {
    fc.assert(
      fc.property(fc.integer({ min: 17, max: 3000 }), fc.array(fc.nat(400), { minLength: 1, maxLength: 8 }), fc.nat(), (n, steps, seed) => {
        const whole = udpPacket(n);
        const cuts: number[] = [];
        let at = 0;
        for (const s of steps) {
          at += 8 * (1 + s / 8 | 0);
          if (at >= n) break;
          cuts.push(at);
        }
        const frags = fragmentPacket(whole, 40, 6, cuts, 7);
        const order = frags.map((_, i) => i).sort((x, y) => ((x * 7919 + seed) % 13) - ((y * 7919 + seed) % 13));
        const r = new Ipv6Reassembler();
        let out: Uint8Array | undefined;
        for (let k = 0; k < order.length; k++) {
          out = offer(r, frags[order[k]], k);
          if (k < order.length - 1) expect(out).to.equal(undefined);
        }
        expect(toHex(out!)).to.equal(toHex(whole));
        expect(r.counters.bytes).to.equal(0);
      }),
      { numRuns: 60 },
    );
  });

  it("keeps the first fragment's Unfragmentable Part and Next Header; later ones may differ (§4.5)", () => {
    const dest = hex("11 00 1e02 0000 0100"); // Destination Options (unfragmentable here), then UDP
    const whole = packet6(60, cat(dest, new Uint8Array(64).fill(9)));
    const [f0, f1] = fragmentPacket(whole, 48, 40, [32], 99);
    f1[48 + 0] = 6; // the later fragment's Fragment header says TCP: ignored
    const r = new Ipv6Reassembler();
    expect(offer(r, f1, 0)).to.equal(undefined);
    const out = offer(r, f0, 0)!;
    expect(toHex(out)).to.equal(toHex(whole));
    const c = ok(walkExtensionHeaders(out));
    expect([c.protocol, c.offset, c.fragmentAt]).to.deep.equal([17, 48, -1]);
  });

  it("processes an atomic fragment in isolation, even under the key of a pending datagram (RFC 6946 §4)", () => {
    const r = new Ipv6Reassembler();
    const whole = udpPacket(100);
    const [f0, f1] = fragmentPacket(whole, 40, 6, [48], 5);
    expect(offer(r, f0, 0)).to.equal(undefined);
    const atomic = packet6(44, cat(hex("1100 0000 00000005"), hex("abcdef0123456789")));
    const out = offer(r, atomic, 1)!;
    expect(toHex(out)).to.equal(toHex(packet6(17, hex("abcdef0123456789"))));
    expect(r.counters).to.include({ atomic: 1, datagrams: 1 });
    expect(toHex(offer(r, f1, 2)!)).to.equal(toHex(whole));
  });

  it("discards the whole datagram on an overlap and drops its later fragments until the timeout (RFC 5722 §4)", () => {
    const whole = udpPacket(96);
    const frags = fragmentPacket(whole, 40, 6, [32, 64], 11);
    const r = new Ipv6Reassembler();
    expect(offer(r, frags[0], 0)).to.equal(undefined);
    // A fragment at offset 24 overlapping the first one's last 8 bytes, with the same bytes.
    const overlapping = fragmentPacket(whole, 40, 6, [24, 48], 11)[1];
    expect(offer(r, overlapping, 1)).to.equal(undefined);
    expect(r.lastDrop).to.equal("overlap");
    expect(r.counters).to.include({ overlaps: 1, bytes: 0, datagrams: 1 });
    // Poisoned: the remaining fragments, which would complete it, are dropped too.
    expect(offer(r, frags[1], 2)).to.equal(undefined);
    expect(offer(r, frags[2], 3)).to.equal(undefined);
    expect(offer(r, frags[0], 4)).to.equal(undefined);
    expect(r.lastDrop).to.equal("poisoned");
    expect(r.counters.poisoned).to.equal(3);
    // After 60 s the key is free again.
    expect(r.expire(60_000)).to.equal(0); // a poisoned key is not counted as a timed-out datagram
    expect(r.counters.datagrams).to.equal(0);
    for (const f of frags.slice(0, 2)) expect(offer(r, f, 60_001)).to.equal(undefined);
    expect(toHex(offer(r, frags[2], 60_002)!)).to.equal(toHex(whole));
  });

  it("ignores an identical duplicate, but a contained fragment with other bytes is an overlap", () => {
    const whole = udpPacket(64);
    const [f0, f1] = fragmentPacket(whole, 40, 6, [32], 3);
    const r = new Ipv6Reassembler();
    offer(r, f0, 0);
    expect(offer(r, f0, 1)).to.equal(undefined);
    expect(r.lastDrop).to.equal("duplicate");
    expect(toHex(offer(r, f1, 2)!)).to.equal(toHex(whole));
    offer(r, f0, 3);
    const changed = Uint8Array.from(f0);
    changed[changed.length - 1] ^= 1;
    expect(offer(r, changed, 4)).to.equal(undefined);
    expect(r.lastDrop).to.equal("overlap");
  });

  it("drops a non-final fragment whose length is not a multiple of 8, pointing at Payload Length", () => {
    const r = new Ipv6Reassembler();
    const bad = packet6(44, cat(hex("1100 0001 00000001"), new Uint8Array(12)));
    expect(offer(r, bad, 0)).to.equal(undefined);
    expect([r.lastDrop, r.lastParamProblemPointer, r.counters.invalid]).to.deep.equal(["invalid", 4, 1]);
    const empty = packet6(44, hex("1100 0009 00000001")); // offset 8, M set, no data
    expect(offer(r, empty, 0)).to.equal(undefined);
    expect([r.lastDrop, r.lastParamProblemPointer]).to.deep.equal(["invalid", -1]);
  });

  it("drops a fragment that would make the packet exceed 65535 bytes of payload, pointing at Fragment Offset", () => {
    const r = new Ipv6Reassembler();
    const first = fragmentPacket(udpPacket(64), 40, 6, [32], 77)[0];
    offer(r, first, 0);
    const tail = new Uint8Array(48 + 16);
    tail.set(first.subarray(0, 40));
    emitFragmentHeader({ nextHeader: 17, fragmentOffset: 65520, moreFragments: false, id: 77 }, tail, 40);
    tail[4] = 0;
    tail[5] = 24;
    expect(offer(r, tail, 1)).to.equal(undefined);
    expect([r.lastDrop, r.lastParamProblemPointer]).to.deep.equal(["too-big", 42]);
    expect(r.counters).to.include({ tooBig: 1, datagrams: 0, bytes: 0 }); // the datagram went with it
    // With no extension header before the Fragment header, offset 65528 + 7 bytes is exactly 65535.
    const edge = new Uint8Array(48 + 7);
    edge.set(tail.subarray(0, 48));
    emitFragmentHeader({ nextHeader: 17, fragmentOffset: 65528, moreFragments: false, id: 78 }, edge, 40);
    edge[5] = 15;
    expect(offer(r, edge, 2)).to.equal(undefined);
    expect(r.lastDrop).to.equal(undefined); // buffered: 65528 + 7 = 65535
  });

  it("a second, different last fragment discards the datagram", () => {
    const whole = udpPacket(64);
    const [f0, f1] = fragmentPacket(whole, 40, 6, [32], 4);
    const r = new Ipv6Reassembler();
    offer(r, f1, 0);
    const longer = fragmentPacket(udpPacket(72), 40, 6, [32], 4)[1];
    expect(offer(r, longer, 1)).to.equal(undefined);
    expect([r.lastDrop, r.counters.datagrams]).to.deep.equal(["invalid", 0]);
    expect(offer(r, f0, 2)).to.equal(undefined); // a fresh datagram now
  });

  it("times out 60 s after the first fragment and reports those whose first fragment arrived (§4.5)", () => {
    const r = new Ipv6Reassembler();
    const a = fragmentPacket(udpPacket(64, 1), 40, 6, [32], 1);
    const b = fragmentPacket(udpPacket(64, 2), 40, 6, [32], 2);
    offer(r, a[0], 1000); // first fragment of a
    offer(r, b[1], 2000); // only the last fragment of b
    expect(r.nextExpiry()).to.equal(61_000);
    const seen: ExpiredDatagram[] = [];
    expect(r.expire(60_999, (d) => seen.push(d))).to.equal(0);
    offer(r, a[0], 30_000); // a duplicate does not refresh the timer
    expect(r.expire(61_000, (d) => seen.push(d))).to.equal(1);
    expect(seen.length).to.equal(1);
    expect(seen[0].src).to.deep.equal(a6("fd53:6b69:6666:0:5054:ff:fe12:3456"));
    expect(toHex(seen[0].firstFragment)).to.equal(toHex(a[0])); // rebuilt as it arrived
    expect(r.expire(62_000, (d) => seen.push(d))).to.equal(1);
    expect(seen.length).to.equal(1); // b had no first fragment: nothing to quote
    expect(r.counters).to.include({ timedOut: 2, datagrams: 0, bytes: 0 });
    expect(r.nextExpiry()).to.equal(Infinity);
  });

  it("stays within maxDatagrams and maxBytes, evicting the oldest", () => {
    const r = new Ipv6Reassembler({ maxDatagrams: 3, maxBytes: 4096 });
    for (let id = 0; id < 10; id++) offer(r, fragmentPacket(udpPacket(2000), 40, 6, [1000], id)[0], id);
    expect(r.counters.datagrams).to.be.at.most(3);
    expect(r.counters.bytes).to.be.at.most(4096);
    expect(r.counters.evicted).to.be.greaterThan(0);
    // A datagram larger than maxBytes on its own cannot be buffered.
    const small = new Ipv6Reassembler({ maxBytes: 512 });
    expect(offer(small, fragmentPacket(udpPacket(2000), 40, 6, [1000], 1)[0], 0)).to.equal(undefined);
    expect([small.lastDrop, small.counters.bytes]).to.deep.equal(["too-big", 0]);
    expect(() => new Ipv6Reassembler({ maxDatagrams: 0 })).to.throw(RangeError);
    expect(() => new Ipv6Reassembler({ timeoutMs: 0 })).to.throw(RangeError);
  });
});
