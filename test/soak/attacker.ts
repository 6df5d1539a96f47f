/**
 * The hostile guest of the soak test: attached to skiff like any QEMU guest (a QEMU stream
 * socket), it first takes a DHCP lease like a well-behaved one, then, from a seeded PRNG,
 * mixes malformed and mutated frames, SYN floods (to the host server, to closed ports, from
 * spoofed sources), UDP floods (to the host sink, to the gateway's DNS, to closed ports),
 * fragment storms, ARP and DHCP floods from random MACs, echo requests, and slow readers:
 * TCP connections that ask the host for an endless download and then hold a zero window.
 *
 * It answers nothing except its slow readers' segments and never waits for skiff: when the
 * channel pushes back (`send` false) it waits for `drain`, so it sends as fast as skiff takes.
 */
import type { FrameChannel } from "../../src/common/frame-channel.js";
import { parseEthernet, EtherType, ETH_HEADER_LEN } from "../../src/ethernet/ethernet.js";
import { parseIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { parseUdp } from "../../src/ipv4/udp.js";
import { parseTcp } from "../../src/tcp/wire.js";
import { parseDhcp, messageType } from "../../src/dhcp/wire.js";
import { isWireError } from "../../src/common/wire-error.js";
import {
  Rng, BROADCAST, arpFrame, udpFrame, tcpFrame, echoFrame, fragmentFrame, dhcpFrame, damage, DhcpMessageType, TcpFlag,
} from "./frames.js";

export const GATEWAY = 0xc0a8_4101; // 192.168.65.1
export const HOST_ALIAS = 0xc0a8_4102; // 192.168.65.2

/** Largest frame on the hostile guest's 1500-byte link: header, 802.1Q tag, MTU. */
const MAX_FRAME = 1500 + 18;

export interface AttackTargets {
  httpPort: number;
  udpPort: number;
}

export interface AttackCounts {
  sent: number;
  malformed: number;
  syn: number;
  udp: number;
  fragments: number;
  arpDhcp: number;
  echo: number;
  slowReadersOpen: number;
  slowReaderBytes: number;
}

interface SlowReader {
  port: number;
  iss: number;
  /** Next byte expected from skiff (0 until the SYN-ACK). */
  rcvNxt: number;
  requested: boolean;
}

export class Attacker {
  readonly counts: AttackCounts = { sent: 0, malformed: 0, syn: 0, udp: 0, fragments: 0, arpDhcp: 0, echo: 0, slowReadersOpen: 0, slowReaderBytes: 0 };
  ip = 0;
  private gatewayMac = BROADCAST;
  /** The channel pushed back: wait for `drain` before the next batch. */
  private full = false;
  private readonly slow = new Map<number, SlowReader>();
  private templates: Uint8Array[] = [];
  private onDhcp: ((type: number, yiaddr: number, server: number) => void) | undefined;

  constructor(
    private readonly ch: FrameChannel,
    private readonly rng: Rng,
    readonly mac: number,
    private readonly targets: AttackTargets,
  ) {
    ch.setReceiver((f) => this.receive(f));
  }

  /** DISCOVER → OFFER → REQUEST → ACK; resolves with the leased address. */
  async lease(timeoutMs = 5000): Promise<number> {
    const xid = this.rng.next();
    const got = (want: number) =>
      new Promise<{ yiaddr: number; server: number }>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`attacker: no DHCP ${want} in ${timeoutMs} ms`)), timeoutMs);
        this.onDhcp = (type, yiaddr, server) => {
          if (type !== want) return;
          clearTimeout(t);
          this.onDhcp = undefined;
          resolve({ yiaddr, server });
        };
      });
    const offer = got(DhcpMessageType.Offer);
    this.ch.send(dhcpFrame(this.mac, xid, DhcpMessageType.Discover));
    const o = await offer;
    const ack = got(DhcpMessageType.Ack);
    this.ch.send(dhcpFrame(this.mac, xid, DhcpMessageType.Request, o.yiaddr, o.server));
    await ack;
    this.ip = o.yiaddr;
    this.buildTemplates();
    return this.ip;
  }

  /** Open `n` slow readers (each asks for /endless, then holds a zero window). */
  openSlowReaders(n: number): void {
    for (let i = 0; i < n; i++) {
      const port = 40000 + i;
      const iss = this.rng.next();
      this.slow.set(port, { port, iss, rcvNxt: 0, requested: false });
      this.send(tcpFrame(this.mac, this.gatewayMac, this.ip, HOST_ALIAS, { srcPort: port, dstPort: this.targets.httpPort, seq: iss, flags: TcpFlag.SYN }));
    }
  }

  /** Send attack frames until `until` (ms since epoch), yielding to the event loop between batches. */
  async run(until: number): Promise<void> {
    while (Date.now() < until) {
      // Only a refusal within this batch promises a `drain` to come (a slow reader's ACK sent
      // from the receive path may have been refused and drained already).
      this.full = false;
      for (let i = 0; i < 64; i++) this.send(this.nextAttack());
      if (this.ch.closed) return;
      if (this.full) {
        this.full = false;
        await new Promise<void>((r) => {
          const done = () => {
            this.ch.off("drain", done);
            this.ch.off("closed", done);
            r();
          };
          this.ch.on("drain", done);
          this.ch.on("closed", done);
        });
      } else await new Promise<void>((r) => setImmediate(r));
    }
  }

  private send(frame: Uint8Array): void {
    // The stream's framing is the transport, not the fuzz target: keep every frame within
    // 1..MTU+18 bytes, which skiff takes (outside that it drops the connection: framing lost).
    if (frame.length === 0) frame = Uint8Array.of(0);
    else if (frame.length > MAX_FRAME) frame = frame.subarray(0, MAX_FRAME);
    this.counts.sent++;
    if (!this.ch.send(frame)) this.full = true;
  }

  private buildTemplates(): void {
    const { mac, ip } = this;
    const gw = this.gatewayMac;
    this.templates = [
      arpFrame(mac, ip, GATEWAY),
      dhcpFrame(mac, 1, DhcpMessageType.Discover),
      udpFrame(mac, gw, ip, GATEWAY, 5353, 53, dnsQuery("host.internal")),
      udpFrame(mac, gw, ip, HOST_ALIAS, 5000, this.targets.udpPort, new Uint8Array(100)),
      tcpFrame(mac, gw, ip, HOST_ALIAS, { srcPort: 1234, dstPort: this.targets.httpPort }),
      tcpFrame(mac, gw, ip, GATEWAY, { srcPort: 1234, dstPort: 53, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array(40) }),
      echoFrame(mac, gw, ip, GATEWAY, 7, 1, new Uint8Array(56)),
      fragmentFrame(mac, gw, ip, HOST_ALIAS, 99, 0, true, new Uint8Array(1480)),
    ];
  }

  private nextAttack(): Uint8Array {
    const r = this.rng;
    const { mac, ip } = this;
    const gw = this.gatewayMac;
    const dice = r.int(100);
    if (dice < 35) {
      this.counts.malformed++;
      return damage(r, this.templates[r.int(this.templates.length)]);
    }
    if (dice < 55) {
      this.counts.syn++;
      // A quarter from spoofed sources (random, the gateway's, the host alias's).
      const src = r.int(4) === 0 ? [r.next(), GATEWAY, HOST_ALIAS][r.int(3)] : ip;
      const dstPort = r.int(2) === 0 ? this.targets.httpPort : 1 + r.int(1023);
      return tcpFrame(mac, gw, src, HOST_ALIAS, { srcPort: 1024 + r.int(60000), dstPort, seq: r.next(), flags: TcpFlag.SYN });
    }
    if (dice < 75) {
      this.counts.udp++;
      const kind = r.int(3);
      const payload = r.bytes(r.int(1400));
      if (kind === 0) return udpFrame(mac, gw, ip, HOST_ALIAS, 1024 + r.int(60000), this.targets.udpPort, payload);
      if (kind === 1) return udpFrame(mac, gw, ip, GATEWAY, 1024 + r.int(60000), 53, payload);
      return udpFrame(mac, gw, ip, HOST_ALIAS, 1024 + r.int(60000), 1 + r.int(1023), payload);
    }
    if (dice < 85) {
      this.counts.fragments++;
      return fragmentFrame(mac, gw, ip, HOST_ALIAS, r.int(0x10000), r.int(8000) * 8, r.int(4) !== 0, r.bytes(8 * (1 + r.int(180))));
    }
    if (dice < 95) {
      this.counts.arpDhcp++;
      const rmac = (r.next() * 0x10000 + (r.next() & 0xfffe)) % 0x1_0000_0000_0000;
      return r.int(2) === 0 ? dhcpFrame(rmac & ~0x0100_0000_0000, r.next(), DhcpMessageType.Discover) : arpFrame(rmac & ~0x0100_0000_0000, r.next(), GATEWAY, 1 + r.int(2));
    }
    this.counts.echo++;
    return echoFrame(mac, gw, ip, r.int(2) === 0 ? GATEWAY : HOST_ALIAS, r.int(0x10000), r.int(0x10000), r.bytes(r.int(1400)));
  }

  private receive(frame: Uint8Array): void {
    const eth = parseEthernet(frame);
    if (isWireError(eth) || eth.ethertype !== EtherType.IPv4) return;
    const ipb = frame.subarray(ETH_HEADER_LEN);
    const ip = parseIpv4(ipb);
    if (isWireError(ip)) return;
    const l4 = ipb.subarray(20, 20 + ip.payloadLength);
    if (ip.protocol === IpProtocol.UDP && this.onDhcp) {
      const u = parseUdp(l4, ip.src, ip.dst);
      if (isWireError(u) || u.dstPort !== 68) return;
      const d = parseDhcp(u.payload);
      if (isWireError(d) || d.chaddr !== this.mac) return;
      if (this.gatewayMac === BROADCAST) this.gatewayMac = eth.src;
      this.onDhcp(messageType(d) ?? 0, d.yiaddr, ip.src);
      return;
    }
    if (ip.protocol !== IpProtocol.TCP || ip.dst !== this.ip) return;
    const seg = parseTcp(l4, ip.src, ip.dst);
    if (isWireError(seg)) return;
    const s = this.slow.get(seg.dstPort);
    if (s === undefined || ip.src !== HOST_ALIAS) return;
    if (seg.flags & TcpFlag.RST) {
      this.slow.delete(seg.dstPort);
      return;
    }
    const synAck = (seg.flags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
    if (synAck && !s.requested) {
      s.rcvNxt = (seg.seq + 1) >>> 0;
      s.requested = true;
      this.counts.slowReadersOpen++;
      const req = new TextEncoder().encode(`GET /endless HTTP/1.1\r\nHost: host\r\n\r\n`);
      this.send(tcpFrame(this.mac, this.gatewayMac, this.ip, HOST_ALIAS, { srcPort: s.port, dstPort: this.targets.httpPort, seq: (s.iss + 1) >>> 0, ack: s.rcvNxt, flags: TcpFlag.ACK | TcpFlag.PSH, window: 8192, payload: req }));
      return;
    }
    if (seg.payload.length > 0 && s.requested) {
      // Take what arrived in order, then close the window: the reader stops reading.
      if (seg.seq === s.rcvNxt) {
        s.rcvNxt = (s.rcvNxt + seg.payload.length) >>> 0;
        this.counts.slowReaderBytes += seg.payload.length;
      }
      this.send(tcpFrame(this.mac, this.gatewayMac, this.ip, HOST_ALIAS, { srcPort: s.port, dstPort: this.targets.httpPort, seq: (s.iss + 1 + 37) >>> 0, ack: s.rcvNxt, flags: TcpFlag.ACK, window: 0 }));
    }
  }
}

/** A DNS query message for NAME, type A. */
function dnsQuery(name: string): Uint8Array {
  const labels = name.split(".");
  const out: number[] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) out.push(l.length, ...new TextEncoder().encode(l));
  out.push(0, 0, 1, 0, 1);
  return Uint8Array.from(out);
}
