/**
 * The stack side of port forwarding into a guest's IPv6 address, frame by frame: the gateway's
 * neighbour solicitation for a guest it has not heard from (RFC 4861 §7.2.2) and the TCP
 * layer's active open over IPv6 (`TcpLayer.connect6`; RFC 9293 §3.10.1, §3.10.7.3): the SYN's
 * addresses, ports, checksum and MSS, a RST answer (closed port), a SYN-ACK answer
 * (established). Driven with a recording channel; no host sockets.
 */
import { expect } from "chai";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { TcpLayer, type TcpFlow } from "../../src/stack/tcp.js";
import { NeighborResolver } from "../../src/forward/neighbor.js";
import { parseTcp, emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import { TcpEvent } from "../../src/tcp/state.js";
import { isWireError } from "../../src/common/wire-error.js";
import { parseIpv6Address, solicitedNode, ipv6Equal, multicastMac6 } from "../../src/ipv6/addr.js";
import { NextHeader, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { parseNdp } from "../../src/ipv6/ndp.js";
import { Icmpv6Type } from "../../src/ipv6/icmpv6.js";
import { emitTcp6 } from "../../src/stack/tcp6.js";
import { GUEST_MAC, RecordingChannel } from "../support/stack.js";
import { frame, ndpFrame, sent6, type Sent6 } from "../support/frames6.js";

const GUEST6 = parseIpv6Address("fd73:6b69:6666::100")!;
const ALIAS6 = parseIpv6Address("fd73:6b69:6666::2")!;
const GW6 = parseIpv6Address("fd73:6b69:6666::1")!;

function setup(hostIp?: string): { stack: NetworkStack; tcp: TcpLayer; ch: RecordingChannel; port: Port } {
  const stack = new NetworkStack({ hostAliasIp: hostIp });
  const ch = new RecordingChannel();
  const port = stack.attach(ch);
  ch.sent.length = 0;
  const tcp = new TcpLayer(stack);
  return { stack, tcp, ch, port };
}

/** The guest's Neighbor Advertisement for its own address. */
function guestNa(): Uint8Array {
  return ndpFrame(GUEST6, GW6, { kind: "na", router: false, solicited: true, override: true, target: GUEST6, options: [{ type: "target-lla", mac: GUEST_MAC }] });
}

function tcpSegments(ch: RecordingChannel): Array<Sent6 & { seg: TcpRepr }> {
  return sent6(ch).flatMap((s) => {
    if (s.nextHeader !== NextHeader.TCP) return [];
    expect(upperLayerChecksum6(s.l4, 0, s.l4.length, s.src, s.dst, NextHeader.TCP), "checksum over the IPv6 pseudo-header").to.equal(0);
    const seg = parseTcp(s.l4, 0, 0, { verifyChecksum: false });
    if (isWireError(seg)) throw new Error("bad tcp");
    return [{ ...s, seg }];
  });
}

function guestTcp(seg: TcpRepr): Uint8Array {
  const b = new Uint8Array(tcpLen(seg));
  emitTcp6(seg, b, 0, GUEST6, ALIAS6, false);
  return frame(GUEST6, ALIAS6, NextHeader.TCP, b);
}

describe("forward/stack: neighbour solicitation for a guest's IPv6 address (RFC 4861 §7.2.2)", () => {
  it("solicits the solicited-node group from the gateway's ULA and resolves on the guest's advertisement", async () => {
    const { stack, tcp, ch, port } = setup();
    const resolver = new NeighborResolver(stack);
    const p = resolver.resolve(GUEST6);
    const ns = sent6(ch).filter((s) => s.nextHeader === NextHeader.ICMPv6 && s.l4[0] === Icmpv6Type.NeighborSolicitation);
    expect(ns).to.have.length(1);
    expect(ipv6Equal(ns[0].dst, solicitedNode(GUEST6))).to.equal(true);
    expect(ns[0].dstMac).to.equal(multicastMac6(solicitedNode(GUEST6)));
    expect(ipv6Equal(ns[0].src, GW6)).to.equal(true);
    const nd = parseNdp(ns[0].l4, ns[0].src, ns[0].dst, 255);
    if (isWireError(nd) || nd.kind !== "ns") throw new Error("not an NS");
    expect(ipv6Equal(nd.target, GUEST6)).to.equal(true);
    stack.receive(port, guestNa());
    expect(await p).to.equal(true);
    expect(stack.ipv6!.neighbors.lookup(GUEST6)?.mac).to.equal(GUEST_MAC);
    tcp.close();
  });
});

describe("forward/stack: TcpLayer.connect6, the active open toward a guest over IPv6", () => {
  it("refuses, naming the address, when the guest's MAC is unknown", () => {
    const { tcp } = setup();
    expect(() => tcp.connect6(GUEST6, 80)).to.throw(/no neighbour entry for fd73:6b69:6666::100/);
    expect(tcp.size).to.equal(0);
    tcp.close();
  });

  it("throws when IPv6 is off", () => {
    const stack = new NetworkStack({ ipv6: false });
    const tcp = new TcpLayer(stack);
    expect(() => tcp.connect6(GUEST6, 80)).to.throw(/IPv6 is off/);
    tcp.close();
  });

  it("sends a SYN to the guest's MAC from the IPv6 host alias, an ephemeral port and the IPv6 MSS", () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, guestNa());
    tcp.connect6(GUEST6, 80);
    const [s] = tcpSegments(ch);
    expect(s.dstMac).to.equal(GUEST_MAC);
    expect(ipv6Equal(s.src, ALIAS6) && ipv6Equal(s.dst, GUEST6)).to.equal(true);
    expect(s.seg.flags).to.equal(TcpFlag.SYN);
    expect(s.seg.dstPort).to.equal(80);
    expect(s.seg.srcPort).to.be.within(49152, 65535);
    expect(s.seg.options.mss).to.equal(stack.config.mtu - 60);
    tcp.close();
  });

  it("comes from the gateway's ULA when the host alias is disabled", () => {
    const { stack, tcp, ch, port } = setup("0.0.0.0");
    stack.receive(port, guestNa());
    tcp.connect6(GUEST6, 80);
    expect(ipv6Equal(tcpSegments(ch)[0].src, GW6)).to.equal(true);
    tcp.close();
  });

  it("a RST from the guest reports Reset with error 'refused'; a SYN-ACK establishes and is acknowledged", async () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, guestNa());
    let refusedEv = 0;
    const refused: TcpFlow = tcp.connect6(GUEST6, 81, { onEvents: (_f, ev) => (refusedEv |= ev) });
    const syn1 = tcpSegments(ch)[0].seg;
    const rst: TcpRepr = { srcPort: 81, dstPort: syn1.srcPort, seq: 0, ack: (syn1.seq + 1) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK, window: 0, urgentPointer: 0, options: {}, payload: new Uint8Array(0) };
    stack.receive(port, guestTcp(rst));
    await Promise.resolve();
    expect(refusedEv & TcpEvent.Reset).to.not.equal(0);
    expect(refused.conn.error).to.equal("refused");
    expect(tcp.size).to.equal(0);

    ch.sent.length = 0;
    let ev = 0;
    tcp.connect6(GUEST6, 80, { onEvents: (_f, e) => (ev |= e) });
    const syn = tcpSegments(ch)[0].seg;
    const synAck: TcpRepr = { srcPort: 80, dstPort: syn.srcPort, seq: 1000, ack: (syn.seq + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535, urgentPointer: 0, options: { mss: 1440 }, payload: new Uint8Array(0) };
    stack.receive(port, guestTcp(synAck));
    await Promise.resolve();
    expect(ev & TcpEvent.Established).to.not.equal(0);
    const segs = tcpSegments(ch);
    const ack = segs[segs.length - 1].seg;
    expect(ack.flags & (TcpFlag.ACK | TcpFlag.SYN)).to.equal(TcpFlag.ACK);
    expect(ack.ack).to.equal(1001);
    tcp.close();
  });

  it("two connections to one guest port use different source ports", () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, guestNa());
    tcp.connect6(GUEST6, 80);
    tcp.connect6(GUEST6, 80);
    const [a, b] = tcpSegments(ch).map((s) => s.seg.srcPort);
    expect(a).to.not.equal(b);
    tcp.close();
  });
});

