/**
 * NetworkStack: the gateway host that guests talk to.
 *
 * It attaches to any number of FrameChannels ("ports"), validates every frame, learns
 * neighbours, answers ARP for the addresses it owns (gateway, host alias), and hands IPv4
 * packets addressed beyond the link layer to per-protocol handlers (ICMP here; UDP and TCP
 * services and socket translation register themselves). Everything malformed or not for us
 * is counted by reason and dropped; nothing a guest sends can throw out of `receive`.
 *
 * Output is allocation-free: `beginIpv4` writes the Ethernet and IPv4 headers into the one
 * transmit buffer and returns where the transport header goes; the caller emits it there and
 * calls `finishIpv4`. The buffer is reused by the next packet (channels copy what they queue).
 *
 * Read first: RFC 826 (ARP), RFC 791 and RFC 1122 §3.2.1 (IPv4 receive checks), RFC 792 and
 * RFC 1122 §3.2.2 (ICMP).
 */

import { isMulticastMac, MAC_BROADCAST } from "../common/addr.js";
import { isWireError } from "../common/wire-error.js";
import { getU32 } from "../common/bytes.js";
import { EthernetFrame, EtherType, emitEthernet, ETH_HEADER_LEN } from "../ethernet/ethernet.js";
import { ArpOp, ARP_LEN, emitArp, parseArp } from "../ethernet/arp.js";
import { emitIpv4, IPV4_MIN_HEADER_LEN, isFragment, parseIpv4, type Ipv4Repr } from "../ipv4/ipv4.js";
import { Ipv4Packet } from "../ipv4/ipv4.js";
import { FragmentReassembler, type FragmentDrop, type FragmentLimits } from "../ipv4/fragments.js";
import type { FrameChannel } from "../common/frame-channel.js";
import { GSO_MAX_FRAME, maxFrameLen, RX_CSUM_VERIFIED } from "../common/frame-channel.js";
import { resolveConfig, inSubnet, broadcastAddress, type StackConfig, type StackConfigInput } from "./config.js";
import { StackCounters, type DropReason } from "./counters.js";
import { NeighborTable } from "./neighbors.js";
import { handleIcmp } from "./gateway-icmp.js";
import { handleUdp } from "./gateway-udp.js";
import { Port } from "./port.js";
import { sendIpv4Fragments } from "./fragment-tx.js";
import type { IpHost, Ipv4Handler, UdpHandler, IcmpForwarder } from "./ip-host.js";

export { Port };
export type { Ipv4Handler };
import { BusyPoller, CpuHeadroom } from "./busy-poll.js";
import { SharedTimers, realTimerHost } from "./timers.js";
import { Guest, routerOnlyIpv6, type SourceBindings } from "./guests.js";
import { Ipv6Gateway } from "./gateway-ipv6.js";
import { bindDhcpv6 } from "./dhcp6-service.js";

export interface StackOptions extends StackConfigInput {
  /** Milliseconds clock; injected so tests control time. Defaults to performance.now(). */
  now?: () => number;
  /** Bounds of IPv4 reassembly (RFC 791 §3.2); defaults in `DEFAULT_FRAGMENT_LIMITS`. */
  fragments?: Partial<FragmentLimits>;
  /** Busy-poll window after each frame, µs (see busy-poll.ts); default 0 (off). */
  busyPollUs?: number;
}

