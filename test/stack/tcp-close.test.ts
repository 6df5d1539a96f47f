/**
 * TcpLayer.close(): shutting the stack down aborts every flow (RFC 9293 §3.10.5) and delivers
 * the Reset/Closed events to each flow's owner at once, so relays can close their host sockets
 * (a relay that never hears of the close keeps its socket, and the process never exits). A
 * synchronized flow gets a RST toward the guest; later segments and connects are refused.
 */
import { expect } from "chai";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { TcpLayer, type TcpFlow } from "../../src/stack/tcp.js";
import { emitEthernet, EthernetFrame, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp } from "../../src/ethernet/arp.js";
import { emitIpv4, parseIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { emitTcp, parseTcp, tcpLen, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import { TcpEvent } from "../../src/tcp/state.js";
import { isWireError } from "../../src/common/wire-error.js";
import { GUEST_MAC, GW_MAC, GUEST_IP, GW_IP, HOST_IP, RecordingChannel } from "../support/stack.js";

function guestSegment(dst: number, seg: TcpRepr): Uint8Array {
  const l4 = tcpLen(seg);
  const f = new Uint8Array(14 + 20 + l4);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
  const h = emitIpv4({ src: GUEST_IP, dst, protocol: IpProtocol.TCP, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: l4, options: new Uint8Array(0) }, f, o);
  emitTcp(seg, f, o + h, GUEST_IP, dst);
  return f;
}

function sent(frame: Uint8Array): TcpRepr | undefined {
  const eth = new EthernetFrame(frame);
  if (eth.ethertype !== EtherType.IPv4) return undefined;
  const ip = parseIpv4(eth.payload);
  if (isWireError(ip) || ip.protocol !== IpProtocol.TCP) return undefined;
  const seg = parseTcp(eth.payload.subarray(20, 20 + ip.payloadLength), ip.src, ip.dst);
  return isWireError(seg) ? undefined : seg;
}

const seg = (srcPort: number, dstPort: number, seq: number, ack: number, flags: number): TcpRepr => ({
  srcPort,
  dstPort,
  seq,
  ack,
  flags,
  window: 65535,
  urgentPointer: 0,
  options: flags & TcpFlag.SYN ? { mss: 1460 } : {},
  payload: new Uint8Array(0),
});

describe("stack/tcp: TcpLayer.close() delivers every flow's close to its owner (RFC 9293 §3.10.5)", () => {
  let stack: NetworkStack;
  let tcp: TcpLayer;
  let ch: RecordingChannel;
  let port: Port;
  beforeEach(() => {
    stack = new NetworkStack({});
    ch = new RecordingChannel();
    port = stack.attach(ch);
    tcp = new TcpLayer(stack);
  });
  afterEach(() => stack.close());

  it("an established flow, a held SYN and an active open each get Reset|Closed; the guest gets RSTs", async () => {
    const events = new Map<string, number>();
    const record = (name: string) => (_f: TcpFlow, ev: number) => events.set(name, (events.get(name) ?? 0) | ev);
    // The forwarder accepts port 80 at once and holds port 81 (a dial in flight).
    tcp.forwarder = (flow) => {
      const name = `to-${flow.remotePort}`;
      flow.onEvents = record(name);
      if (flow.remotePort === 80) flow.accept();
    };
    stack.receive(port, guestSegment(HOST_IP, seg(40000, 80, 1000, 0, TcpFlag.SYN)));
    const synAck = ch.sent.map(sent).find((s) => s && s.flags === (TcpFlag.SYN | TcpFlag.ACK))!;
    expect(synAck, "SYN-ACK").to.not.equal(undefined);
    stack.receive(port, guestSegment(HOST_IP, seg(40000, 80, 1001, (synAck.seq + 1) >>> 0, TcpFlag.ACK)));
    stack.receive(port, guestSegment(HOST_IP, seg(40001, 81, 5000, 0, TcpFlag.SYN)));
    await Promise.resolve(); // end of the receive batch
    expect(events.get("to-80")! & TcpEvent.Established).to.not.equal(0);
    // An active open toward the guest (port forwarding).
    stack.receive(port, arpReply());
    tcp.connect(GUEST_IP, 8080, { onEvents: record("forward") });
    expect(tcp.size).to.equal(3);

    ch.sent = [];
    tcp.close();
    for (const name of ["to-80", "to-81", "forward"]) {
      expect(events.get(name)! & (TcpEvent.Reset | TcpEvent.Closed), name).to.equal(TcpEvent.Reset | TcpEvent.Closed);
    }
    expect(tcp.size).to.equal(0);
    // The established connection is reset toward the guest; the held SYN was never answered,
    // so it gets nothing (RFC 9293 §3.10.5: no RST before the peer knows our sequence numbers).
    const rsts = ch.sent.map(sent).filter((s) => s && s.flags & TcpFlag.RST);
    expect(rsts.map((s) => s!.dstPort)).to.deep.equal([40000]);
  });

  it("after close, a guest SYN is dropped unanswered and connect() throws", async () => {
    let offered = 0;
    tcp.forwarder = () => offered++;
    tcp.close();
    stack.receive(port, guestSegment(HOST_IP, seg(40000, 80, 1000, 0, TcpFlag.SYN)));
    await Promise.resolve();
    expect(offered).to.equal(0);
    expect(ch.sent.map(sent).filter(Boolean)).to.deep.equal([]);
    stack.receive(port, arpReply());
    expect(() => tcp.connect(GUEST_IP, 80)).to.throw(/closed/);
    tcp.close(); // idempotent
  });
});

function arpReply(): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.ARP }, f);
  emitArp({ op: ArpOp.Reply, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: GW_MAC, targetIp: GW_IP }, f, o);
  return f;
}
