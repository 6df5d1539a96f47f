/**
 * The resolver: query bytes in, answer bytes out. Local names (built-ins, run-time records,
 * the hosts file, PTR), forwarding through the real forwarder to a fake upstream on
 * 127.0.0.1 (every record type byte for byte, TC → TCP, timeouts → SERVFAIL, the in-flight
 * bound), EDNS sizes and truncation, and malformed input (FORMERR / NOTIMP / BADVERS /
 * silence, never a throw).
 */
import { expect } from "chai";
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import { DnsResolver, DnsRcode, parseQuery, type ResolverOptions } from "../../src/dns/resolver.js";
import { RecordStore } from "../../src/dns/records.js";
import { HostsFile } from "../../src/dns/hosts.js";
import { UpstreamForwarder, replyMatches, type UpstreamServer } from "../../src/dns/upstream.js";
import { resolveConfig } from "../../src/stack/config.js";
import { isWireError } from "../../src/common/wire-error.js";
import { damaged } from "../support/arbitraries.js";
import { FakeUpstream, makeQuery, decodeAnswer, type Zone } from "./fake-upstream.js";

// ~760 bytes of TXT data (the zone gets a copy: dns-packet's encode turns the strings into Buffers in place).
const BIG_TXT: readonly string[] = ["a".repeat(250), "b".repeat(250), "c".repeat(250)];

const ZONE: Zone = {
  "www.example.test": [
    { type: "CNAME", name: "www.example.test", ttl: 300, data: "web.example.test" },
    { type: "A", name: "www.example.test", ttl: 300, data: "203.0.113.10" },
  ],
  "a.example.test": [{ type: "A", name: "a.example.test", ttl: 60, data: "203.0.113.1" }],
  "v6.example.test": [{ type: "AAAA", name: "v6.example.test", ttl: 60, data: "2001:db8::1" }],
  "example.test": [
    { type: "MX", name: "example.test", ttl: 60, data: { preference: 10, exchange: "mx.example.test" } },
    { type: "NS", name: "example.test", ttl: 60, data: "ns1.example.test" },
    { type: "SOA", name: "example.test", ttl: 60, data: { mname: "ns1.example.test", rname: "admin.example.test", serial: 7, refresh: 1, retry: 2, expire: 3, minimum: 4 } },
    { type: "TXT", name: "example.test", ttl: 60, data: ["v=spf1 -all"] },
  ],
  "_sip._udp.example.test": [{ type: "SRV", name: "_sip._udp.example.test", ttl: 60, data: { priority: 1, weight: 2, port: 5060, target: "sip.example.test" } }],
  "10.113.0.203.in-addr.arpa": [{ type: "PTR", name: "10.113.0.203.in-addr.arpa", ttl: 60, data: "www.example.test" }],
  "big.example.test": [{ type: "TXT", name: "big.example.test", ttl: 60, data: [...BIG_TXT] }],
  "host.internal.example.test": [{ type: "A", name: "host.internal.example.test", ttl: 60, data: "203.0.113.99" }],
  "1.2.0.192.in-addr.arpa": [{ type: "PTR", name: "1.2.0.192.in-addr.arpa", ttl: 60, data: "upstream.example.test" }],
  "hosts.test": [{ type: "A", name: "hosts.test", ttl: 60, data: "203.0.113.200" }],
};