export class NetworkStack implements IpHost {
  readonly config: StackConfig;
  readonly counters = new StackCounters();
  /**
   * The stack's one timer driver, on its clock: the TCP layer, socket translation's idle flows
   * and the forwards' UDP clients schedule their deadlines here (timers.ts `ownTimers`).
   */
  readonly timers: SharedTimers;
  readonly neighbors: NeighborTable<Port>;
  readonly now: () => number;
  /** Reassembly of fragmented datagrams from guests (RFC 791 §3.2). */
  readonly fragments: FragmentReassembler;
  private readonly ports = new Set<Port>();
  private nextPortId = 1;
  private readonly handlers: Array<Ipv4Handler | undefined> = new Array(256).fill(undefined);
  private readonly tx: Uint8Array;
  private txPort: Port | undefined;
  private txL4Off = 0;
  /** The packet begun by `beginIpv4` is over the MTU and goes in fragments. */
  private txFragment = false;
  private fragScratch: Uint8Array | undefined;
  private ipId = 1;
  /**
   * True while the frame being received had its TCP/UDP checksum vouched for by the link
   * (RX_CSUM_VERIFIED); protocol handlers then skip verifying it. Reassembled datagrams never.
   */
  rxL4ChecksumVerified = false;
  /** The guest (guests.ts) whose frame is being received; undefined outside `receive`. */
  rxGuest: Guest | undefined;
  /** Source validation (guests.ts): undefined accepts any source. */
  sourceBindings: SourceBindings | undefined;
  private nextGuestId = 1;
  private readonly udpServices = new Map<number, UdpHandler>();
  /** Handler of UDP datagrams to destinations beyond the gateway (socket translation). */
  udpForwarder: UdpHandler | undefined;
  /** Handler of ICMP echo requests to destinations beyond the gateway (socket translation). */
  icmpForwarder: IcmpForwarder | undefined;
  /** Keeps the event loop polling briefly after traffic (undefined when off). */
  private readonly busy: BusyPoller | undefined;
  /** The gateway on IPv6 (gateway-ipv6.ts); undefined when IPv6 is off (`ipv6: false`). */
  readonly ipv6: Ipv6Gateway | undefined;

  constructor(opts: StackOptions = {}) {
    this.config = resolveConfig(opts);
    this.now = opts.now ?? (() => performance.now());
    this.timers = new SharedTimers({ ...realTimerHost, now: this.now });
    this.neighbors = new NeighborTable<Port>(this.config.maxNeighbors);
    this.fragments = new FragmentReassembler(opts.fragments);
    // Room for a TCP super-segment on links with segmentation offload.
    this.tx = new Uint8Array(Math.max(maxFrameLen(this.config.mtu), GSO_MAX_FRAME));
    this.handlers[1] = handleIcmp;
    this.handlers[17] = handleUdp;
    const c = this.counters;
    if (this.config.ipv6 !== null) {
      this.ipv6 = new Ipv6Gateway(this);
      bindDhcpv6(this.ipv6);
    }
    if ((opts.busyPollUs ?? 0) > 0) this.busy = new BusyPoller(opts.busyPollUs!, () => c.rxFrames + c.txFrames, this.now, new CpuHeadroom().check);
  }

  /** Stop background work (busy polling, the timer); attached channels are the owner's to close. */
  close(): void {
    this.busy?.stop();
    this.ipv6?.close();
    this.timers.stop();
  }

  /** Attach a channel: its frames are served by this stack until it closes or is detached. */
  attach(channel: FrameChannel): Port {
    const port = new Port(this.nextPortId++, channel, this.newGuest(channel.name));
    this.ports.add(port);
    channel.setReceiver((frame, rxFlags) => this.receive(port, frame, rxFlags));
    channel.once("closed", () => this.detach(port));
    return port;
  }

  detach(port: Port): void {
    if (!this.ports.delete(port)) return;
    port.guest.detached = true;
    this.neighbors.forgetPort(port);
    this.ipv6?.neighbors.forgetPort(port);
  }

  /** A new guest identity (a port, or a switch port behind one; guests.ts). */
  newGuest(name: string): Guest {
    return new Guest(this.nextGuestId++, name);
  }

  get attached(): readonly Port[] {
    return [...this.ports];
  }

  /** Register the handler of an IP protocol number (replaces the previous one). */
  setProtocolHandler(protocol: number, handler: Ipv4Handler | undefined): void {
    this.handlers[protocol] = handler;
  }

  /** Serve UDP port `localPort` of the gateway (also reached by broadcast); one handler per port. */
  bindUdp(localPort: number, handler: UdpHandler): void {
    if (this.udpServices.has(localPort)) throw new Error(`UDP port ${localPort} of the gateway is already bound`);
    this.udpServices.set(localPort, handler);
  }

  unbindUdp(localPort: number): void {
    this.udpServices.delete(localPort);
  }

  udpService(localPort: number): UdpHandler | undefined {
    return this.udpServices.get(localPort);
  }

  /**
   * RFC 826: ask who has `ip` (an ARP request from the gateway, broadcast on every attached
   * port). The answer is learned by the receive path like any ARP packet from a guest; used
   * when skiff opens a connection to a guest that has not sent anything yet (port forwarding).
   */
  requestArp(ip: number): void {
    const cfg = this.config;
    for (const port of this.ports) {
      const t = this.tx;
      let o = emitEthernet({ dst: MAC_BROADCAST, src: cfg.gatewayMac, ethertype: EtherType.ARP }, t, 0);
      o += emitArp({ op: ArpOp.Request, senderMac: cfg.gatewayMac, senderIp: cfg.gatewayIp, targetMac: 0, targetIp: ip }, t, o);
      const len = Math.max(60, o);
      t.fill(0, o, len);
      this.transmit(port, len);
    }
  }

