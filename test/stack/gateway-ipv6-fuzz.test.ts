/**
 * Fuzz of IPv6 frames through the whole stack (src/stack/gateway-ipv6.ts and what it
 * dispatches to: NDP, DHCPv6, DNS, the TCP layer, reassembly): valid frames of every kind the
 * gateway handles, with random bytes overwritten, truncated or extended, and raw garbage typed
 * IPv6. Nothing may throw, and every table a guest can fill stays within its bound.
 */
import { expect } from "chai";
import fc from "fast-check";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { RecordingChannel, GW_MAC, GUEST_MAC } from "../support/stack.js";
import { frame, ndpFrame, tcpSyn6, udpFrame } from "../support/frames6.js";
import { NextHeader } from "../../src/ipv6/ipv6.js";
import { IPV6_ALL_ROUTERS, IPV6_UNSPECIFIED, linkLocalFromMac, multicastMac6, parseIpv6Address, solicitedNode } from "../../src/ipv6/addr.js";
import { emitFragmentHeader } from "../../src/ipv6/ext.js";
import { emitEthernet, EtherType } from "../../src/ethernet/ethernet.js";

const GW6 = parseIpv6Address("fd73:6b69:6666::1")!;
const GUEST6 = parseIpv6Address("fd73:6b69:6666::77")!;
const REMOTE6 = parseIpv6Address("2001:db8::1")!;

function fragment(id: number, offset: number, more: boolean, data: Uint8Array) {
  const b = new Uint8Array(8 + data.length);
  emitFragmentHeader({ nextHeader: NextHeader.UDP, fragmentOffset: offset, moreFragments: more, id }, b, 0);
  b.set(data, 8);
  return frame(GUEST6, GW6, NextHeader.Fragment, b);
}

const tcpSyn = (dst = REMOTE6) => tcpSyn6(GUEST6, 40000, dst, 80);

const TEMPLATES: Uint8Array[] = [
  ndpFrame(GUEST6, solicitedNode(GW6), { kind: "ns", target: GW6, options: [{ type: "source-lla", mac: GUEST_MAC }] }, multicastMac6(solicitedNode(GW6))),
  ndpFrame(IPV6_UNSPECIFIED, solicitedNode(GUEST6), { kind: "ns", target: GUEST6, options: [] }, multicastMac6(solicitedNode(GUEST6))),
  ndpFrame(IPV6_UNSPECIFIED, IPV6_ALL_ROUTERS, { kind: "rs", options: [] }, multicastMac6(IPV6_ALL_ROUTERS)),
  ndpFrame(linkLocalFromMac(GUEST_MAC), GW6, { kind: "na", router: false, solicited: true, override: true, target: GUEST6, options: [{ type: "target-lla", mac: GUEST_MAC }] }),
  udpFrame(GUEST6, 5353, GW6, 53, new Uint8Array(30)),
  udpFrame(linkLocalFromMac(GUEST_MAC), 546, parseIpv6Address("ff02::1:2")!, 547, Uint8Array.from([11, 1, 2, 3, 0, 8, 0, 2, 0, 0])),
  udpFrame(GUEST6, 4000, REMOTE6, 9, new Uint8Array(12)),
  fragment(1, 0, true, new Uint8Array(64)),
  fragment(1, 64, false, new Uint8Array(16)),
  tcpSyn(),
  tcpSyn(GW6),
];

describe("stack: fuzz of IPv6 frames", () => {
  it("mutated and random IPv6 frames never throw, and the tables stay within their bounds", () => {
    const stack = new NetworkStack({ maxNeighbors: 16 });
    const ch = new RecordingChannel();
    const port = stack.attach(ch);
    const tcp = new TcpLayer(stack, { maxFlows: 8, maxHalfOpen: 8 });
    tcp.forwarder = (flow) => flow.refuse();
    try {
      fc.assert(
        fc.property(
          fc.nat(TEMPLATES.length - 1),
          fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 6 }),
          fc.integer({ min: -40, max: 40 }),
          fc.uint8Array({ maxLength: 16 }),
          (which, edits, resize, srcTail) => {
            let f = Uint8Array.from(TEMPLATES[which]);
            // A new source address each time (inside the prefix) fills the neighbour cache.
            if (f.length >= 14 + 40) f.set(srcTail.subarray(0, 8), 14 + 16);
            for (const [at, v] of edits) if (at < f.length) f[at] = v;
            if (resize < 0) f = f.subarray(0, Math.max(0, f.length + resize));
            else if (resize > 0) {
              const g = new Uint8Array(f.length + resize);
              g.set(f);
              f = g;
            }
            ch.sent.length = 0;
            expect(() => stack.receive(port, f)).not.to.throw();
          },
        ),
        { numRuns: 4000 },
      );
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
          const f = new Uint8Array(14 + bytes.length);
          emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv6 }, f);
          f.set(bytes, 14);
          if (f.length > 14) f[14] = 0x60 | (f[14] & 0x0f);
          expect(() => stack.receive(port, f)).not.to.throw();
        }),
        { numRuns: 2000 },
      );
      const gw = stack.ipv6!;
      expect(gw.neighbors.size).to.be.at.most(16);
      expect(gw.fragments.counters.datagrams).to.be.at.most(gw.fragments.limits.maxDatagrams);
      expect(gw.fragments.counters.bytes).to.be.at.most(gw.fragments.limits.maxBytes);
      expect(tcp.size).to.be.at.most(8);
      // The fuzz reached the deeper layers, not only the first checks.
      const c = stack.counters;
      expect(c.ndpSolicitations + c.routerSolicitations).to.be.greaterThan(0);
      expect(c.dropped("ipv6-malformed") + c.dropped("ipv6-ext-header")).to.be.greaterThan(0);
    } finally {
      tcp.close();
      stack.close();
    }
  });
});