describe("dns/resolver", () => {
  let fake: FakeUpstream;
  const open: Array<{ close(): void }> = [];
  let dir: string;

  before(async () => {
    fake = await FakeUpstream.start(ZONE);
    dir = mkdtempSync(join(tmpdir(), "skiff-dns-resolver-"));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const o of open.splice(0)) o.close();
    fake.silent = false;
    fake.silentNames.clear();
    fake.raw = undefined;
  });

  interface SetupOptions extends Partial<ResolverOptions> {
    hostAliasIp?: string | null;
    servers?: UpstreamServer[];
    timeoutMs?: number;
    maxInFlight?: number;
    hostsText?: string;
    ipv6?: boolean;
  }

  function setup(o: SetupOptions = {}): { r: DnsResolver; records: RecordStore; up: UpstreamForwarder } {
    const records = new RecordStore(resolveConfig({ hostAliasIp: o.hostAliasIp, ipv6: o.ipv6 }));
    const up = new UpstreamForwarder({ servers: o.servers ?? [fake.server], timeoutMs: o.timeoutMs ?? 1000, maxInFlight: o.maxInFlight, log: o.log });
    open.push(up);
    let hosts: HostsFile | undefined;
    if (o.hostsText !== undefined) {
      const p = join(dir, `hosts-${Math.random().toString(36).slice(2)}`);
      writeFileSync(p, o.hostsText);
      hosts = new HostsFile(p);
    }
    const r = new DnsResolver({ records, hosts, upstream: up, ...o });
    return { r, records, up };
  }

  async function ask(r: DnsResolver, q: Uint8Array, transport: "udp" | "tcp" = "udp") {
    const out = await r.resolve(q, transport);
    if (out === undefined) throw new Error("no answer");
    return { bytes: out, msg: decodeAnswer(out) };
  }

  const addrs = (m: dnsPacket.DecodedPacket) => (m.answers ?? []).map((a) => (a as { data: unknown }).data);

  describe("built-in names", () => {
    for (const [name, ip] of [
      ["host.internal", "192.168.65.2"],
      ["gateway.internal", "192.168.65.1"],
      ["host.docker.internal", "192.168.65.2"],
      ["gateway.docker.internal", "192.168.65.1"],
      ["host.containers.internal", "192.168.65.2"],
    ] as const) {
      it(`${name} A → ${ip}, authoritative, ID and question echoed`, async () => {
        const { r } = setup();
        const q = makeQuery(name, "A", { id: 0xbeef });
        const { bytes, msg } = await ask(r, q);
        expect(msg.id).to.equal(0xbeef);
        expect(msg.rcode).to.equal("NOERROR");
        expect(msg.flag_qr && msg.flag_aa && msg.flag_rd && msg.flag_ra).to.equal(true);
        expect(addrs(msg)).to.deep.equal([ip]);
        expect(msg.answers![0].name).to.equal(name);
        expect(Buffer.from(bytes.subarray(12, q.length)).equals(Buffer.from(q.subarray(12)))).to.equal(true);
        expect(fake.received.length === 0 || !fake.received.some((e) => decodeAnswer(e.bytes).questions![0].name === name)).to.equal(true);
      });
    }

    it("is case-insensitive and tolerates the trailing dot, echoing the question's case", async () => {
      const { r } = setup();
      const q = makeQuery("HoSt.DoCkEr.InTeRnAl.", "A");
      const { bytes, msg } = await ask(r, q);
      expect(addrs(msg)).to.deep.equal(["192.168.65.2"]);
      expect(msg.questions![0].name).to.equal("HoSt.DoCkEr.InTeRnAl");
      expect(Buffer.from(bytes.subarray(12, q.length)).equals(Buffer.from(q.subarray(12)))).to.equal(true);
    });

    it("answers AAAA of an owned name with its IPv6 address (the gateway's /64, src/stack/config6.ts)", async () => {
      const { r } = setup();
      const h = await ask(r, makeQuery("host.internal", "AAAA"));
      const g = await ask(r, makeQuery("gateway.internal", "AAAA"));
      expect([addrs(h.msg), addrs(g.msg)]).to.deep.equal([["fd73:6b69:6666::2"], ["fd73:6b69:6666::1"]]);
    });

    it("answers PTR in ip6.arpa for the gateway and the alias; NXDOMAIN elsewhere in the guest prefix", async () => {
      const { r } = setup();
      const rev = (last: string) => `${last}.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.6.6.6.9.6.b.6.3.7.d.f.ip6.arpa`;
      const g = await ask(r, makeQuery(rev("1"), "PTR"));
      const h = await ask(r, makeQuery(rev("2").toUpperCase(), "PTR"));
      const other = await ask(r, makeQuery(rev("9"), "PTR"));
      expect([addrs(g.msg), addrs(h.msg), other.msg.rcode]).to.deep.equal([["gateway.internal"], ["host.internal"], "NXDOMAIN"]);
    });

    it("without IPv6, answers AAAA of an owned name with an empty NOERROR, not NXDOMAIN", async () => {
      const { r } = setup({ ipv6: false });
      for (const name of ["host.internal", "gateway.internal"]) {
        const { msg } = await ask(r, makeQuery(name, "AAAA"));
        expect(msg.rcode, name).to.equal("NOERROR");
        expect(msg.answers).to.deep.equal([]);
      }
      expect(r.counters.localNodata).to.equal(2);
    });

    it("answers other types of an owned name (MX, TXT, CNAME) with an empty NOERROR", async () => {
      const { r } = setup();
      for (const t of ["MX", "TXT", "CNAME", "SRV"]) {
        const { msg } = await ask(r, makeQuery("gateway.internal", t));
        expect(msg.rcode, t).to.equal("NOERROR");
        expect(msg.answers, t).to.deep.equal([]);
      }
    });

    it("answers ANY of an owned name with its address", async () => {
      const { r } = setup();
      const { msg } = await ask(r, makeQuery("host.internal", "ANY"));
      expect(addrs(msg)).to.deep.equal(["192.168.65.2", "fd73:6b69:6666::2"]);
    });

    it("answers PTR for the gateway and the host alias", async () => {
      const { r } = setup();
      const g = await ask(r, makeQuery("1.65.168.192.in-addr.arpa", "PTR"));
      expect(addrs(g.msg)).to.deep.equal(["gateway.internal"]);
      const h = await ask(r, makeQuery("2.65.168.192.IN-ADDR.ARPA", "PTR"));
      expect(addrs(h.msg)).to.deep.equal(["host.internal"]);
      expect(h.msg.flag_aa).to.equal(true);
    });

    it("answers NXDOMAIN for unknown reverse names inside the guest network, without forwarding", async () => {
      const { r } = setup();
      const before = fake.received.length;
      const { msg } = await ask(r, makeQuery("77.65.168.192.in-addr.arpa", "PTR"));
      expect(msg.rcode).to.equal("NXDOMAIN");
      expect(fake.received.length).to.equal(before);
    });

    it("with the host alias disabled, answers the host names NXDOMAIN and never forwards them", async () => {
      const { r } = setup({ hostAliasIp: null });
      const before = fake.received.length;
      for (const t of ["A", "AAAA"]) {
        const { msg } = await ask(r, makeQuery("host.docker.internal", t));
        expect(msg.rcode, t).to.equal("NXDOMAIN");
      }
      const g = await ask(r, makeQuery("gateway.internal", "A"));
      expect(addrs(g.msg)).to.deep.equal(["192.168.65.1"]);
      expect(fake.received.length).to.equal(before);
    });

    it("forwards other names under .internal (documented choice) and names that merely contain ours", async () => {
      const { r } = setup();
      const a = await ask(r, makeQuery("nothere.internal", "A"));
      expect(a.msg.rcode).to.equal("NXDOMAIN");
      expect(a.msg.flag_aa).to.equal(false); // the upstream's answer, not ours
      const b = await ask(r, makeQuery("host.internal.example.test", "A"));
      expect(addrs(b.msg)).to.deep.equal(["203.0.113.99"]);
      expect(r.counters.forwarded).to.equal(2);
    });

    it("includes an OPT record in local answers only when the query had one", async () => {
      const { r } = setup({ maxUdpPayload: 1472 });
      const withOpt = await ask(r, makeQuery("host.internal", "A", { udpSize: 1232 }));
      const opt = withOpt.msg.additionals!.find((a) => a.type === "OPT") as dnsPacket.OptAnswer;
      expect(opt.udpPayloadSize).to.equal(1472);
      const without = await ask(r, makeQuery("host.internal", "A"));
      expect(without.msg.additionals).to.deep.equal([]);
    });

    it("sets the configured TTL on local answers", async () => {
      const { r } = setup({ ttl: 30 });
      const { msg } = await ask(r, makeQuery("gateway.internal", "A"));
      expect((msg.answers![0] as { ttl?: number }).ttl).to.equal(30);
    });
  });

  describe("run-time records and the hosts file", () => {
    it("answers records added at run time (several A, AAAA) and forwards once they are removed", async () => {
      const { r, records } = setup();
      records.add("svc.test", "10.1.0.1");
      records.add("svc.test", "10.1.0.2");
      records.add("svc.test", "fd00::7");
      const a = await ask(r, makeQuery("SVC.test", "A"));
      expect(addrs(a.msg)).to.deep.equal(["10.1.0.1", "10.1.0.2"]);
      const aaaa = await ask(r, makeQuery("svc.test", "AAAA"));
      expect(addrs(aaaa.msg)).to.deep.equal(["fd00::7"]);
      const ptr = await ask(r, makeQuery("2.0.1.10.in-addr.arpa", "PTR"));
      expect(addrs(ptr.msg)).to.deep.equal(["svc.test"]);
      records.remove("svc.test");
      const gone = await ask(r, makeQuery("svc.test", "A"));
      expect(gone.msg.rcode).to.equal("NXDOMAIN"); // the fake upstream's answer
      expect(fake.received.some((e) => decodeAnswer(e.bytes).questions![0].name === "svc.test")).to.equal(true);
    });

    it("answers a name with only A records locally with an empty NOERROR for AAAA", async () => {
      const { r, records } = setup();
      records.add("only4.test", "10.2.0.1");
      const { msg } = await ask(r, makeQuery("only4.test", "AAAA"));
      expect(msg.rcode).to.equal("NOERROR");
      expect(msg.answers).to.deep.equal([]);
    });

    it("answers hosts-file names locally, ahead of forwarding, IPv4 and IPv6", async () => {
      const { r } = setup({ hostsText: "10.3.0.1 hosts.test alias.test\n::1 hosts.test\nfd00::9 v6only.test\n" });
      const a = await ask(r, makeQuery("Hosts.Test", "A"));
      expect(addrs(a.msg)).to.deep.equal(["10.3.0.1"]); // the upstream would say 203.0.113.200
      expect(a.msg.flag_aa).to.equal(true);
      const aaaa = await ask(r, makeQuery("hosts.test", "AAAA"));
      expect(addrs(aaaa.msg)).to.deep.equal(["::1"]);
      const alias = await ask(r, makeQuery("alias.test", "A"));
      expect(addrs(alias.msg)).to.deep.equal(["10.3.0.1"]);
      const v6 = await ask(r, makeQuery("v6only.test", "A"));
      expect(v6.msg.rcode).to.equal("NOERROR");
      expect(v6.msg.answers).to.deep.equal([]);
      const ptr = await ask(r, makeQuery("1.0.3.10.in-addr.arpa", "PTR"));
      expect(addrs(ptr.msg)).to.deep.equal(["hosts.test"]);
    });

    it("prefers built-ins over the hosts file, and run-time records over the hosts file", async () => {
      const { r, records } = setup({ hostsText: "10.4.0.1 host.internal\n10.4.0.2 both.test\n" });
      records.add("both.test", "10.4.0.3");
      expect(addrs((await ask(r, makeQuery("host.internal", "A"))).msg)).to.deep.equal(["192.168.65.2"]);
      expect(addrs((await ask(r, makeQuery("both.test", "A"))).msg)).to.deep.equal(["10.4.0.3"]);
    });

    it("cuts a local answer that does not fit 512 bytes to header + question with TC, and gives it all over TCP", async () => {
      const { r, records } = setup();
      for (let i = 1; i <= 40; i++) records.add("many.test", `10.5.0.${i}`);
      const q = makeQuery("many.test", "A");
      const udp = await ask(r, q);
      expect(udp.bytes.length).to.be.at.most(512);
      expect(udp.msg.flag_tc).to.equal(true);
      expect(udp.msg.answers).to.deep.equal([]);
      expect(udp.msg.questions).to.deep.equal([{ name: "many.test", type: "A", class: "IN" }]);
      const tcp = await ask(r, q, "tcp");
      expect(tcp.msg.flag_tc).to.equal(false);
      expect(tcp.msg.answers!.length).to.equal(40);
      expect(r.counters.truncated).to.equal(1);
    });
  });

  describe("forwarding", () => {
    const cases: Array<[string, string]> = [
      ["a.example.test", "A"],
      ["v6.example.test", "AAAA"],
      ["www.example.test", "CNAME"],
      ["example.test", "MX"],
      ["example.test", "TXT"],
      ["_sip._udp.example.test", "SRV"],
      ["10.113.0.203.in-addr.arpa", "PTR"],
      ["example.test", "NS"],
      ["example.test", "SOA"],
    ];
    for (const [name, type] of cases) {
      it(`passes a ${type} answer through byte for byte apart from the ID`, async () => {
        const { r } = setup();
        const q = makeQuery(name, type, { id: 0x4242, udpSize: 1232 });
        const { bytes, msg } = await ask(r, q);
        const sent = fake.lastSent("udp");
        const asked = fake.received[fake.received.length - 1].bytes;
        expect(Buffer.from(asked.subarray(2)).equals(Buffer.from(q.subarray(2))), "the query goes upstream unchanged apart from the ID").to.equal(true);
        expect(Buffer.from(bytes.subarray(2)).equals(sent.subarray(2))).to.equal(true);
        expect(msg.id).to.equal(0x4242);
        expect(msg.answers!.some((a) => a.type === type)).to.equal(true);
      });
    }

    it("sends a fresh random ID upstream", async () => {
      const { r } = setup();
      const ids = new Set<number>();
      for (let i = 0; i < 8; i++) {
        await ask(r, makeQuery("a.example.test", "A", { id: 7 }));
        ids.add(fake.received[fake.received.length - 1].bytes.readUInt16BE(0));
      }
      expect(ids.size, "8 upstream IDs, not all the client's").to.be.greaterThan(1);
    });

    it("passes an unknown record type and the upstream's own bytes through untouched", async () => {
      const { r } = setup();
      // Hand-built: one answer of private type 65280 with arbitrary rdata, plus trailing flags as the server set them.
      fake.raw = (query) => {
        const qEnd = query.length;
        const rr = Buffer.from([0xc0, 0x0c, 0xff, 0x00, 0x00, 0x01, 0, 0, 0x0e, 0x10, 0x00, 0x05, 1, 2, 3, 4, 5]);
        const out = Buffer.concat([query.subarray(0, qEnd), rr]);
        out.writeUInt16BE(0x8580, 2); // QR AA RD RA
        out.writeUInt16BE(1, 6);
        return [out];
      };
      const q = makeQuery("odd.example.test", "UNKNOWN_65280");
      const { bytes } = await ask(r, q);
      expect(Buffer.from(bytes.subarray(2)).equals(fake.lastSent("udp").subarray(2))).to.equal(true);
      expect(Array.from(bytes.subarray(bytes.length - 5))).to.deep.equal([1, 2, 3, 4, 5]);
    });

    it("passes NXDOMAIN from upstream through", async () => {
      const { r } = setup();
      const { msg } = await ask(r, makeQuery("missing.example.test", "A"));
      expect(msg.rcode).to.equal("NXDOMAIN");
    });

    it("retries over TCP when the UDP answer is truncated, and gives a TCP client the whole answer", async () => {
      const { r, up } = setup();
      const before = fake.received.length;
      const q = makeQuery("big.example.test", "TXT", { id: 99 });
      const { bytes, msg } = await ask(r, q, "tcp");
      const mine = fake.received.slice(before).map((e) => e.transport);
      expect(mine).to.deep.equal(["udp", "tcp"]);
      expect(msg.flag_tc).to.equal(false);
      expect((msg.answers![0] as { data: Buffer[] }).data.map((b) => b.toString())).to.deep.equal(BIG_TXT);
      expect(Buffer.from(bytes.subarray(2)).equals(fake.lastSent("tcp").subarray(2))).to.equal(true);
      expect(up.counters.tcpRetries).to.equal(1);
      expect(up.counters.tcpAnswers).to.equal(1);
    });

    it("gives a UDP client without EDNS header + question with TC for an answer over 512 bytes", async () => {
      const { r } = setup();
      const q = makeQuery("big.example.test", "TXT", { id: 5 });
      const { bytes, msg } = await ask(r, q);
      expect(bytes.length).to.equal(q.length);
      expect(msg.id).to.equal(5);
      expect(msg.flag_tc).to.equal(true);
      expect(msg.rcode).to.equal("NOERROR");
      expect(msg.answers).to.deep.equal([]);
      expect(Buffer.from(bytes.subarray(12)).equals(Buffer.from(q.subarray(12)))).to.equal(true);
    });

    it("honours the client's EDNS payload size (RFC 6891), capped at what the link carries", async () => {
      const { r } = setup({ maxUdpPayload: 1472 });
      const fits = await ask(r, makeQuery("big.example.test", "TXT", { udpSize: 1232 }));
      expect(fits.msg.flag_tc).to.equal(false);
      expect(fits.msg.answers!.length).to.equal(1);
      const small = await ask(r, makeQuery("big.example.test", "TXT", { udpSize: 700 }));
      expect(small.msg.flag_tc).to.equal(true);
      expect(small.bytes.length).to.be.at.most(700);
      const opt = small.msg.additionals!.find((a) => a.type === "OPT") as dnsPacket.OptAnswer;
      expect(opt.udpPayloadSize).to.equal(1472);
      const under = await ask(r, makeQuery("big.example.test", "TXT", { udpSize: 100 }));
      expect(under.msg.flag_tc, "sizes below 512 mean 512").to.equal(true);
    });

    it("keeps the truncated UDP answer when the TCP retry fails", async () => {
      const { r } = setup({ timeoutMs: 300 });
      let tcpTried = false;
      fake.raw = (query, transport) => {
        if (transport === "tcp") {
          tcpTried = true;
          return []; // never answers over TCP
        }
        const out = Buffer.from(query);
        out.writeUInt16BE(0x8380, 2); // QR TC RD RA
        return [out];
      };
      const { msg } = await ask(r, makeQuery("t.example.test", "A"));
      expect(tcpTried).to.equal(true);
      expect(msg.flag_tc).to.equal(true);
    });

    it("answers SERVFAIL when the upstream does not answer, within the timeout", async () => {
      const { r, up } = setup({ timeoutMs: 200 });
      fake.silent = true;
      const t0 = performance.now();
      const { msg } = await ask(r, makeQuery("a.example.test", "A", { id: 31 }));
      const took = performance.now() - t0;
      expect(msg.rcode).to.equal("SERVFAIL");
      expect(msg.id).to.equal(31);
      expect(msg.questions![0].name).to.equal("a.example.test");
      // Not before the 200 ms timeout; well before the 1,000 ms default (slack for a loaded machine's late timers).
      expect(took).to.be.within(180, 900);
      expect(up.counters.timeouts).to.equal(1);
      expect(r.counters.servfailTimeout).to.equal(1);
    });

    it("tries the next nameserver when one is silent or refuses", async () => {
      const deaf = createSocket("udp4");
      await new Promise<void>((res) => deaf.bind(0, "127.0.0.1", () => res()));
      const closed = createSocket("udp4");
      await new Promise<void>((res) => closed.bind(0, "127.0.0.1", () => res()));
      const closedPort = closed.address().port;
      await new Promise<void>((res) => closed.close(() => res()));
      try {
        const { r } = setup({ servers: [{ host: "127.0.0.1", port: closedPort }, { host: "127.0.0.1", port: deaf.address().port }, fake.server], timeoutMs: 1000 });
        const t0 = performance.now();
        const { msg } = await ask(r, makeQuery("a.example.test", "A"));
        expect(addrs(msg)).to.deep.equal(["203.0.113.1"]);
        // The refusing server is skipped at once; the silent one costs one timeout (two would be
        // 2 s; with 250 ms timeouts the bound could not tell one from two and keep any slack).
        expect(performance.now() - t0).to.be.within(980, 1900);
      } finally {
        deaf.close();
      }
    });

    it("tries the next nameserver when connecting to one fails (no route; found by the soak: it crashed skiff)", async () => {
      // connect() of a UDP socket to the broadcast address fails at once with EACCES (no
      // SO_BROADCAST), like ENETUNREACH on a host without a route: nothing is sent anywhere.
      const { r, up } = setup({ servers: [{ host: "255.255.255.255", port: 53 }, fake.server], timeoutMs: 2000 });
      const t0 = performance.now();
      const { msg } = await ask(r, makeQuery("a.example.test", "A"));
      expect(addrs(msg)).to.deep.equal(["203.0.113.1"]);
      expect(up.counters.sendErrors).to.equal(1);
      expect(performance.now() - t0, "the failed server costs no timeout").to.be.below(1500);
    });

    it("ignores stray replies (wrong ID or question) and takes the right one", async () => {
      const { r, up } = setup();
      fake.raw = (query) => {
        const good = Buffer.from(query);
        good.writeUInt16BE(0x8180, 2);
        const wrongId = Buffer.from(good);
        wrongId.writeUInt16BE((good.readUInt16BE(0) + 1) & 0xffff, 0);
        const wrongQ = Buffer.from(good);
        wrongQ[wrongQ.length - 3] ^= 0x01; // another type
        return [wrongId, wrongQ, good];
      };
      const { msg } = await ask(r, makeQuery("s.example.test", "A", { id: 3 }));
      expect(msg.id).to.equal(3);
      expect(msg.rcode).to.equal("NOERROR");
      expect(up.counters.strays).to.equal(2);
    });

    it("answers SERVFAIL with one log line when there are no nameservers", async () => {
      const warnings: unknown[] = [];
      const log = { warn: (...a: unknown[]) => warnings.push(a), debug: () => {}, error: () => {} } as never;
      const { r } = setup({ servers: [], log });
      for (let i = 0; i < 3; i++) {
        const { msg } = await ask(r, makeQuery("a.example.test", "A"));
        expect(msg.rcode).to.equal("SERVFAIL");
      }
      expect(warnings.length).to.equal(1);
      expect(JSON.stringify(warnings[0])).to.match(/no upstream nameservers/);
      expect(r.counters.servfailNoServers).to.equal(3);
    });

    it("answers SERVFAIL for forwarded names when built without an upstream", async () => {
      const records = new RecordStore(resolveConfig({}));
      const r = new DnsResolver({ records });
      expect((await ask(r, makeQuery("a.example.test", "A"))).msg.rcode).to.equal("SERVFAIL");
      expect((await ask(r, makeQuery("host.internal", "A"))).msg.rcode).to.equal("NOERROR");
    });

    it("bounds the queries in flight: beyond the bound a query is dropped (silence), counted", async () => {
      const { r, up } = setup({ maxInFlight: 2, timeoutMs: 300 });
      fake.silent = true;
      const p1 = r.resolve(makeQuery("a.example.test", "A", { id: 1 }));
      const p2 = r.resolve(makeQuery("a.example.test", "A", { id: 2 }));
      const p3 = await r.resolve(makeQuery("a.example.test", "A", { id: 3 }));
      expect(p3).to.equal(undefined);
      expect(up.counters.dropped).to.equal(1);
      expect(r.counters.dropped).to.equal(1);
      expect(up.pending).to.equal(2);
      for (const p of [await p1, await p2]) expect(decodeAnswer(p!).rcode).to.equal("SERVFAIL");
      expect(up.pending).to.equal(0);
    });
  });

  describe("malformed queries", () => {
    it("is silent for fewer than 12 bytes and for responses (QR set)", async () => {
      const { r } = setup();
      expect(await r.resolve(new Uint8Array(0))).to.equal(undefined);
      expect(await r.resolve(new Uint8Array(11))).to.equal(undefined);
      const resp = makeQuery("a.example.test", "A");
      resp[2] |= 0x80;
      expect(await r.resolve(resp)).to.equal(undefined);
      expect(r.counters.ignoredMalformed).to.equal(2);
      expect(r.counters.ignoredResponses).to.equal(1);
    });

    it("answers FORMERR (header only, ID kept) for zero or two questions and for undecodable bodies", async () => {
      const { r } = setup();
      const none = new Uint8Array(12);
      none[0] = 0xab;
      none[1] = 0xcd;
      const two = Buffer.from(
        dnsPacket.encode({ type: "query", id: 9, questions: [{ type: "A", name: "a.test" }, { type: "A", name: "b.test" }] }),
      );
      const cut = makeQuery("a.example.test", "A").subarray(0, 20);
      const pointer = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]);
      for (const q of [none, two, cut, pointer]) {
        const out = await r.resolve(q);
        expect(out).to.not.equal(undefined);
        const m = decodeAnswer(out!);
        expect(m.rcode).to.equal("FORMERR");
        expect(m.id).to.equal((q[0] << 8) | q[1]);
        expect(out!.length).to.equal(12);
      }
      expect(r.counters.formerr).to.equal(4);
    });

    it("answers NOTIMP for opcodes other than QUERY", async () => {
      const { r } = setup();
      const q = makeQuery("a.example.test", "A");
      q[2] = (q[2] & 0x87) | (4 << 3); // NOTIFY
      const m = decodeAnswer((await r.resolve(q))!);
      expect(m.rcode).to.equal("NOTIMP");
      expect((m as { opcode?: string }).opcode).to.equal("NOTIFY");
    });

    it("answers BADVERS (extended RCODE 16 in the OPT) for EDNS versions other than 0", async () => {
      const { r } = setup();
      const out = (await r.resolve(makeQuery("host.internal", "A", { udpSize: 1232, ednsVersion: 1 })))!;
      const m = decodeAnswer(out);
      const opt = m.additionals!.find((a) => a.type === "OPT") as dnsPacket.OptAnswer;
      expect(opt.extendedRcode).to.equal(1);
      expect(opt.ednsVersion).to.equal(0);
      expect(out[3] & 0x0f).to.equal(0);
      expect(m.answers).to.deep.equal([]);
    });

    it("answers FORMERR for two OPT records (RFC 6891 §6.1.1)", async () => {
      const { r } = setup();
      const b = dnsPacket.encode({
        type: "query",
        id: 1,
        questions: [{ type: "A", name: "host.internal" }],
        additionals: [
          { type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0 } as dnsPacket.OptAnswer,
          { type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0 } as dnsPacket.OptAnswer,
        ],
      });
      expect(decodeAnswer((await r.resolve(new Uint8Array(b)))!).rcode).to.equal("FORMERR");
    });

    it("never throws, and any answer is a response with the query's ID (property: random and damaged queries)", async () => {
      const { r } = setup({ servers: [], log: { warn: () => {}, error: () => {}, debug: () => {} } as never });
      const valid = [makeQuery("host.internal", "A", { udpSize: 1232 }), makeQuery("x.example.test", "TXT"), makeQuery("1.65.168.192.in-addr.arpa", "PTR")];
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 600 }),
            fc.tuple(fc.constantFrom(...valid), fc.integer({ min: 0, max: 0xffff_ffff })).map(([v, seed]) => damaged(v, seed)),
          ),
          async (q) => {
            const out = await r.resolve(q);
            if (out === undefined) return true;
            return out.length >= 12 && (out[2] & 0x80) !== 0 && out[0] === q[0] && out[1] === q[1];
          },
        ),
        { numRuns: 2000 },
      );
      expect(r.counters.internalErrors).to.equal(0);
    });
  });

  describe("parseQuery and replyMatches", () => {
    it("parses the question by hand (normalised name, end offset) and the OPT size", () => {
      const q = parseQuery(makeQuery("Host.Internal", "AAAA", { udpSize: 4096 }));
      if (isWireError(q)) throw new Error(q.reason);
      expect(q.name).to.equal("host.internal");
      expect(q.qtype).to.equal(28);
      expect(q.qclass).to.equal(1);
      expect(q.questionEnd).to.equal(12 + 15 + 4);
      expect(q.edns).to.deep.equal({ udpSize: 4096, version: 0 });
    });

    it("does not treat a label containing a dot as a dotted name", () => {
      const q = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 13, ..."host.internal".split("").map((c) => c.charCodeAt(0)), 0, 0, 1, 0, 1]);
      const p = parseQuery(q);
      if (isWireError(p)) throw new Error(p.reason);
      expect(p.name).to.equal(undefined);
    });

    it("matches replies by ID, QR, and the question (name case-insensitively, type exactly)", () => {
      const q = makeQuery("a.example.test", "A", { id: 77 });
      const end = q.length;
      const reply = Uint8Array.from(q);
      reply[2] |= 0x80;
      expect(replyMatches(reply, 77, q, end)).to.equal(true);
      expect(replyMatches(reply, 78, q, end)).to.equal(false);
      const upper = Uint8Array.from(reply);
      upper[13] = "A".charCodeAt(0);
      expect(replyMatches(upper, 77, q, end)).to.equal(true);
      const otherType = Uint8Array.from(reply);
      otherType[end - 3] = 28;
      expect(replyMatches(otherType, 77, q, end)).to.equal(false);
      expect(replyMatches(q, 77, q, end), "QR clear").to.equal(false);
      const noQ = new Uint8Array(12);
      noQ[0] = 0;
      noQ[1] = 77;
      noQ[2] = 0x80;
      expect(replyMatches(noQ, 77, q, end), "no question, NOERROR").to.equal(false);
      noQ[3] = DnsRcode.FormErr;
      expect(replyMatches(noQ, 77, q, end), "no question, FORMERR").to.equal(true);
    });
  });
});
