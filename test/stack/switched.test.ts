/**
 * Two guests on one network: the stack behind the switch (`attachSwitch`), guests on memory
 * pairs driven by hand-built frames. Both reach the gateway (ARP, DHCP with a lease each),
 * reach each other directly, and frames between them never reach the stack.
 */
import { expect } from "chai";
import { NetworkStack } from "../../src/stack/stack.js";
import { attachSwitch, attachSwitchDetailed, internalLink } from "../../src/stack/switched.js";
import { DhcpService } from "../../src/stack/dhcp-service.js";
import { memoryPair } from "../../src/link/memory.js";
import type { BaseFrameChannel } from "../../src/common/frame-channel.js";
import { emitEthernet, parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp, parseArp, ARP_LEN } from "../../src/ethernet/arp.js";
import { emitIpv4, parseIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { emitIcmp, icmpLen, parseIcmp, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { emitUdp, parseUdp } from "../../src/ipv4/udp.js";
import { DhcpMessageType, DhcpOption, dhcpLen, emitDhcp, messageType, parseDhcp, type DhcpRepr } from "../../src/dhcp/wire.js";
import { isWireError } from "../../src/common/wire-error.js";
import { MAC_BROADCAST, parseIpv4Address, parseMac } from "../../src/common/addr.js";
import { GUEST_MAC, GUEST_IP, GW_MAC, GW_IP } from "../support/stack.js";
import { until, collectFrames } from "../support/wait.js";

const B_MAC = parseMac("52:54:00:12:34:57")!;
const B_IP = parseIpv4Address("192.168.65.4")!;

interface Guest {
  mac: number;
  ip: number;
  ch: BaseFrameChannel;
  got: Uint8Array[];
}

function setup() {
  const stack = new NetworkStack({ now: () => 0 });
  const { sw, stackPort, stackSwitchPort } = attachSwitchDetailed(stack);
  const guest = (mac: number, ip: number): Guest => {
    const [g, s] = memoryPair();
    sw.addPort(s);
    return { mac, ip, ch: g, got: collectFrames(g) };
  };
  const a = guest(GUEST_MAC, GUEST_IP);
  const b = guest(B_MAC, B_IP);
  return { stack, sw, stackPort, stackSwitchPort, a, b };
}

function arpRequest(from: Guest, targetIp: number): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst: MAC_BROADCAST, src: from.mac, ethertype: EtherType.ARP }, f);
  emitArp({ op: ArpOp.Request, senderMac: from.mac, senderIp: from.ip, targetMac: 0, targetIp }, f, o);
  return f;
}

function ipFrame(from: Guest, dstMac: number, dst: number, protocol: number, l4: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + 20 + l4.length);
  const o = emitEthernet({ dst: dstMac, src: from.mac, ethertype: EtherType.IPv4 }, f);
  const h = emitIpv4(
    { src: from.ip, dst, protocol, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: l4.length, options: new Uint8Array(0) },
    f,
    o,
  );
  f.set(l4, o + h);
  return f;
}

function ping(from: Guest, dstMac: number, dst: number, seq = 1): Uint8Array {
  const icmp: IcmpRepr = { kind: "echo-request", id: 0x77, seq, data: Uint8Array.from([1, 2, 3, 4]) };
  const b = new Uint8Array(icmpLen(icmp));
  emitIcmp(icmp, b, 0);
  return ipFrame(from, dstMac, dst, IpProtocol.ICMP, b);
}

function dhcpDiscover(from: Guest): Uint8Array {
  const repr: DhcpRepr = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: from.mac % 0x1_0000_0000, secs: 0, broadcast: false,
    ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: from.mac, sname: "", file: "",
    options: [{ code: DhcpOption.MessageType, data: Uint8Array.of(DhcpMessageType.Discover) }],
  };
  const payload = new Uint8Array(dhcpLen(repr));
  emitDhcp(repr, payload);
  const udpLen = 8 + payload.length;
  const f = new Uint8Array(14 + 20 + udpLen);
  let o = emitEthernet({ dst: MAC_BROADCAST, src: from.mac, ethertype: EtherType.IPv4 }, f);
  o += emitIpv4(
    { src: 0, dst: 0xffff_ffff, protocol: IpProtocol.UDP, ttl: 64, id: 2, tos: 0, df: false, mf: false, fragmentOffset: 0, payloadLength: udpLen, options: new Uint8Array(0) },
    f,
    o,
  );
  emitUdp({ srcPort: 68, dstPort: 67, payload }, f, o, 0, 0xffff_ffff);
  return f;
}

