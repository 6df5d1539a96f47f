/**
 * Hand-built guest frames for tests that drive a stack or a switch directly: ARP, TCP SYN,
 * UDP, ICMP echo and DHCP DISCOVER/REQUEST from any MAC and source address (spoofed ones
 * included), and a reader of what comes back (ICMP unreachable codes, TCP flags, DHCP types).
 */
import { emitEthernet, EthernetFrame, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp } from "../../src/ethernet/arp.js";
import { emitIpv4, parseIpv4, Ipv4Packet, IpProtocol, NO_IPV4_OPTIONS } from "../../src/ipv4/ipv4.js";
import { emitIcmp, icmpLen, parseIcmp, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { emitUdp, parseUdp } from "../../src/ipv4/udp.js";
import { emitTcp, parseTcp, tcpLen, NO_TCP_OPTIONS, TcpFlag } from "../../src/tcp/wire.js";
import { DhcpMessageType, DhcpOption, dhcpLen, emitDhcp, messageType, parseDhcp, u32Option, type DhcpRepr, type DhcpOptionEntry } from "../../src/dhcp/wire.js";
import { isWireError } from "../../src/common/wire-error.js";
import { MAC_BROADCAST } from "../../src/common/addr.js";
import { GW_MAC } from "./stack.js";

/** A broadcast ARP request (or, with `op` ArpOp.Reply, a gratuitous reply) from `mac`. */
export function arpRequest(mac: number, senderIp: number, targetIp: number, op: number = ArpOp.Request): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst: MAC_BROADCAST, src: mac, ethertype: EtherType.ARP }, f);
  emitArp({ op, senderMac: mac, senderIp, targetMac: 0, targetIp }, f, o);
  return f;
}

export function ipFrame(mac: number, src: number, dst: number, protocol: number, l4: Uint8Array, dstMac = GW_MAC): Uint8Array {
  const f = new Uint8Array(14 + 20 + l4.length);
  const o = emitEthernet({ dst: dstMac, src: mac, ethertype: EtherType.IPv4 }, f);
  const h = emitIpv4(
    { src, dst, protocol, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: l4.length, options: NO_IPV4_OPTIONS },
    f,
    o,
  );
  f.set(l4, o + h);
  return f;
}

export function tcpSyn(mac: number, src: number, srcPort: number, dst: number, dstPort: number): Uint8Array {
  const seg = { srcPort, dstPort, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 65535, urgentPointer: 0, options: NO_TCP_OPTIONS, payload: new Uint8Array(0) };
  const b = new Uint8Array(tcpLen(seg));
  emitTcp(seg, b, 0, src, dst);
  return ipFrame(mac, src, dst, IpProtocol.TCP, b);
}

export function udpFrame(mac: number, src: number, srcPort: number, dst: number, dstPort: number, payload: Uint8Array, dstMac = GW_MAC): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  emitUdp({ srcPort, dstPort, payload }, b, 0, src, dst);
  return ipFrame(mac, src, dst, IpProtocol.UDP, b, dstMac);
}

export function echoRequest(mac: number, src: number, dst: number, id = 0x77, seq = 1): Uint8Array {
  const icmp: IcmpRepr = { kind: "echo-request", id, seq, data: Uint8Array.from([1, 2, 3, 4]) };
  const b = new Uint8Array(icmpLen(icmp));
  emitIcmp(icmp, b, 0);
  return ipFrame(mac, src, dst, IpProtocol.ICMP, b);
}

/** A DHCP DISCOVER (or REQUEST for `requested` from `serverId`) broadcast from 0.0.0.0:68. */
export function dhcpFrame(mac: number, type: "discover" | "request", requested = 0, serverId = 0): Uint8Array {
  const options: DhcpOptionEntry[] = [{ code: DhcpOption.MessageType, data: Uint8Array.of(type === "discover" ? DhcpMessageType.Discover : DhcpMessageType.Request) }];
  if (type === "request") {
    options.push({ code: DhcpOption.RequestedIp, data: u32Option(requested) });
    options.push({ code: DhcpOption.ServerId, data: u32Option(serverId) });
  }
  const repr: DhcpRepr = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: mac % 0x1_0000_0000, secs: 0, broadcast: false,
    ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: mac, sname: "", file: "", options,
  };
  const payload = new Uint8Array(dhcpLen(repr));
  emitDhcp(repr, payload);
  return udpFrame(mac, 0, 68, 0xffff_ffff, 67, payload, MAC_BROADCAST);
}

/** What one frame sent to a guest is, for assertions. */
export type Seen =
  | { kind: "icmp-unreachable"; code: number; src: number; dst: number }
  | { kind: "icmp-echo-reply"; src: number }
  | { kind: "tcp"; flags: number; src: number; srcPort: number; dstPort: number }
  | { kind: "dhcp"; type: number | undefined; yiaddr: number }
  | { kind: "udp"; src: number; srcPort: number }
  | { kind: "arp" }
  | { kind: "other" };

export function describe(frame: Uint8Array): Seen {
  const eth = new EthernetFrame(frame);
  if (!eth.check()) return { kind: "other" };
  if (eth.ethertype === EtherType.ARP) return { kind: "arp" };
  const ip = parseIpv4(eth.payload);
  if (isWireError(ip)) return { kind: "other" };
  const l4 = new Ipv4Packet(eth.payload).payload;
  if (ip.protocol === IpProtocol.ICMP) {
    const m = parseIcmp(l4);
    if (isWireError(m)) return { kind: "other" };
    if (m.kind === "dest-unreachable") return { kind: "icmp-unreachable", code: m.code, src: ip.src, dst: ip.dst };
    if (m.kind === "echo-reply") return { kind: "icmp-echo-reply", src: ip.src };
    return { kind: "other" };
  }
  if (ip.protocol === IpProtocol.TCP) {
    const t = parseTcp(l4, ip.src, ip.dst);
    if (isWireError(t)) return { kind: "other" };
    return { kind: "tcp", flags: t.flags, src: ip.src, srcPort: t.srcPort, dstPort: t.dstPort };
  }
  if (ip.protocol === IpProtocol.UDP) {
    const u = parseUdp(l4, ip.src, ip.dst);
    if (isWireError(u)) return { kind: "other" };
    if (u.srcPort === 67) {
      const d = parseDhcp(u.payload);
      if (isWireError(d)) return { kind: "other" };
      return { kind: "dhcp", type: messageType(d), yiaddr: d.yiaddr };
    }
    return { kind: "udp", src: ip.src, srcPort: u.srcPort };
  }
  return { kind: "other" };
}
