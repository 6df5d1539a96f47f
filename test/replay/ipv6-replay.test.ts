/**
 * pcap replay on IPv6: `fixtures/pcaps/ipv6/skiff-guest.pcap` was recorded with skiff's capture
 * (fixtures/pcaps/record-skiff6.ts) while a Linux kernel guest brought IPv6 up against skiff's
 * gateway: MLD reports and DAD probes (RFC 4862 §5.4; never answered), a router solicitation and
 * skiff's advertisement (RFC 4861 §6.2.6), SLAAC, neighbour solicitations of the gateway and the
 * host alias (§7.2.4), echo to three gateway addresses (RFC 4443 §4.2), DNS AAAA over UDP and
 * over TCP, stateless DHCPv6 (ISC dhclient's Information-request, RFC 8415 §18.2.6), a SYN to a
 * closed port (RST, RFC 9293 §3.10.7.1) and a datagram to a closed UDP port (port unreachable,
 * RFC 4443 §3.1).
 *
 * The guest's frames are fed to a fresh stack with the same services on the recorded clock; its
 * answers must be the recorded ones byte for byte, in the same groups and order. Two things
 * differ by design and are translated: the TCP initial sequence number (RFC 6528: secret and
 * time-based), so the guest's acknowledgements, SACK blocks and timestamp echoes are moved into
 * the replaying stack's number space and skiff's answers back into the recording's; and skiff's
 * TCP timestamp values (its clock), which are compared only after that translation as zero.
 *
 * `ndp-slaac.pcap` and `udp-tcp.pcap` were recorded against a Linux host with dnsmasq as the
 * gateway (prefix fd53:6b69:6666::/64, fixtures/pcaps/record.sh): replayed into skiff configured
 * with that prefix, skiff must answer the neighbour solicitations and echo requests as Linux did
 * (the same ICMPv6 bytes, addresses, hop limit and length; the flow label is Linux's own choice,
 * RFC 6437, and is not compared).
 */
