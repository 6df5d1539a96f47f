/**
 * The gateway's first answers, frame by frame: ARP for the gateway and host alias, ICMP echo
 * from the gateway, and counted drops for everything not for us or malformed. The stack is
 * driven directly through `receive` with a recording channel (no I/O, no timers).
 */
import { expect } from "chai";
import fc from "fast-check";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { emitEthernet, parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp, parseArp, ARP_LEN } from "../../src/ethernet/arp.js";
import { emitIpv4, parseIpv4, IpProtocol, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitIcmp, icmpLen, parseIcmp, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { parseIpv4 as parseIp } from "../../src/ipv4/ipv4.js";
import { emitUdp, parseUdp } from "../../src/ipv4/udp.js";
import { sendUdp } from "../../src/stack/gateway-udp.js";
import { isWireError } from "../../src/common/wire-error.js";
import { parseIpv4Address as ip4 } from "../../src/common/addr.js";
import { GUEST_MAC, GW_MAC, GUEST_IP, GW_IP, HOST_IP, RecordingChannel } from "../support/stack.js";

const Recorder = RecordingChannel;
type Recorder = RecordingChannel;

function setup(opts: ConstructorParameters<typeof NetworkStack>[0] = {}): { stack: NetworkStack; ch: Recorder; port: Port } {
  const stack = new NetworkStack(opts);
  const ch = new Recorder();
  const port = stack.attach(ch);
  return { stack, ch, port };
}

function arpRequest(targetIp: number, dst = 0xffff_ffff_ffff): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst, src: GUEST_MAC, ethertype: EtherType.ARP }, f);
  emitArp({ op: ArpOp.Request, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: 0, targetIp }, f, o);
  return f;
}

function ipFrame(ip: Partial<Ipv4Repr> & { dst: number; protocol: number }, l4: Uint8Array, dstMac = GW_MAC): Uint8Array {
  const repr: Ipv4Repr = {
    src: GUEST_IP, ttl: 64, id: 7, tos: 0, df: true, mf: false, fragmentOffset: 0,
    payloadLength: l4.length, options: new Uint8Array(0), ...ip,
  };
  const f = new Uint8Array(14 + 20 + l4.length);
  const o = emitEthernet({ dst: dstMac, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
  const h = emitIpv4(repr, f, o);
  f.set(l4, o + h);
  return f;
}

function echoRequest(dst: number, data = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])): Uint8Array {
  const icmp: IcmpRepr = { kind: "echo-request", id: 0x1234, seq: 9, data };
  const b = new Uint8Array(icmpLen(icmp));
  emitIcmp(icmp, b, 0);
  return ipFrame({ dst, protocol: IpProtocol.ICMP }, b);
}

describe("stack/gateway: ARP (RFC 826)", () => {
  for (const [name, target] of [["gateway", GW_IP], ["host alias", HOST_IP]] as const) {
    it(`answers a who-has for the ${name} with the gateway MAC`, () => {
      const { stack, ch, port } = setup();
      stack.receive(port, arpRequest(target));
      expect(ch.sent.length).to.equal(1);
      const eth = parseEthernet(ch.sent[0]);
      if (isWireError(eth)) throw new Error(eth.reason);
      expect(eth).to.deep.equal({ dst: GUEST_MAC, src: GW_MAC, ethertype: EtherType.ARP });
      expect(ch.sent[0].length).to.equal(60); // padded to the Ethernet minimum
      expect(parseArp(ch.sent[0].subarray(14, 14 + ARP_LEN))).to.deep.equal({
        op: ArpOp.Reply, senderMac: GW_MAC, senderIp: target, targetMac: GUEST_MAC, targetIp: GUEST_IP,
      });
      expect(stack.neighbors.lookup(GUEST_IP)).to.deep.include({ mac: GUEST_MAC });
    });
  }

  it("does not answer for the host alias when host loopback is disabled", () => {
    const { stack, ch, port } = setup({ hostAliasIp: null });
    stack.receive(port, arpRequest(HOST_IP));
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("arp-not-for-us")).to.equal(1);
  });

  it("ignores requests for other addresses and replies from guests, counting them", () => {
    const { stack, ch, port } = setup();
    stack.receive(port, arpRequest(ip4("192.168.65.9")!));
    const reply = arpRequest(GW_IP);
    reply[14 + 7] = ArpOp.Reply;
    stack.receive(port, reply);
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("arp-not-for-us")).to.equal(2);
  });

  it("answers the same request byte for byte every time", () => {
    const { stack, ch, port } = setup();
    stack.receive(port, arpRequest(GW_IP));
    stack.receive(port, arpRequest(GW_IP));
    expect(ch.sent[0]).to.deep.equal(ch.sent[1]);
  });
});

