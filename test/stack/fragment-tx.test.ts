/**
 * The gateway's own packets over the MTU go in fragments (src/stack/fragment-tx.ts): an echo
 * request of 3,000 bytes arrives in fragments, is reassembled, and its reply leaves in fragments
 * no larger than the link MTU that reassemble (with skiff's own reassemblers, which follow RFC 791
 * §3.2 and RFC 8200 §4.5) into a valid echo reply carrying the request's data.
 */
import { expect } from "chai";
import { NetworkStack } from "../../src/stack/stack.js";
import { RecordingChannel, GUEST_MAC, GW_MAC, GUEST_IP, GW_IP } from "../support/stack.js";
import { emitEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { emitIpv4, IpProtocol, parseIpv4, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitIcmp, icmpLen, parseIcmp, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { FragmentReassembler } from "../../src/ipv4/fragments.js";
import { Ipv6Reassembler } from "../../src/ipv6/fragments.js";
import { NextHeader } from "../../src/ipv6/ipv6.js";
import { emitIcmpv6, icmpv6Len, parseIcmpv6, type Icmpv6Repr } from "../../src/ipv6/icmpv6.js";
import { parseIpv6Address, type Ipv6Addr } from "../../src/ipv6/addr.js";
import { isWireError } from "../../src/common/wire-error.js";
import { frame } from "../support/frames6.js";
import { fragmentPacket, offer } from "../ipv6/frag-support.js";

const DATA = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff);

/** IPv4 fragments of `l4` (protocol ICMP) from the guest to `dst`, `step` data bytes each. */
function ipv4Fragments(dst: number, l4: Uint8Array, step: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < l4.length; at += step) {
    const n = Math.min(step, l4.length - at);
    const repr: Ipv4Repr = { src: GUEST_IP, dst, protocol: IpProtocol.ICMP, ttl: 64, id: 99, tos: 0, df: false, mf: at + n < l4.length, fragmentOffset: at, payloadLength: n, options: new Uint8Array(0) };
    const f = new Uint8Array(14 + 20 + n);
    const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
    const h = emitIpv4(repr, f, o);
    f.set(l4.subarray(at, at + n), o + h);
    out.push(f);
  }
  return out;
}

describe("stack: the gateway's own packets over the MTU go in fragments (RFC 791 §3.2, RFC 8200 §4.5)", () => {
  it("IPv4: a 3,000-byte echo to the gateway is answered in fragments of at most the MTU that reassemble to the reply", () => {
    const stack = new NetworkStack({ ipv6: false });
    const ch = new RecordingChannel(1500);
    const port = stack.attach(ch);
    try {
      const req: IcmpRepr = { kind: "echo-request", id: 0x4242, seq: 5, data: DATA };
      const b = new Uint8Array(icmpLen(req));
      emitIcmp(req, b, 0);
      for (const f of ipv4Fragments(GW_IP, b, 1480)) stack.receive(port, f);
      const out = ch.sent.filter((f) => f[12] === 0x08 && f[13] === 0x00);
      expect(out.length).to.equal(3);
      const r = new FragmentReassembler();
      let whole: Uint8Array | undefined;
      for (const f of out) {
        expect(f.length).to.be.at.most(1514);
        const ip = parseIpv4(f.subarray(14));
        if (isWireError(ip)) throw new Error(`fragment does not parse: ${ip.toString()}`);
        expect(ip.df).to.equal(false);
        whole = r.add(ip, f.subarray(34, 14 + 20 + ip.payloadLength), 0) ?? whole;
      }
      expect(whole, "the fragments did not reassemble").to.not.equal(undefined);
      const reply = parseIcmp(whole!);
      if (isWireError(reply) || reply.kind !== "echo-reply") throw new Error("not an echo reply");
      expect([reply.id, reply.seq]).to.deep.equal([0x4242, 5]);
      expect(Buffer.from(reply.data).equals(Buffer.from(DATA))).to.equal(true);
      expect(stack.counters.txFragmented).to.equal(1);
    } finally {
      stack.close();
    }
  });

  it("IPv6: a 3,000-byte echo to the gateway's ULA is answered in fragments that reassemble to the reply", () => {
    const stack = new NetworkStack({});
    const ch = new RecordingChannel(1500);
    const port = stack.attach(ch);
    try {
      const gw = parseIpv6Address("fd73:6b69:6666::1")!;
      const guest: Ipv6Addr = parseIpv6Address("fd73:6b69:6666:0:5054:ff:fe12:3456")!;
      const req: Icmpv6Repr = { kind: "echo-request", id: 0x77, seq: 3, data: DATA };
      const b = new Uint8Array(icmpv6Len(req));
      emitIcmpv6(req, b, 0, guest, gw);
      const whole = frame(guest, gw, NextHeader.ICMPv6, b).subarray(14);
      for (const f of fragmentPacket(whole, 40, 6, [1448, 2896], 0x1234)) {
        const eth = new Uint8Array(14 + f.length);
        emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv6 }, eth);
        eth.set(f, 14);
        stack.receive(port, eth);
      }
      const out = ch.sent.filter((f) => f[12] === 0x86 && f[13] === 0xdd && f[14 + 6] === 44);
      expect(out.length).to.equal(3);
      const r = new Ipv6Reassembler();
      let got: Uint8Array | undefined;
      for (const f of out) {
        expect(f.length).to.be.at.most(1514);
        got = offer(r, f.subarray(14), 0) ?? got;
      }
      expect(got, "the fragments did not reassemble").to.not.equal(undefined);
      expect(got![6]).to.equal(NextHeader.ICMPv6);
      const reply = parseIcmpv6(got!.subarray(40), gw, guest);
      if (isWireError(reply) || reply.kind !== "echo-reply") throw new Error(`not an echo reply: ${JSON.stringify(reply)}`);
      expect([reply.id, reply.seq]).to.deep.equal([0x77, 3]);
      expect(Buffer.from(reply.data).equals(Buffer.from(DATA))).to.equal(true);
      expect(stack.counters.txFragmented).to.equal(1);
    } finally {
      stack.close();
    }
  });
});