  /** True for an address the stack itself answers for (gateway or host alias). */
  isLocalAddress(ip: number): boolean {
    return ip === this.config.gatewayIp || (this.config.hostAliasIp !== null && ip === this.config.hostAliasIp);
  }

  // ---- receive path ------------------------------------------------------------------

  /** Process one frame from `port` (rxFlags: see FrameReceiver). Never throws on any bytes. */
  receive(port: Port, frame: Uint8Array, rxFlags = 0): void {
    this.busy?.kick();
    this.rxL4ChecksumVerified = (rxFlags & RX_CSUM_VERIFIED) !== 0;
    try {
      this.receiveFrame(port, frame);
    } finally {
      this.rxL4ChecksumVerified = false;
      this.rxGuest = undefined;
    }
  }

  private receiveFrame(port: Port, frame: Uint8Array): void {
    const c = this.counters;
    c.rxFrames++;
    c.rxBytes += frame.length;
    const eth = new EthernetFrame(frame);
    if (!eth.check()) return c.drop("eth-malformed");
    const dst = eth.dst;
    // RFC 1122 §2.4: accept frames to our MAC or broadcast; other unicast is not ours.
    // IPv6 multicast (33:33:…, RFC 2464 §7) is ours to look at: NDP, RS, DHCPv6.
    if (dst !== this.config.gatewayMac && dst !== MAC_BROADCAST && !(eth.ethertype === EtherType.IPv6 && isMulticastMac(dst))) {
      return c.drop(isMulticastMac(dst) ? "eth-unknown-type" : "eth-not-for-us");
    }
    const type = eth.ethertype;
    this.rxGuest = port.guestOf(eth.src);
    if (type === EtherType.ARP) return this.receiveArp(port, eth.src, eth.payload);
    if (type === EtherType.IPv4) return this.receiveIpv4(port, eth.src, dst, eth.payload);
    if (type === EtherType.IPv6) {
      if (this.ipv6 === undefined) return c.drop("ipv6-off");
      return this.ipv6.receive(port, eth.src, dst, eth.payload);
    }
    c.drop("eth-unknown-type");
  }

  /** RFC 826 "Packet Reception", answering for the gateway and the host alias. */
  private receiveArp(port: Port, srcMac: number, payload: Uint8Array): void {
    const c = this.counters;
    const arp = parseArp(payload);
    if (isWireError(arp)) return c.drop("arp-malformed");
    // guests.ts: the gateway's or the alias's address as sender is dropped; another sender
    // address that is not the guest's own is answered (the reply only tells it the gateway's
    // MAC) but never learned, so it cannot poison the neighbour table.
    let learn = arp.senderIp !== 0 && inSubnet(this.config, arp.senderIp) && !this.isLocalAddress(arp.senderIp);
    if (this.sourceBindings !== undefined && arp.senderIp !== 0) {
      const cfg = this.config;
      if (arp.senderIp === cfg.gatewayIp || arp.senderIp === cfg.hostAliasAddress) return c.drop("arp-spoofed-sender");
      if (learn && (arp.senderMac !== srcMac || !this.sourceAllowed(this.rxGuest!, srcMac, arp.senderIp))) {
        learn = false;
        c.arpSendersNotLearned++;
      }
    }
    // Learn the sender (merge or add), but only for addresses of the guest network.
    if (learn) {
      this.neighbors.learn(arp.senderIp, arp.senderMac, port);
    }
    // A reply to one of our own requests (`requestArp`) has done its job once learned above.
    if (arp.op === ArpOp.Reply && arp.targetIp === this.config.gatewayIp && arp.targetMac === this.config.gatewayMac) {
      c.arpRepliesIn++;
      return;
    }
    if (arp.op !== ArpOp.Request || !this.isLocalAddress(arp.targetIp)) return c.drop("arp-not-for-us");
    c.arpRequests++;
    const t = this.tx;
    let o = emitEthernet({ dst: srcMac, src: this.config.gatewayMac, ethertype: EtherType.ARP }, t, 0);
    o += emitArp(
      { op: ArpOp.Reply, senderMac: this.config.gatewayMac, senderIp: arp.targetIp, targetMac: arp.senderMac, targetIp: arp.senderIp },
      t,
      o,
    );
    // Pad to the Ethernet minimum (60 bytes without FCS), as a NIC would.
    const len = Math.max(60, o);
    t.fill(0, o, len);
    c.arpReplies++;
    this.transmit(port, len);
  }