describe("stack/gateway: ICMP echo (RFC 792, RFC 1122 §3.2.2.6)", () => {
  it("replies to an echo request to the gateway with the same id, seq and data", () => {
    const { stack, ch, port } = setup();
    const data = Uint8Array.from({ length: 56 }, (_, i) => i);
    stack.receive(port, echoRequest(GW_IP, data));
    expect(ch.sent).to.have.length(1);
    const f = ch.sent[0];
    const eth = parseEthernet(f);
    if (isWireError(eth)) throw new Error(eth.reason);
    expect(eth.dst).to.equal(GUEST_MAC);
    const ip = parseIp(f.subarray(14));
    if (isWireError(ip)) throw new Error(ip.reason);
    expect(ip).to.deep.include({ src: GW_IP, dst: GUEST_IP, protocol: IpProtocol.ICMP, ttl: 64 });
    const icmp = parseIcmp(f.subarray(34));
    if (isWireError(icmp)) throw new Error(icmp.reason);
    expect(icmp.kind).to.equal("echo-reply");
    if (icmp.kind !== "echo-reply") return;
    expect([icmp.id, icmp.seq]).to.deep.equal([0x1234, 9]);
    expect(Uint8Array.from(icmp.data)).to.deep.equal(data);
    expect(stack.counters.icmpEchoReplies).to.equal(1);
  });

  it("replies from the host alias address when pinged there", () => {
    const { stack, ch, port } = setup();
    stack.receive(port, echoRequest(HOST_IP));
    const ip = parseIp(ch.sent[0].subarray(14));
    if (isWireError(ip)) throw new Error(ip.reason);
    expect(ip.src).to.equal(HOST_IP);
  });

  it("drops echo requests with a bad ICMP checksum", () => {
    const { stack, ch, port } = setup();
    const f = echoRequest(GW_IP);
    f[34 + 8] ^= 0xff; // data byte: the ICMP checksum no longer matches
    stack.receive(port, f);
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("icmp-malformed")).to.equal(1);
  });

  it("drops IPv4 with a bad header checksum", () => {
    const { stack, ch, port } = setup();
    const f = echoRequest(GW_IP);
    f[14 + 8] = 1; // TTL changed, checksum not
    stack.receive(port, f);
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("ipv4-bad-checksum")).to.equal(1);
  });

  it("buffers a lone fragment for reassembly: no reply, no drop (whole datagrams: test/ipv4/fragments.test.ts)", () => {
    const { stack, ch, port } = setup();
    stack.receive(port, ipFrame({ dst: GW_IP, protocol: IpProtocol.ICMP, mf: true, df: false }, new Uint8Array(16)));
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.drops).to.deep.equal({});
    expect(stack.fragments.counters).to.deep.include({ datagrams: 1, bytes: 16, reassembled: 0 });
  });
});

describe("stack/gateway: frames not for us", () => {
  it("drops unicast frames to another MAC", () => {
    const { stack, ch, port } = setup();
    const f = echoRequest(GW_IP);
    f[0] = 0x52; // destination MAC is no longer the gateway's
    stack.receive(port, f);
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("eth-not-for-us")).to.equal(1);
  });

  it("drops unknown EtherTypes, and malformed IPv6 (IPv6 itself: gateway-ipv6.test.ts)", () => {
    const { stack, ch, port } = setup();
    const f = new Uint8Array(60);
    emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv6 }, f);
    stack.receive(port, f);
    emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: 0x88b5 }, f);
    stack.receive(port, f);
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("ipv6-malformed")).to.equal(1);
    expect(stack.counters.dropped("eth-unknown-type")).to.equal(1);
  });

  it("drops runts and garbage without throwing", () => {
    const { stack, ch, port } = setup();
    stack.receive(port, new Uint8Array(3));
    expect(stack.counters.dropped("eth-malformed")).to.equal(1);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, aimed) => {
        const f = Uint8Array.from(bytes);
        if (aimed && f.length >= 14) {
          // Aim the garbage at the gateway so it reaches the deeper parsers.
          f.set([0x02, 0x50, 0, 0, 0, 1], 0);
          f[12] = 0x08;
          f[13] = f[13] & 1 ? 0x06 : 0x00;
        }
        stack.receive(port, f);
      }),
      { numRuns: 2000 },
    );
    // Nothing valid was asked, so nothing but ARP replies to accidental valid requests went out.
    for (const s of ch.sent) expect(parseEthernet(s)).to.not.be.instanceOf(Error);
  });
});