import { expect } from "chai";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { loadSession, recordedAnswers, replayGuest, replayOnClock } from "../support/replay.js";
import { getU16, getU32, setU16, setU32 } from "../../src/common/bytes.js";
import { readIpv6Addr } from "../../src/ipv6/addr.js";
import { NextHeader, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { EtherType } from "../../src/ethernet/ethernet.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { createDnsServer } from "../../src/stack/dns-service.js";
import dnsPacket from "dns-packet";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures", "pcaps", "ipv6");
const GW_MAC = 0x02_50_00_00_00_01;
/** Ethernet + the fixed IPv6 header: where TCP starts (the fixture's TCP has no extension header). */
const L4 = 14 + 40;
const SYN = 0x02;
const ACK = 0x10;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const isTcp6 = (f: Uint8Array) => f.length >= L4 + 20 && getU16(f, 12) === EtherType.IPv6 && f[14 + 6] === NextHeader.TCP;
/** The guest's port and the gateway's: one key per flow, either direction. */
const flowKey = (f: Uint8Array, fromGateway: boolean) => (fromGateway ? `${getU16(f, L4 + 2)}-${getU16(f, L4)}` : `${getU16(f, L4)}-${getU16(f, L4 + 2)}`);

/** Offsets of the timestamps option's TSval (and TSecr at +4), and of each SACK block's edges. */
function tcpOptions(f: Uint8Array): { ts?: number; sack: number[] } {
  const end = L4 + (f[L4 + 12] >> 4) * 4;
  const out: { ts?: number; sack: number[] } = { sack: [] };
  for (let o = L4 + 20; o < end; ) {
    const kind = f[o];
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    const len = f[o + 1];
    if (len < 2) break;
    if (kind === 8 && len === 10) out.ts = o + 2;
    if (kind === 5) for (let b = o + 2; b + 8 <= o + len; b += 4) out.sack.push(b);
    o += len;
  }
  return out;
}

function fixChecksum(f: Uint8Array): void {
  const len = getU16(f, 14 + 4);
  setU16(f, L4 + 16, 0);
  setU16(f, L4 + 16, upperLayerChecksum6(f, L4, len, readIpv6Addr(f, 22), readIpv6Addr(f, 38), NextHeader.TCP));
}

const checksumOk = (f: Uint8Array) => upperLayerChecksum6(f, L4, getU16(f, 14 + 4), readIpv6Addr(f, 22), readIpv6Addr(f, 38), NextHeader.TCP) === 0;

/** Per flow: the replaying stack's ISN and timestamp clock minus the recording's. */
interface Shift {
  seq: number;
  ts: number;
}

/** A frame of ours as the recording would have it: sequence number shifted back; for both, TSval and checksum zeroed. */
function comparable(f: Uint8Array, shift: Shift | undefined): string {
  if (!isTcp6(f)) return hex(f);
  const c = Uint8Array.from(f);
  if (shift) setU32(c, L4 + 4, (getU32(c, L4 + 4) - shift.seq) >>> 0);
  const { ts } = tcpOptions(c);
  if (ts !== undefined) setU32(c, ts, 0);
  setU16(c, L4 + 16, 0);
  return hex(c);
}

describe("replay: ipv6/skiff-guest.pcap (a Linux guest bringing IPv6 up against skiff)", function () {
  this.timeout(20_000);

  it("answers every guest frame as recorded: RA, NA, echo, DNS over UDP and TCP, DHCPv6, RST, port unreachable", async () => {
    const session = loadSession(join(fixtures, "skiff-guest.pcap"), GW_MAC);
    const recorded = recordedAnswers(session);
    const shifts = new Map<string, Shift>();
    const { stack, answers } = await replayOnClock(
      session,
      { mtu: 1500 },
      (st) => {
        const tcp = new TcpLayer(st);
        const dns = createDnsServer(st, { hostsPath: null, servers: [], tcp });
        return () => {
          dns.close();
          tcp.close();
        };
      },
      {
        // Learn each flow's shift from our SYN-ACK and the recorded one, as soon as it is sent.
        seen(i, ours) {
          for (const f of ours) {
            if (!isTcp6(f) || (f[L4 + 13] & (SYN | ACK)) !== (SYN | ACK)) continue;
            const theirs = recorded[i].find((r) => isTcp6(r) && flowKey(r, true) === flowKey(f, true) && r[L4 + 13] & SYN);
            expect(theirs, `recorded SYN-ACK after guest frame ${i}`).to.not.equal(undefined);
            const a = tcpOptions(f).ts;
            const b = tcpOptions(theirs!).ts;
            shifts.set(flowKey(f, true), { seq: (getU32(f, L4 + 4) - getU32(theirs!, L4 + 4)) >>> 0, ts: a !== undefined && b !== undefined ? (getU32(f, a) - getU32(theirs!, b)) >>> 0 : 0 });
          }
        },
        // The guest acknowledged the recorded ISN: move its numbers to ours.
        rewrite(_i, frame) {
          if (!isTcp6(frame)) return frame;
          const shift = shifts.get(flowKey(frame, false));
          if (!shift) return frame;
          const f = Uint8Array.from(frame);
          if (f[L4 + 13] & ACK) setU32(f, L4 + 8, (getU32(f, L4 + 8) + shift.seq) >>> 0);
          const { ts, sack } = tcpOptions(f);
          for (const o of sack) setU32(f, o, (getU32(f, o) + shift.seq) >>> 0);
          if (ts !== undefined && getU32(f, ts + 4) !== 0) setU32(f, ts + 4, (getU32(f, ts + 4) + shift.ts) >>> 0);
          fixChecksum(f);
          return f;
        },
      },
    );
    expect(answers.length).to.equal(recorded.length);
    let compared = 0;
    answers.forEach((ours, i) => {
      for (const f of ours) if (isTcp6(f)) expect(checksumOk(f), `TCP checksum of our answer to guest frame ${i}`).to.equal(true);
      const mine = ours.map((f) => comparable(f, isTcp6(f) ? shifts.get(flowKey(f, true)) : undefined));
      expect(mine, `answers to guest frame ${i}`).to.deep.equal(recorded[i].map((f) => comparable(f, undefined)));
      compared += ours.length;
    });
    // RA, 2 NA, 4 echo replies, DNS over UDP, 4 TCP segments (SYN-ACK, the answer carrying the
    // ACK of the query, ACK of FIN, FIN), DHCPv6 Reply, RST, port unreachable.
    expect(compared).to.equal(15);
    expect(shifts.size).to.equal(1);
    expect(stack.counters.icmpv6EchoReplies).to.equal(4);
    expect(stack.counters.routerAdvertisements).to.equal(1);
    expect(stack.counters.dhcpv6Replies).to.equal(1);
  });
});

/** An echo reply or neighbour advertisement without what may differ between implementations (the flow label). */
function icmpv6Essence(f: Uint8Array): string | undefined {
  if (getU16(f, 12) !== EtherType.IPv6 || f[14 + 6] !== NextHeader.ICMPv6) return undefined;
  const type = f[L4];
  if (type !== 129 && type !== 136) return undefined;
  // Ethernet, version and traffic class's high nibble… : everything but the 20-bit flow label.
  const c = Uint8Array.from(f);
  c[15] &= 0xf0;
  c[16] = 0;
  c[17] = 0;
  return hex(c);
}

describe("replay: ipv6/ndp-slaac.pcap (recorded against a Linux gateway with dnsmasq)", () => {
  it("answers the neighbour solicitation and echo requests as the Linux gateway did", () => {
    const session = loadSession(join(fixtures, "ndp-slaac.pcap"), GW_MAC);
    const recorded = recordedAnswers(session);
    const { answers } = replayGuest(session, { subnet6: "fd53:6b69:6666::/64" });
    let compared = 0;
    answers.forEach((ours, i) => {
      const theirs = recorded[i].map(icmpv6Essence).filter((x) => x !== undefined);
      const mine = ours.map(icmpv6Essence).filter((x) => x !== undefined);
      expect(mine, `answers to guest frame ${i}`).to.deep.equal(theirs);
      compared += theirs.length;
    });
    // The NA for fd53:6b69:6666::1 and the echo replies from its ULA (2) and its link-local address.
    expect(compared).to.equal(4);
  });
});

describe("replay: ipv6/udp-tcp.pcap (recorded against a Linux gateway with dnsmasq)", () => {
  it("answers the guest's AAAA query for host.internal with the same record as dnsmasq", async () => {
    const session = loadSession(join(fixtures, "udp-tcp.pcap"), GW_MAC);
    const recorded = recordedAnswers(session);
    const { answers } = await replayOnClock(session, { subnet6: "fd53:6b69:6666::/64" }, (st) => {
      const dns = createDnsServer(st, { hostsPath: null, servers: [] });
      return () => dns.close();
    });
    const dnsAnswers = (frames: Uint8Array[]) =>
      frames
        .filter((f) => getU16(f, 12) === EtherType.IPv6 && f[14 + 6] === NextHeader.UDP && getU16(f, L4) === 53)
        .map((f) => {
          const m = dnsPacket.decode(Buffer.from(f.subarray(L4 + 8)));
          return { id: m.id, rcode: (m.flags ?? 0) & 0xf, questions: m.questions, answers: (m.answers ?? []).map((r) => ({ name: r.name, type: r.type, data: "data" in r ? r.data : undefined })) };
        });
    const theirs = dnsAnswers(recorded[0]);
    expect(theirs).to.have.length(1);
    expect(theirs[0].answers).to.deep.equal([{ name: "host.internal", type: "AAAA", data: "fd53:6b69:6666::2" }]);
    expect(dnsAnswers(answers[0])).to.deep.equal(theirs);
  });
});