  /** RFC 1122 §3.2.1: validate, learn, then dispatch by protocol. */
  private receiveIpv4(port: Port, srcMac: number, dstMac: number, payload: Uint8Array): void {
    const c = this.counters;
    const packet = new Ipv4Packet(payload);
    if (!packet.check()) return c.drop("ipv4-malformed");
    if (!packet.checksumOk() && !isChecksumlessDhcpBroadcast(packet)) return c.drop("ipv4-bad-checksum");
    const ip = parseIpv4(payload, { verifyChecksum: false });
    if (isWireError(ip)) return c.drop("ipv4-malformed");
    if (this.sourceBindings !== undefined && !this.checkSource(srcMac, ip, packet)) return;
    if (inSubnet(this.config, ip.src) && !this.isLocalAddress(ip.src)) this.neighbors.learn(ip.src, srcMac, port);
    // A broadcast frame carrying unicast IP to someone else is not ours (RFC 1122 §3.3.6).
    if (dstMac === MAC_BROADCAST && ip.dst !== 0xffff_ffff && !this.isLocalAddress(ip.dst) && ip.dst !== this.broadcast) {
      return c.drop("ipv4-not-for-us");
    }
    if (isFragment(ip)) return this.receiveFragment(port, srcMac, ip, packet);
    const h = this.handlers[ip.protocol];
    if (h === undefined) return c.drop("ipv4-no-handler");
    h(this, port, srcMac, ip, packet);
  }

  /**
   * Source validation of an IPv4 packet (guests.ts): false when it is dropped (counted).
   * DHCP client messages to the gateway or a broadcast pass from any source; 0.0.0.0 only so.
   */
  private checkSource(srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): boolean {
    const src = ip.src;
    if (src === 0 || src === this.config.gatewayIp || src === this.config.hostAliasAddress || !this.sourceAllowed(this.rxGuest!, srcMac, src)) {
      if (isDhcpClientMessage(ip, packet, this.config.gatewayIp, this.broadcast)) return true;
      this.counters.drop(src === 0 ? "src-unspecified" : src === this.config.gatewayIp || src === this.config.hostAliasAddress ? "src-gateway" : "src-not-bound");
      return false;
    }
    return true;
  }

  /**
   * Source validation of a frame one guest sends to others through the switch (switched.ts
   * installs it as the switch's ingress filter): with validation on, an IPv4 packet must come
   * from an address bound to its source MAC for `guest` (0.0.0.0 only for a DHCP client
   * message), and an ARP packet must name that MAC and such an address (or 0.0.0.0, a probe)
   * as its sender; the gateway's and the alias's addresses never pass. Without this, a guest
   * could answer ARP for the gateway to its neighbours and take their traffic. Other
   * EtherTypes pass; IPv6 has no bindings yet, but router messages are refused (RA guard,
   * `routerOnlyIpv6`) and the source must be link-local or in the guest prefix, not the
   * gateway's (gateway-ipv6.ts `mayForwardSource`). Frames the stack itself takes are checked
   * again, with counted reasons, on arrival.
   */
  mayForward(guest: Guest, frame: Uint8Array): boolean {
    if (this.sourceBindings === undefined) return true;
    const eth = new EthernetFrame(frame);
    if (!eth.check()) return false;
    // Stacked or 802.1ad tags are refused (attack: ARP/IPv4 behind 0x88a8 or two 802.1Q tags
    // skipped validation, and Linux takes a frame whose tags are all VLAN 0 as untagged).
    const outer = (frame[12] << 8) | frame[13];
    if (isVlanTagType(eth.ethertype) || (outer !== EtherType.VLAN && isVlanTagType(outer))) return false;
    const mac = eth.src;
    if (eth.ethertype === EtherType.ARP) {
      const arp = parseArp(eth.payload);
      if (isWireError(arp) || arp.senderMac !== mac) return false;
      return arp.senderIp === 0 || this.sourceAllowed(guest, mac, arp.senderIp);
    }
    if (eth.ethertype === EtherType.IPv6) return !routerOnlyIpv6(eth.payload) && (this.ipv6 === undefined || this.ipv6.mayForwardSource(eth.payload));
    if (eth.ethertype !== EtherType.IPv4) return true;
    const packet = new Ipv4Packet(eth.payload);
    if (!packet.check()) return false;
    const ip = parseIpv4(eth.payload, { verifyChecksum: false });
    if (isWireError(ip)) return false;
    if (ip.src === 0) return isDhcpClientMessage(ip, packet, this.config.gatewayIp, this.broadcast);
    return this.sourceAllowed(guest, mac, ip.src);
  }

