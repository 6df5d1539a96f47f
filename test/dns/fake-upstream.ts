/**
 * A fake upstream DNS server on 127.0.0.1 (UDP and TCP on the same ephemeral port) for the DNS
 * tests: answers from a zone given as dns-packet records, NXDOMAIN for names it does not
 * have, honest about sizes (a UDP answer larger than the asker's size — its OPT's, else 512 —
 * goes out as header + question with TC; TCP gets everything). It records every query it
 * receives and every answer it sends, and can be told to stay silent or to send raw bytes.
 * Never talks to anything but the loopback address.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket as TcpSocket } from "node:net";
import dnsPacket from "dns-packet";

export type Transport = "udp" | "tcp";

export interface Exchange {
  transport: Transport;
  bytes: Buffer;
}

/** Answer records by lower-case name. */
export type Zone = Record<string, dnsPacket.Answer[]>;

export class FakeUpstream {
  readonly received: Exchange[] = [];
  readonly sent: Exchange[] = [];
  /** Answer nothing at all. */
  silent = false;
  /** Answer nothing over UDP for these (lower-case) names. */
  readonly silentNames = new Set<string>();
  /** Replace the answer: return bytes to send (may be several datagrams), or undefined for the zone's answer. */
  raw: ((query: Buffer, transport: Transport) => Buffer[] | undefined) | undefined;
  private readonly tcpSockets = new Set<TcpSocket>();

  private constructor(
    readonly zone: Zone,
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    readonly port: number,
  ) {}

  static async start(zone: Zone = {}): Promise<FakeUpstream> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = createSocket("udp4");
      await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
      const port = udp.address().port;
      const tcp = createServer();
      const ok = await new Promise<boolean>((r) => {
        tcp.once("error", () => r(false));
        tcp.listen(port, "127.0.0.1", () => r(true));
      });
      if (!ok) {
        udp.close();
        continue;
      }
      const f = new FakeUpstream(zone, udp, tcp, port);
      f.listen();
      return f;
    }
    throw new Error("could not bind a fake upstream on one UDP+TCP port");
  }

  get server(): { host: string; port: number } {
    return { host: "127.0.0.1", port: this.port };
  }

  private listen(): void {
    this.udp.on("message", (m, rinfo) => {
      this.received.push({ transport: "udp", bytes: m });
      if (this.silent) return;
      for (const out of this.answer(m, "udp")) {
        this.sent.push({ transport: "udp", bytes: out });
        this.udp.send(out, rinfo.port, rinfo.address);
      }
    });
    this.tcp.on("connection", (s) => {
      this.tcpSockets.add(s);
      s.on("close", () => this.tcpSockets.delete(s));
      s.on("error", () => {});
      let buf = Buffer.alloc(0);
      s.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + m.length);
          this.received.push({ transport: "tcp", bytes: Buffer.from(m) });
          if (this.silent) continue;
          for (const out of this.answer(m, "tcp")) {
            this.sent.push({ transport: "tcp", bytes: out });
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length);
            s.write(Buffer.concat([len, out]));
          }
        }
      });
    });
  }

  private answer(m: Buffer, transport: Transport): Buffer[] {
    const raw = this.raw?.(m, transport);
    if (raw !== undefined) return raw;
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(m);
    } catch {
      return [];
    }
    const question = q.questions?.[0];
    if (question === undefined) return [];
    const name = question.name.toLowerCase();
    if (transport === "udp" && this.silentNames.has(name)) return [];
    const opt = q.additionals?.find((a) => a.type === "OPT") as dnsPacket.OptAnswer | undefined;
    const records = this.zone[name];
    const answers = (records ?? []).filter((a) => a.type === question.type || question.type === ("ANY" as dnsPacket.RecordType));
    const rcode = records === undefined ? 3 : 0;
    const base = {
      type: "response" as const,
      id: q.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
      questions: [question],
      additionals: opt ? [{ type: "OPT", name: ".", udpPayloadSize: 4096, flags: 0 } as dnsPacket.OptAnswer] : [],
    };
    const full = dnsPacket.encode({ ...base, answers });
    const limit = opt ? Math.max(512, opt.udpPayloadSize) : 512;
    if (transport === "udp" && full.length > limit) {
      return [dnsPacket.encode({ ...base, flags: base.flags | dnsPacket.TRUNCATED_RESPONSE, answers: [] })];
    }
    return [full];
  }

  /** The last answer sent over `transport`. */
  lastSent(transport: Transport): Buffer {
    const e = [...this.sent].reverse().find((x) => x.transport === transport);
    if (e === undefined) throw new Error(`fake upstream sent nothing over ${transport}`);
    return e.bytes;
  }

  async close(): Promise<void> {
    for (const s of this.tcpSockets) s.destroy();
    this.udp.close();
    await new Promise<void>((r) => this.tcp.close(() => r()));
  }
}

/** A query as a stub resolver would send it (RD set), optionally with an OPT record. */
export function makeQuery(name: string, type: string, opts: { id?: number; udpSize?: number; ednsVersion?: number } = {}): Uint8Array {
  const additionals: dnsPacket.Answer[] =
    opts.udpSize === undefined ? [] : [{ type: "OPT", name: ".", udpPayloadSize: opts.udpSize, ednsVersion: opts.ednsVersion ?? 0, flags: 0 } as dnsPacket.OptAnswer];
  const b = dnsPacket.encode({
    type: "query",
    id: opts.id ?? 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as dnsPacket.RecordType, name, class: "IN" }],
    additionals,
  });
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** Decode an answer, with the rcode dns-packet returns but its types omit. */
export function decodeAnswer(b: Uint8Array): dnsPacket.DecodedPacket & { rcode: string } {
  return dnsPacket.decode(Buffer.from(b.buffer, b.byteOffset, b.length)) as dnsPacket.DecodedPacket & { rcode: string };
}
