/**
 * The stack side of port forwarding, frame by frame: the gateway's ARP request for a guest it
 * has not heard from (RFC 826), and the TCP layer's active open toward a guest (RFC 9293
 * §3.10.1, §3.10.7.3): the SYN's addresses and ports, a RST answer (closed port), a SYN-ACK
 * answer (established). Driven with a recording channel; no host sockets.
 */
import { expect } from "chai";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { TcpLayer, type TcpFlow } from "../../src/stack/tcp.js";
import { emitEthernet, EthernetFrame, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp, parseArp } from "../../src/ethernet/arp.js";
import { parseIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { parseTcp, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import { TcpEvent } from "../../src/tcp/state.js";
import { isWireError } from "../../src/common/wire-error.js";
import { GUEST_MAC, GW_MAC, GUEST_IP, GW_IP, HOST_IP, RecordingChannel, guestSegment } from "../support/stack.js";

const BROADCAST = 0xffff_ffff_ffff;

function setup(hostIp?: string): { stack: NetworkStack; tcp: TcpLayer; ch: RecordingChannel; port: Port } {
  const stack = new NetworkStack({ hostAliasIp: hostIp });
  const ch = new RecordingChannel();
  const port = stack.attach(ch);
  const tcp = new TcpLayer(stack);
  return { stack, tcp, ch, port };
}

function arpReply(): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.ARP }, f);
  emitArp({ op: ArpOp.Reply, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: GW_MAC, targetIp: GW_IP }, f, o);
  return f;
}

/** The TCP segment in a frame the stack sent, with its IP addresses and Ethernet destination. */
function sentSegment(frame: Uint8Array): { mac: number; src: number; dst: number; seg: TcpRepr } {
  const eth = new EthernetFrame(frame);
  const ip = parseIpv4(eth.payload);
  if (isWireError(ip)) throw new Error("bad ip");
  const seg = parseTcp(eth.payload.subarray(20, 20 + ip.payloadLength), ip.src, ip.dst);
  if (isWireError(seg)) throw new Error("bad tcp");
  return { mac: eth.dst, src: ip.src, dst: ip.dst, seg };
}

describe("forward/stack: ARP request for a guest (RFC 826)", () => {
  it("broadcasts who-has from the gateway and learns the guest's reply", () => {
    const { stack, tcp, ch, port } = setup();
    stack.requestArp(GUEST_IP);
    expect(ch.sent).to.have.length(1);
    const eth = new EthernetFrame(ch.sent[0]);
    expect(eth.dst).to.equal(BROADCAST);
    expect(eth.ethertype).to.equal(EtherType.ARP);
    const arp = parseArp(eth.payload);
    if (isWireError(arp)) throw new Error("bad arp");
    expect(arp).to.include({ op: ArpOp.Request, senderMac: GW_MAC, senderIp: GW_IP, targetIp: GUEST_IP });
    expect(stack.neighbors.lookup(GUEST_IP)).to.equal(undefined);
    stack.receive(port, arpReply());
    expect(stack.neighbors.lookup(GUEST_IP)?.mac).to.equal(GUEST_MAC);
    tcp.close();
  });
});

describe("forward/stack: TcpLayer.connect, the active open toward a guest (RFC 9293 §3.10.1)", () => {
  it("refuses, naming the address, when the guest's MAC is unknown", () => {
    const { tcp } = setup();
    expect(() => tcp.connect(GUEST_IP, 80)).to.throw(/no neighbour entry for 192\.168\.65\.3/);
    expect(tcp.size).to.equal(0);
    tcp.close();
  });

  it("sends a SYN to the guest's MAC from the host alias and an ephemeral port", () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, arpReply());
    tcp.connect(GUEST_IP, 80);
    expect(ch.sent).to.have.length(1);
    const s = sentSegment(ch.sent[0]);
    expect(s).to.include({ mac: GUEST_MAC, src: HOST_IP, dst: GUEST_IP });
    expect(s.seg.flags).to.equal(TcpFlag.SYN);
    expect(s.seg.dstPort).to.equal(80);
    expect(s.seg.srcPort).to.be.within(49152, 65535);
    expect(tcp.size).to.equal(1);
    tcp.close();
  });

  it("comes from the gateway when the host alias is disabled", () => {
    const { stack, tcp, ch, port } = setup("0.0.0.0");
    stack.receive(port, arpReply());
    tcp.connect(GUEST_IP, 80);
    expect(sentSegment(ch.sent[0]).src).to.equal(GW_IP);
    tcp.close();
  });

  it("two connections to one guest port use different source ports", () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, arpReply());
    tcp.connect(GUEST_IP, 80);
    tcp.connect(GUEST_IP, 80);
    const [a, b] = ch.sent.map((f) => sentSegment(f).seg.srcPort);
    expect(a).to.not.equal(b);
    tcp.close();
  });

  it("a RST from the guest (closed port) reports Reset with error 'refused' and removes the flow", async () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, arpReply());
    let events = 0;
    const flow: TcpFlow = tcp.connect(GUEST_IP, 81, { onEvents: (_f, ev) => (events |= ev) });
    const syn = sentSegment(ch.sent[0]).seg;
    const rst: TcpRepr = { srcPort: 81, dstPort: syn.srcPort, seq: 0, ack: (syn.seq + 1) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK, window: 0, urgentPointer: 0, options: {}, payload: new Uint8Array(0) };
    stack.receive(port, guestSegment(GUEST_IP, HOST_IP, rst));
    await Promise.resolve(); // the layer services flows at the end of the receive batch
    expect(events & TcpEvent.Reset).to.not.equal(0);
    expect(flow.conn.error).to.equal("refused");
    expect(tcp.size).to.equal(0);
    tcp.close();
  });

  it("a SYN-ACK from the guest establishes the flow and is acknowledged", async () => {
    const { stack, tcp, ch, port } = setup();
    stack.receive(port, arpReply());
    let events = 0;
    tcp.connect(GUEST_IP, 80, { onEvents: (_f, ev) => (events |= ev) });
    const syn = sentSegment(ch.sent[0]).seg;
    const synAck: TcpRepr = { srcPort: 80, dstPort: syn.srcPort, seq: 1000, ack: (syn.seq + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535, urgentPointer: 0, options: { mss: 1460 }, payload: new Uint8Array(0) };
    stack.receive(port, guestSegment(GUEST_IP, HOST_IP, synAck));
    await Promise.resolve();
    expect(events & TcpEvent.Established).to.not.equal(0);
    const ack = sentSegment(ch.sent[ch.sent.length - 1]).seg;
    expect(ack.flags & (TcpFlag.ACK | TcpFlag.SYN)).to.equal(TcpFlag.ACK);
    expect(ack.ack).to.equal(1001);
    tcp.close();
  });
});