  /**
   * Whether `frame` proves that `guest` owns its source MAC (the switch's `sourceClaim`, asked
   * before a MAC learned behind another guest's port moves to this guest's): with validation
   * on, only an IPv4 packet or ARP sender whose address is bound to that MAC for this guest
   * does. Without it any frame does (plain 802.1D learning).
   */
  claimsSource(guest: Guest, frame: Uint8Array): boolean {
    if (this.sourceBindings === undefined) return true;
    if (!this.mayForward(guest, frame)) return false;
    const eth = new EthernetFrame(frame);
    const type = eth.ethertype;
    if (type === EtherType.ARP) return getU32(eth.payload, 14) !== 0; // sender address, checked by mayForward
    return type === EtherType.IPv4 && getU32(eth.payload, 12) !== 0; // source address, checked too
  }

  /** `ip` is bound to `mac` for `guest` (never the gateway's or the alias's); cached per guest. */
  private sourceAllowed(guest: Guest, mac: number, ip: number): boolean {
    const b = this.sourceBindings!;
    if (guest.okIp === ip && guest.okMac === mac && guest.okGeneration === b.generation) return true;
    if (ip === this.config.gatewayIp || ip === this.config.hostAliasAddress || !b.allows(guest, mac, ip)) return false;
    guest.okMac = mac;
    guest.okIp = ip;
    guest.okGeneration = b.generation;
    return true;
  }

  /**
   * RFC 791 §3.2 reassembly: buffer the fragment (not a drop); when it completes the datagram,
   * rebuild it as one packet (a 20-byte header with the first fragment's fields, options
   * dropped) and dispatch it as if it had arrived whole. `add` expires stale datagrams itself.
   */
  private receiveFragment(port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
    const f = this.fragments;
    const data = f.add(ip, packet.payload, this.now());
    if (data === undefined) {
      if (f.lastDrop !== undefined) this.counters.drop(FRAGMENT_DROPS[f.lastDrop]);
      return;
    }
    const whole = f.lastHeader!;
    this.rxL4ChecksumVerified = false;
    const h = this.handlers[whole.protocol];
    if (h === undefined) return this.counters.drop("ipv4-no-handler");
    const bytes = new Uint8Array(IPV4_MIN_HEADER_LEN + data.length);
    emitIpv4(whole, bytes, 0);
    bytes.set(data, IPV4_MIN_HEADER_LEN);
    h(this, port, srcMac, whole, new Ipv4Packet(bytes));
  }

  /** Directed broadcast address of the guest network. */
  get broadcastAddress(): number {
    return this.broadcast;
  }

  private get broadcast(): number {
    return broadcastAddress(this.config);
  }

  // ---- transmit path -----------------------------------------------------------------

  /**
   * Start an IPv4 packet to `dstMac` on `port`: writes Ethernet and IPv4 headers (DF set
   * unless `df` is false, TTL from config) into the transmit buffer. Returns the buffer and the offset where the
   * `l4Len`-byte transport message goes, or -1 if it would not fit the MTU (counted). With
   * `superSegment` (a TCP segment the port's link will cut, see Port.tcpSegmentation) the
   * limit is the 64 KiB IPv4 packet instead.
   */
  beginIpv4(port: Port, dstMac: number, src: number, dst: number, protocol: number, l4Len: number, df = true, superSegment = false): number {
    // Without DF a packet over the MTU (up to 64 KiB) goes in fragments (finishIpv4, fragment-tx.ts).
    this.txFragment = !df && !superSegment && IPV4_MIN_HEADER_LEN + l4Len > this.config.mtu;
    if (IPV4_MIN_HEADER_LEN + l4Len > (superSegment || this.txFragment ? 0xffff : this.config.mtu)) {
      this.counters.drop("tx-too-big");
      return -1;
    }
    const t = this.tx;
    const o = emitEthernet({ dst: dstMac, src: this.config.gatewayMac, ethertype: EtherType.IPv4 }, t, 0);
    const id = this.ipId;
    this.ipId = (id + 1) & 0xffff;
    const ipRepr = TX_IP;
    ipRepr.src = src;
    ipRepr.dst = dst;
    ipRepr.protocol = protocol;
    ipRepr.ttl = this.config.ttl;
    ipRepr.id = id;
    ipRepr.payloadLength = l4Len;
    ipRepr.df = df;
    const h = emitIpv4(ipRepr, t, o);
    this.txPort = port;
    this.txL4Off = o + h;
    return o + h;
  }