function ethOf(f: Uint8Array) {
  const eth = parseEthernet(f);
  if (isWireError(eth)) throw new Error(eth.reason);
  return eth;
}

/** Let queued memory-pair deliveries run (each hop is one setImmediate). */
const settle = () => new Promise((r) => setTimeout(r, 20));

describe("stack/switched: two guests and the stack on one switch", () => {
  it("both guests get ARP replies for the gateway, each on its own port only", async () => {
    const { a, b, stack } = setup();
    a.ch.send(arpRequest(a, GW_IP));
    await until(() => a.got.length === 1);
    b.ch.send(arpRequest(b, GW_IP));
    await until(() => b.got.some((f) => ethOf(f).src === GW_MAC));
    for (const g of [a, b]) {
      const replies = g.got.filter((f) => ethOf(f).src === GW_MAC);
      expect(replies).to.have.length(1);
      expect(ethOf(replies[0])).to.deep.equal({ dst: g.mac, src: GW_MAC, ethertype: EtherType.ARP });
      expect(parseArp(replies[0].subarray(14, 14 + ARP_LEN))).to.deep.include({ op: ArpOp.Reply, senderMac: GW_MAC, senderIp: GW_IP, targetMac: g.mac });
    }
    // Each guest's broadcast request was flooded to the other guest too.
    expect(a.got.filter((f) => ethOf(f).src === B_MAC)).to.have.length(1);
    expect(b.got.filter((f) => ethOf(f).src === GUEST_MAC)).to.have.length(1);
    expect(stack.counters.arpReplies).to.equal(2);
    expect(stack.neighbors.lookup(B_IP)).to.deep.include({ mac: B_MAC });
  });

  it("A pings B directly: B receives the echo request unchanged, the stack never sees it", async () => {
    const { a, b, stack, sw } = setup();
    // Both guests make themselves known (a gratuitous-style broadcast each).
    a.ch.send(arpRequest(a, B_IP));
    b.ch.send(arpRequest(b, GUEST_IP));
    await until(() => a.got.length >= 1 && b.got.length >= 1);
    const rxBefore = stack.counters.rxFrames;
    const f = ping(a, B_MAC, B_IP);
    a.ch.send(f);
    await until(() => b.got.length === 2);
    expect(b.got[1]).to.deep.equal(f);
    const icmp = parseIcmp(b.got[1].subarray(34));
    if (isWireError(icmp)) throw new Error(icmp.reason);
    expect(icmp.kind).to.equal("echo-request");
    await settle();
    expect(stack.counters.rxFrames, "frames delivered to the stack").to.equal(rxBefore);
    expect(stack.counters.icmpEchoReplies ?? 0).to.equal(0);
    expect(sw.counters.unicast).to.equal(1);
  });

  it("a broadcast from A reaches B and the gateway", async () => {
    const { a, b, stack } = setup();
    a.ch.send(arpRequest(a, GW_IP));
    await until(() => a.got.length === 1 && b.got.length === 1);
    expect(ethOf(b.got[0]).src).to.equal(GUEST_MAC);
    expect(stack.counters.rxFrames).to.equal(1);
    expect(stack.counters.arpRequests).to.equal(1);
  });

  it("pings to the gateway from either guest are answered to that guest", async () => {
    const { a, b } = setup();
    a.ch.send(ping(a, GW_MAC, GW_IP, 1));
    b.ch.send(ping(b, GW_MAC, GW_IP, 2));
    await until(() => a.got.length === 1 && b.got.length === 1);
    for (const [g, seq] of [[a, 1], [b, 2]] as const) {
      expect(ethOf(g.got[0])).to.deep.include({ dst: g.mac, src: GW_MAC });
      const ip = parseIpv4(g.got[0].subarray(14));
      if (isWireError(ip)) throw new Error(ip.reason);
      expect([ip.src, ip.dst]).to.deep.equal([GW_IP, g.ip]);
      const icmp = parseIcmp(g.got[0].subarray(34));
      if (isWireError(icmp)) throw new Error(icmp.reason);
      expect(icmp).to.deep.include({ kind: "echo-reply", seq });
    }
  });

  it("each guest gets its own DHCP lease", async () => {
    const { a, b, stack } = setup();
    new DhcpService(stack);
    a.ch.send(dhcpDiscover(a));
    b.ch.send(dhcpDiscover(b));
    const offers = (g: Guest) => g.got.filter((f) => ethOf(f).src === GW_MAC);
    await until(() => offers(a).length === 1 && offers(b).length === 1);
    const yiaddr = (g: Guest): number => {
      const f = offers(g)[0];
      const ip = parseIpv4(f.subarray(14));
      if (isWireError(ip)) throw new Error(ip.reason);
      const udp = parseUdp(f.subarray(34, 34 + ip.payloadLength), ip.src, ip.dst);
      if (isWireError(udp)) throw new Error(udp.reason);
      const d = parseDhcp(udp.payload);
      if (isWireError(d)) throw new Error(d.reason);
      expect(messageType(d)).to.equal(DhcpMessageType.Offer);
      expect(d.chaddr).to.equal(g.mac);
      return d.yiaddr;
    };
    const ya = yiaddr(a);
    const yb = yiaddr(b);
    expect(ya).to.not.equal(yb);
    for (const y of [ya, yb]) expect(y >>> 8).to.equal(GW_IP >>> 8);
  });

  it("a guest cannot take over the gateway's MAC", async () => {
    const { a, b, sw, stackSwitchPort } = setup();
    const spoof = new Uint8Array(60);
    emitEthernet({ dst: MAC_BROADCAST, src: GW_MAC, ethertype: EtherType.ARP }, spoof);
    a.ch.send(spoof);
    b.ch.send(ping(b, GW_MAC, GW_IP));
    await until(() => b.got.length === 1);
    await settle();
    expect(a.got).to.have.length(0);
    expect(sw.lookup(GW_MAC)).to.equal(stackSwitchPort);
    expect(sw.counters.dropped("spoofed-source")).to.equal(1);
  });

  it("a guest that stops reading does not hold up the other", async () => {
    const stack = new NetworkStack({ now: () => 0 });
    const sw = attachSwitch(stack);
    const [ga, sa] = memoryPair({ highWater: 4, limit: 8 });
    const [gb, sb] = memoryPair();
    const pa = sw.addPort(sa);
    sw.addPort(sb);
    const A: Guest = { mac: GUEST_MAC, ip: GUEST_IP, ch: ga, got: collectFrames(ga) };
    const B: Guest = { mac: B_MAC, ip: B_IP, ch: gb, got: collectFrames(gb) };
    // B's 100 broadcasts arrive in one turn of the event loop, so A's queue (limit 8) cannot
    // drain meanwhile, exactly as for a guest that stopped reading: A's port drops and counts,
    // while every one of B's requests still reaches the stack and is answered.
    for (let i = 0; i < 100; i++) gb.send(arpRequest(B, GW_IP));
    await until(() => B.got.filter((f) => ethOf(f).src === GW_MAC).length === 100);
    expect(pa.counters.txDrops).to.equal(92);
    await settle();
    expect(A.got).to.have.length(8);
  });

  it("internalLink hands the same bytes over synchronously and counts sends after close", () => {
    const [x, y] = internalLink("t", 1500);
    let seen: Uint8Array | undefined;
    y.setReceiver((f) => (seen = f));
    const f = new Uint8Array(60);
    expect(x.send(f)).to.equal(true);
    expect(seen).to.equal(f);
    y.close();
    x.send(f);
    expect(x.stats.txDrops).to.equal(1);
  });
});
