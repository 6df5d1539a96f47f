/**
 * The DNS service through the stack, frame in → frame out, with a recording channel: UDP
 * queries to the gateway answered from the gateway's port 53 (checksums valid), forwarded
 * queries answered when the fake upstream replies, broadcasts ignored; DNS over TCP through
 * the stack's TCP layer with hand-made segments (length-prefixed messages, pipelining, close
 * after the guest's FIN, idle close, the connection bound).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { emitEthernet, parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { emitIpv4, parseIpv4, IpProtocol, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitUdp, parseUdp, udpLen } from "../../src/ipv4/udp.js";
import { emitTcp, parseTcp, tcpLen, TcpFlag, NO_TCP_OPTIONS, type TcpRepr } from "../../src/tcp/wire.js";
import { isWireError } from "../../src/common/wire-error.js";
import { getU16, setU16 } from "../../src/common/bytes.js";
import { parseIpv4Address as ip4, parseMac } from "../../src/common/addr.js";
import { createDnsServer, DnsService, type DnsServer } from "../../src/stack/dns-service.js";
import { DnsResolver } from "../../src/dns/resolver.js";
import { RecordStore } from "../../src/dns/records.js";
import { RecordingChannel } from "../support/replay.js";
import { until } from "../support/wait.js";
import { FakeUpstream, makeQuery, decodeAnswer } from "./fake-upstream.js";

const GUEST_MAC = parseMac("52:54:00:12:34:56")!;
const GW_MAC = parseMac("02:50:00:00:00:01")!;
const GUEST_IP = ip4("192.168.65.3")!;
const GW_IP = ip4("192.168.65.1")!;

function ipFrame(dst: number, protocol: number, l4: Uint8Array, dstMac = GW_MAC, src = GUEST_IP): Uint8Array {
  const repr: Ipv4Repr = { src, dst, protocol, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: l4.length, options: new Uint8Array(0) };
  const f = new Uint8Array(14 + 20 + l4.length);
  const o = emitEthernet({ dst: dstMac, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
  f.set(l4, o + emitIpv4(repr, f, o));
  return f;
}

function udpQueryFrame(payload: Uint8Array, dst = GW_IP, srcPort = 40000, dstMac = GW_MAC): Uint8Array {
  const u = new Uint8Array(udpLen({ srcPort, dstPort: 53, payload }));
  emitUdp({ srcPort, dstPort: 53, payload }, u, 0, GUEST_IP, dst);
  return ipFrame(dst, IpProtocol.UDP, u, dstMac);
}

/** Decode a frame the stack sent: Ethernet, IPv4 (checksum verified), then UDP or TCP (checksum verified). */
function decodeFrame(f: Uint8Array) {
  const eth = parseEthernet(f);
  if (isWireError(eth)) throw new Error(eth.reason);
  const ip = parseIpv4(f.subarray(14));
  if (isWireError(ip)) throw new Error(ip.reason);
  const l4 = f.subarray(14 + 20, 14 + 20 + ip.payloadLength);
  return { eth, ip, l4 };
}

function udpAnswer(f: Uint8Array) {
  const { eth, ip, l4 } = decodeFrame(f);
  expect(ip.protocol).to.equal(IpProtocol.UDP);
  const u = parseUdp(l4, ip.src, ip.dst);
  if (isWireError(u)) throw new Error(`udp: ${u.reason}`);
  return { eth, ip, udp: u, msg: decodeAnswer(u.payload) };
}