  /** The transmit buffer `beginIpv4` wrote into. */
  get txBuffer(): Uint8Array {
    return this.tx;
  }

  /**
   * Send the packet started by `beginIpv4` once its `l4Len` bytes are in place. `txMeta`
   * (TX_CSUM_PARTIAL, txGsoMeta) only for ports whose link advertised the offload.
   */
  finishIpv4(l4Len: number, txMeta = 0): boolean {
    const port = this.txPort;
    if (port === undefined) return false;
    this.txPort = undefined;
    if (this.txFragment) {
      this.txFragment = false;
      if (txMeta !== 0) return (this.counters.drop("tx-too-big"), false);
      this.counters.txFragmented++;
      const scratch = (this.fragScratch ??= new Uint8Array(maxFrameLen(this.config.mtu)));
      return sendIpv4Fragments(this.tx.subarray(0, this.txL4Off + l4Len), this.config.mtu, scratch, (f) => this.transmitFrame(port, f));
    }
    return this.transmit(port, this.txL4Off + l4Len, txMeta);
  }

  /** Send a whole frame built elsewhere (the IPv6 gateway's transmit buffer), counted. */
  transmitFrame(port: Port, frame: Uint8Array, txMeta = 0): boolean {
    this.busy?.kick();
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    return port.channel.send(frame, txMeta);
  }

  private transmit(port: Port, len: number, txMeta = 0): boolean {
    this.busy?.kick();
    this.counters.txFrames++;
    this.counters.txBytes += len;
    return port.channel.send(this.tx.subarray(0, len), txMeta);
  }
}

/** Stack drop reason for each way the reassembler drops a fragment. */
const FRAGMENT_DROPS: Record<FragmentDrop, DropReason> = {
  invalid: "ipv4-fragment-invalid",
  "too-big": "ipv4-fragment-too-big",
  overlap: "ipv4-fragment-overlap",
};

/**
 * VPNKit's vmnet DHCP client (RootlessKit's vpnkit mode) sends its DISCOVER with an IPv4 header
 * checksum of 0 (VPNKit's vmnet protocol, DHCP over the VIF); VPNKit accepts it, and so must we. Exactly that case:
 * checksum field 0, UDP, to 255.255.255.255.
 */
function isChecksumlessDhcpBroadcast(p: Ipv4Packet): boolean {
  return p.headerChecksum === 0 && p.protocol === 17 && p.dst === 0xffff_ffff;
}

/**
 * A DHCP client message (RFC 2131 §4.1: UDP from 68 to 67), unfragmented, to the gateway or a
 * broadcast address: exempt from source validation (a client has no address yet, or is
 * renewing one the server forgot).
 */
function isDhcpClientMessage(ip: Ipv4Repr, packet: Ipv4Packet, gateway: number, broadcast: number): boolean {
  if (ip.protocol !== 17 || isFragment(ip) || (ip.dst !== 0xffff_ffff && ip.dst !== gateway && ip.dst !== broadcast)) return false;
  const u = packet.payload;
  return u.length >= 8 && u[0] === 0 && u[1] === 68 && u[2] === 0 && u[3] === 67;
}

/** Reused IPv4 representation for the transmit path (fields overwritten per packet). */
const TX_IP: Ipv4Repr = {
  src: 0,
  dst: 0,
  protocol: 0,
  ttl: 64,
  id: 0,
  tos: 0,
  df: true,
  mf: false,
  fragmentOffset: 0,
  payloadLength: 0,
  options: new Uint8Array(0),
};

export { ETH_HEADER_LEN, ARP_LEN };

/** An EtherType that announces a VLAN tag: 802.1Q, 802.1ad, or the older QinQ values 0x9100/0x9200. */
function isVlanTagType(type: number): boolean {
  return type === EtherType.VLAN || type === 0x88a8 || type === 0x9100 || type === 0x9200;
}