describe("stack/gateway: UDP services (RFC 768, RFC 1122 §4.1.3)", () => {
  function udpFrame(dst: number, dstPort: number, payload: Uint8Array, dstMac = GW_MAC, src = GUEST_IP): Uint8Array {
    const u = new Uint8Array(8 + payload.length);
    emitUdp({ srcPort: 5000, dstPort, payload }, u, 0, src, dst);
    return ipFrame({ dst, src, protocol: IpProtocol.UDP }, u, dstMac);
  }

  it("answers a datagram to an unbound gateway port with ICMP port unreachable quoting it", () => {
    const { stack, ch, port } = setup();
    const f = udpFrame(GW_IP, 9999, Uint8Array.from([1, 2, 3]));
    stack.receive(port, f);
    expect(ch.sent).to.have.length(1);
    const ip = parseIp(ch.sent[0].subarray(14));
    if (isWireError(ip)) throw new Error(ip.reason);
    expect(ip).to.deep.include({ src: GW_IP, dst: GUEST_IP, protocol: IpProtocol.ICMP });
    const icmp = parseIcmp(ch.sent[0].subarray(34));
    if (isWireError(icmp) || icmp.kind !== "dest-unreachable") throw new Error("expected dest-unreachable");
    expect(icmp.code).to.equal(3);
    // The quote: the offending IP header and the first 8 bytes of its data.
    expect(Uint8Array.from(icmp.original)).to.deep.equal(f.subarray(14, 14 + 20 + 8));
    expect(stack.counters.dropped("udp-no-service")).to.equal(1);
  });

  it("delivers to a bound service, including limited broadcasts from 0.0.0.0 (DHCP)", () => {
    const { stack, port } = setup();
    const got: Array<{ srcIp: number; srcPort: number; dstIp: number; text: string }> = [];
    stack.bindUdp(67, (_s, d) => got.push({ srcIp: d.srcIp, srcPort: d.srcPort, dstIp: d.dstIp, text: new TextDecoder().decode(d.payload) }));
    stack.receive(port, udpFrame(0xffff_ffff, 67, new TextEncoder().encode("discover"), 0xffff_ffff_ffff, 0));
    stack.receive(port, udpFrame(GW_IP, 67, new TextEncoder().encode("renew")));
    expect(got).to.deep.equal([
      { srcIp: 0, srcPort: 5000, dstIp: 0xffff_ffff, text: "discover" },
      { srcIp: GUEST_IP, srcPort: 5000, dstIp: GW_IP, text: "renew" },
    ]);
    expect(() => stack.bindUdp(67, () => {})).to.throw(/already bound/);
  });

  it("sends a datagram with a valid checksum", () => {
    const { stack, ch, port } = setup();
    expect(sendUdp(stack, port, GUEST_MAC, GW_IP, 53, GUEST_IP, 40000, Uint8Array.from([9, 8, 7]))).to.equal(true);
    const u = parseUdp(ch.sent[0].subarray(34), GW_IP, GUEST_IP);
    if (isWireError(u)) throw new Error(u.reason);
    expect([u.srcPort, u.dstPort, [...u.payload]]).to.deep.equal([53, 40000, [9, 8, 7]]);
  });

  it("drops UDP with a bad checksum and datagrams for others without a forwarder", () => {
    const { stack, ch, port } = setup();
    const f = udpFrame(GW_IP, 9999, Uint8Array.from([1, 2, 3]));
    f[f.length - 1] ^= 0xff;
    stack.receive(port, f);
    stack.receive(port, udpFrame(ip4("10.9.9.9")!, 53, Uint8Array.from([1])));
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("udp-malformed")).to.equal(1);
    expect(stack.counters.dropped("udp-no-service")).to.equal(1);
  });
});