function setup(
  opts: { tcp?: boolean; sendBufferSize?: number; maxTcpConnections?: number; tcpIdleMs?: number; hostsPath?: string | null; servers?: { host: string; port: number }[] } = {},
) {
  const stack = new NetworkStack({});
  const ch = new RecordingChannel();
  const port = stack.attach(ch);
  const tcp = opts.tcp ? new TcpLayer(stack, opts.sendBufferSize ? { tcp: { sendBufferSize: opts.sendBufferSize } } : {}) : undefined;
  const dns = createDnsServer(stack, {
    hostsPath: opts.hostsPath ?? null,
    servers: opts.servers ?? [],
    timeoutMs: 300,
    tcp,
    maxTcpConnections: opts.maxTcpConnections,
    tcpIdleMs: opts.tcpIdleMs,
  });
  return { stack, ch, port, tcp, dns };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("dns/service", () => {
  let fake: FakeUpstream;
  let dir: string;
  const cleanup: Array<() => void> = [];
  before(async () => {
    fake = await FakeUpstream.start({ "fwd.example.test": [{ type: "A", name: "fwd.example.test", ttl: 60, data: "203.0.113.5" }] });
    dir = mkdtempSync(join(tmpdir(), "skiff-dns-service-"));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  function track<T extends { dns: DnsServer; tcp?: TcpLayer }>(s: T): T {
    cleanup.push(() => {
      s.dns.close();
      s.tcp?.close();
    });
    return s;
  }

  describe("UDP through the stack", () => {
    it("answers a query frame with one answer frame from the gateway's port 53, checksums valid", async () => {
      const { stack, ch, port } = track(setup());
      stack.receive(port, udpQueryFrame(makeQuery("host.internal", "A", { id: 0x77 }), GW_IP, 41234));
      await tick();
      expect(ch.sent.length).to.equal(1);
      const { eth, ip, udp, msg } = udpAnswer(ch.sent[0]);
      expect(eth).to.deep.equal({ dst: GUEST_MAC, src: GW_MAC, ethertype: EtherType.IPv4 });
      expect([ip.src, ip.dst]).to.deep.equal([GW_IP, GUEST_IP]);
      expect([udp.srcPort, udp.dstPort]).to.deep.equal([53, 41234]);
      expect(getU16(ch.sent[0], 14 + 20 + 6), "UDP checksum present").to.not.equal(0);
      expect(msg.id).to.equal(0x77);
      expect(msg.answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["192.168.65.2"]);
    });

    it("answers a forwarded query once the upstream replies", async () => {
      const { stack, ch, port, dns } = track(setup({ servers: [fake.server] }));
      stack.receive(port, udpQueryFrame(makeQuery("fwd.example.test", "A")));
      await until(() => ch.sent.length === 1, 2000, "forwarded answer");
      expect(udpAnswer(ch.sent[0]).msg.answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["203.0.113.5"]);
      expect(dns.service.counters.udpAnswers).to.equal(1);
    });

    it("answers SERVFAIL through the stack when there is no upstream", async () => {
      const { stack, ch, port } = track(setup());
      stack.receive(port, udpQueryFrame(makeQuery("fwd.example.test", "A")));
      await until(() => ch.sent.length === 1, 2000, "SERVFAIL");
      expect(udpAnswer(ch.sent[0]).msg.rcode).to.equal("SERVFAIL");
    });

    it("sends a truncated (TC) answer that fits 512 bytes for a large local answer without EDNS", async () => {
      const { stack, ch, port, dns } = track(setup());
      for (let i = 1; i <= 60; i++) dns.records.add("big.test", `10.0.0.${i}`);
      stack.receive(port, udpQueryFrame(makeQuery("big.test", "A")));
      await tick();
      const { udp, msg } = udpAnswer(ch.sent[0]);
      expect(udp.payload.length).to.be.at.most(512);
      expect(msg.flag_tc).to.equal(true);
      // With EDNS 4096 it fits the 1500-byte link (60 × 16 bytes of answers).
      stack.receive(port, udpQueryFrame(makeQuery("big.test", "A", { udpSize: 4096 })));
      await tick();
      const full = udpAnswer(ch.sent[1]);
      expect(full.msg.flag_tc).to.equal(false);
      expect(full.msg.answers!.length).to.equal(60);
    });

    it("uses the hosts file given", async () => {
      const hostsPath = join(dir, "hosts");
      writeFileSync(hostsPath, "10.9.8.7 fromhosts.test\n");
      const { stack, ch, port } = track(setup({ hostsPath }));
      stack.receive(port, udpQueryFrame(makeQuery("fromhosts.test", "A")));
      await tick();
      expect(udpAnswer(ch.sent[0]).msg.answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["10.9.8.7"]);
    });

    it("ignores queries to a broadcast address, is silent for garbage, and answers FORMERR for a bad body", async () => {
      const { stack, ch, port, dns } = track(setup());
      stack.receive(port, udpQueryFrame(makeQuery("host.internal", "A"), 0xffff_ffff, 40000, 0xffff_ffff_ffff));
      stack.receive(port, udpQueryFrame(Uint8Array.from([1, 2, 3])));
      const bad = new Uint8Array(14);
      bad[5] = 1; // one question, none there
      stack.receive(port, udpQueryFrame(bad));
      await tick();
      expect(ch.sent.length).to.equal(1);
      expect(udpAnswer(ch.sent[0]).msg.rcode).to.equal("FORMERR");
      expect(dns.service.counters.udpNotToGateway).to.equal(1);
      expect(dns.resolver.counters.ignoredMalformed).to.equal(1);
    });

    it("stops answering after close and frees port 53", async () => {
      const { stack, ch, port, dns } = setup();
      dns.close();
      stack.receive(port, udpQueryFrame(makeQuery("host.internal", "A")));
      await tick();
      // The stack answers ICMP port unreachable now that nothing is bound.
      expect(ch.sent.length).to.equal(1);
      expect(decodeFrame(ch.sent[0]).ip.protocol).to.equal(IpProtocol.ICMP);
      const again = new DnsService(stack, new DnsResolver({ records: new RecordStore(stack.config) }));
      again.close();
    });
  });

  /** A scripted guest TCP endpoint talking to the gateway's port 53. */
  class TcpGuest {
    seq = 1000;
    ack = 0;
    /** Window advertised in every segment (0: the guest reads nothing). */
    window = 65535;
    received = new Uint8Array(0);
    finReceived = false;
    rstReceived = false;
    private seen = 0;

    constructor(
      private readonly stack: NetworkStack,
      private readonly port: Port,
      private readonly ch: RecordingChannel,
      readonly srcPort = 45000,
    ) {}

    send(flags: number, payload: Uint8Array = new Uint8Array(0)): void {
      const seg: TcpRepr = { srcPort: this.srcPort, dstPort: 53, seq: this.seq, ack: this.ack, flags, window: this.window, urgentPointer: 0, options: flags & TcpFlag.SYN ? { mss: 1460 } : NO_TCP_OPTIONS, payload };
      const b = new Uint8Array(tcpLen(seg));
      emitTcp(seg, b, 0, GUEST_IP, GW_IP);
      this.stack.receive(this.port, ipFrame(GW_IP, IpProtocol.TCP, b));
      this.seq = (this.seq + payload.length + (flags & (TcpFlag.SYN | TcpFlag.FIN) ? 1 : 0)) >>> 0;
    }

    /** Take the stack's new segments to this guest: track seq, collect data, ACK data and FIN. */
    poll(): void {
      let needAck = false;
      for (; this.seen < this.ch.sent.length; this.seen++) {
        const { ip, l4 } = decodeFrame(this.ch.sent[this.seen]);
        if (ip.protocol !== IpProtocol.TCP) continue;
        const seg = parseTcp(l4, ip.src, ip.dst);
        if (isWireError(seg)) throw new Error(`tcp: ${seg.reason}`);
        if (seg.dstPort !== this.srcPort) continue;
        if (seg.flags & TcpFlag.RST) this.rstReceived = true;
        if (seg.flags & TcpFlag.SYN) this.ack = (seg.seq + 1) >>> 0;
        if (seg.payload.length > 0 && seg.seq === this.ack) {
          const joined = new Uint8Array(this.received.length + seg.payload.length);
          joined.set(this.received);
          joined.set(seg.payload, this.received.length);
          this.received = joined;
          this.ack = (this.ack + seg.payload.length) >>> 0;
          needAck = true;
        }
        if (seg.flags & TcpFlag.FIN && (seg.seq + seg.payload.length) >>> 0 === this.ack) {
          this.ack = (this.ack + 1) >>> 0;
          this.finReceived = true;
          needAck = true;
        }
      }
      if (needAck) this.send(TcpFlag.ACK);
    }

    connect(): void {
      this.send(TcpFlag.SYN);
      this.poll();
      this.send(TcpFlag.ACK);
    }

    /** Complete messages received so far (length prefixes removed). */
    messages(): Uint8Array[] {
      const out: Uint8Array[] = [];
      let o = 0;
      while (o + 2 <= this.received.length && o + 2 + getU16(this.received, o) <= this.received.length) {
        const len = getU16(this.received, o);
        out.push(this.received.subarray(o + 2, o + 2 + len));
        o += 2 + len;
      }
      return out;
    }
  }

  function framed(...msgs: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(msgs.reduce((n, m) => n + 2 + m.length, 0));
    let o = 0;
    for (const m of msgs) {
      setU16(out, o, m.length);
      out.set(m, o + 2);
      o += 2 + m.length;
    }
    return out;
  }

  describe("DNS over TCP through the stack (RFC 7766)", () => {
    it("answers a length-prefixed query on port 53 of the gateway", async () => {
      const { stack, ch, port } = track(setup({ tcp: true }));
      const g = new TcpGuest(stack, port, ch);
      g.connect();
      g.send(TcpFlag.ACK | TcpFlag.PSH, framed(makeQuery("gateway.internal", "A", { id: 11 })));
      await until(() => (g.poll(), g.messages().length === 1), 2000, "TCP answer");
      const m = decodeAnswer(g.messages()[0]);
      expect(m.id).to.equal(11);
      expect(m.answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["192.168.65.1"]);
    });

    it("answers pipelined queries, a query split across segments, and closes after the guest's FIN", async () => {
      const { stack, ch, port, dns } = track(setup({ tcp: true, servers: [fake.server] }));
      const g = new TcpGuest(stack, port, ch, 45001);
      g.connect();
      const bytes = framed(makeQuery("fwd.example.test", "A", { id: 1 }), makeQuery("host.internal", "A", { id: 2 }), makeQuery("gateway.internal", "AAAA", { id: 3 }));
      // Split in the middle of the second message's length prefix and of the third's body.
      const cuts = [0, 35, 36, bytes.length - 5, bytes.length];
      for (let i = 0; i + 1 < cuts.length; i++) g.send(TcpFlag.ACK, bytes.subarray(cuts[i], cuts[i + 1]));
      g.send(TcpFlag.ACK | TcpFlag.FIN);
      await until(() => (g.poll(), g.finReceived), 3000, "FIN after the answers");
      const ids = g.messages().map((m) => decodeAnswer(m).id);
      expect([...ids].sort()).to.deep.equal([1, 2, 3]);
      expect(ids[ids.length - 1], "the forwarded answer comes last").to.equal(1);
      expect(decodeAnswer(g.messages()[ids.indexOf(1)]).answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["203.0.113.5"]);
      expect(dns.service.counters.tcpQueries).to.equal(3);
      expect(dns.service.counters.tcpAnswers).to.equal(3);
    });

    it("gives the whole large answer over TCP that UDP truncates", async () => {
      const { stack, ch, port, dns } = track(setup({ tcp: true }));
      for (let i = 1; i <= 200; i++) dns.records.add("many.test", `10.1.${i >> 8}.${i & 255}`);
      const g = new TcpGuest(stack, port, ch, 45002);
      g.connect();
      g.send(TcpFlag.ACK | TcpFlag.PSH, framed(makeQuery("many.test", "A")));
      await until(() => (g.poll(), g.messages().length === 1), 2000, "large TCP answer");
      const m = decodeAnswer(g.messages()[0]);
      expect(m.flag_tc).to.equal(false);
      expect(m.answers!.length).to.equal(200);
    });

    it("stops reading queries while answers wait for a guest that does not read (bounded memory)", async () => {
      const { stack, ch, port, dns, tcp } = track(setup({ tcp: true, sendBufferSize: 8192 }));
      for (let i = 1; i <= 100; i++) dns.records.add("many.test", `10.1.0.${i}`);
      const g = new TcpGuest(stack, port, ch, 45003);
      g.connect();
      g.window = 0;
      g.send(TcpFlag.ACK);
      const q = makeQuery("many.test", "A"); // ~1.6 KB answer each
      const many = framed(...new Array(200).fill(q));
      for (let o = 0; o < many.length; o += 1000) g.send(TcpFlag.ACK, many.subarray(o, o + 1000));
      await until(() => dns.service.counters.tcpAnswers > 0 && dns.resolver.counters.queries === dns.service.counters.tcpAnswers, 2000, "answers");
      await tick();
      const flow = [...tcp!.all()][0];
      // 16 queries are read at once (the pipeline bound); each answer that fits the 8 KB send
      // buffer (5 of ~1.6 KB) lets one more in; then answers wait in skiff and the rest stays unread.
      expect(dns.service.counters.tcpQueries).to.be.within(16, 16 + 6);
      expect(flow.conn.unacknowledged).to.equal(8192);
      expect(flow.readable).to.be.greaterThan(many.length / 2);
    });

    it("refuses connections beyond the bound with RST", async () => {
      const { stack, ch, port, dns } = track(setup({ tcp: true, maxTcpConnections: 1 }));
      const a = new TcpGuest(stack, port, ch, 45010);
      a.connect();
      const b = new TcpGuest(stack, port, ch, 45011);
      b.send(TcpFlag.SYN);
      b.poll();
      expect(b.rstReceived).to.equal(true);
      expect(dns.service.counters.tcpRefused).to.equal(1);
      expect(dns.service.tcpConnections).to.equal(1);
    });

    it("closes an idle connection (RFC 7766 §6.2.3)", async () => {
      const { stack, ch, port, dns } = track(setup({ tcp: true, tcpIdleMs: 50 }));
      const g = new TcpGuest(stack, port, ch, 45020);
      g.connect();
      await until(() => (g.poll(), g.finReceived), 2000, "idle FIN");
      expect(dns.service.counters.tcpIdleClosed).to.equal(1);
    });

    it("answerTcp answers one message without the length prefix", async () => {
      const { dns } = track(setup());
      const out = await dns.service.answerTcp(makeQuery("host.containers.internal", "A", { id: 5 }));
      expect(decodeAnswer(out!).answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["192.168.65.2"]);
    });
  });
});
