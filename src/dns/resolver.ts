/**
 * The DNS answering logic of the gateway: query bytes in, answer bytes out. It knows nothing of
 * the stack; `src/stack/dns-service.ts` carries the bytes over UDP and TCP.
 *
 * Read first: RFC 1035 §4.1 (message format), §4.2.1 (UDP, 512 bytes, TC), RFC 2181 §9 (TC),
 * RFC 6891 (EDNS: OPT record, payload size, BADVERS), RFC 2308 §2.2 (NODATA), RFC 4343 (case).
 *
 * Order of answers for one question (class IN or ANY):
 *  1. built-in names (`records.ts`) — reserved host names without an address answer NXDOMAIN;
 *  2. records added at run time;
 *  3. the hosts file;
 *  4. PTR for `*.in-addr.arpa` of those addresses; reverse names inside the guest network that
 *     skiff does not know answer NXDOMAIN (they are skiff's zone, RFC 6303 spirit);
 *  5. everything else — other names under `.internal` included (cloud providers' metadata
 *     names such as `metadata.google.internal` live there) — is forwarded (`upstream.ts`).
 * A name answered locally that has no record of the asked type (AAAA of `host.internal`, MX of
 * a hosts-file name) gets NOERROR with no answers ("NODATA", RFC 2308 §2.2), never NXDOMAIN.
 * Local answers are authoritative (AA), TTL `ttl` (default 0: run-time records and the hosts
 * file may change at any moment), with no SOA in negative answers (so they are not cached).
 *
 * Forwarded answers are passed through byte for byte (only the ID differs): every record
 * type, the upstream's OPT and DNSSEC records included.
 *
 * Size (RFC 1035 §4.2.1, RFC 6891 §6.2.5): a UDP client may receive 512 bytes, or its OPT's
 * payload size (at least 512), capped at `maxUdpPayload` (what fits the link). A larger answer
 * becomes header + question (+ OPT) with TC set, and the client retries over TCP.
 *
 * Errors: fewer than 12 bytes, or a message with QR set, get silence; opcode other than QUERY
 * gets NOTIMP; an undecodable message or not exactly one question gets FORMERR; EDNS version
 * other than 0 gets BADVERS (RFC 6891 §6.1.3); upstream timeout or no upstream servers get
 * SERVFAIL. `resolve` never throws or rejects.
 */

import { Buffer } from "node:buffer";
import dnsPacket from "dns-packet";
import type { Logger } from "pino";
import { getU16, setU16, setU32 } from "../common/bytes.js";
import { WireError, isWireError, type Parsed } from "../common/wire-error.js";
import { parseReverseName, parseReverseName6, type NameRecords, type RecordStore } from "./records.js";
import type { DnsUpstream } from "./upstream.js";
import { Counters } from "../common/counters.js";

export const DnsRcode = { NoError: 0, FormErr: 1, ServFail: 2, NxDomain: 3, NotImp: 4, Refused: 5 } as const;
/** RFC 6891 §9: extended RCODE 16, carried as 1 in the OPT's upper 8 bits. */
export const RCODE_BADVERS = 16;
export const DnsType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
const CLASS_IN = 1;
const CLASS_ANY = 255;

export const DNS_HEADER_LEN = 12;
/** RFC 1035 §4.2.1: the UDP payload a client without EDNS accepts. */
export const DNS_UDP_MIN = 512;
const OPT_LEN = 11;

// Header flag bits (RFC 1035 §4.1.1, RFC 2535 §6.1 for AD/CD).
const QR = 0x8000;
const OPCODE = 0x7800;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const CD = 0x0010;

export type DnsTransport = "udp" | "tcp";

/** One parsed query (its question's bytes are `query[12 .. questionEnd)`). */
export interface DnsQuery {
  id: number;
  flags: number;
  questionEnd: number;
  qtype: number;
  qclass: number;
  /** Normalised name (lower case, no trailing dot), or undefined when a label holds a dot or non-printable byte. */
  name: string | undefined;
  /** The client's OPT record (RFC 6891), if it sent one. */
  edns: { udpSize: number; version: number } | undefined;
}

/**
 * RFC 1035 §4.1.2: the question at offset 12 — uncompressed labels (nothing precedes it to
 * point at), 255 bytes at most, then type and class.
 */
export function parseQuestion(b: Uint8Array): Parsed<{ questionEnd: number; qtype: number; qclass: number; name: string | undefined }> {
  let o = DNS_HEADER_LEN;
  let name = "";
  let plain = true;
  for (;;) {
    if (o >= b.length) return new WireError("dns", "truncated question");
    const len = b[o];
    if (len === 0) {
      o++;
      break;
    }
    if (len > 63) return new WireError("dns", "bad label in question");
    if (o + 1 + len > b.length) return new WireError("dns", "truncated question");
    if (o + 1 + len - DNS_HEADER_LEN > 254) return new WireError("dns", "name too long");
    if (name.length > 0) name += ".";
    for (let i = o + 1; i <= o + len; i++) {
      let c = b[i];
      if (c <= 0x20 || c >= 0x7f || c === 0x2e) plain = false;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      name += String.fromCharCode(c);
    }
    o += 1 + len;
  }
  if (o + 4 > b.length) return new WireError("dns", "truncated question");
  return { questionEnd: o + 4, qtype: getU16(b, o), qclass: getU16(b, o + 2), name: plain ? name : undefined };
}

/** Parse a query whose header is readable: the question by hand, the rest (OPT) with dns-packet. */
export function parseQuery(b: Uint8Array): Parsed<DnsQuery> {
  if (b.length < DNS_HEADER_LEN) return new WireError("dns", "truncated header");
  if (getU16(b, 4) !== 1) return new WireError("dns", "not one question");
  const q = parseQuestion(b);
  if (isWireError(q)) return q;
  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(Buffer.from(b.buffer, b.byteOffset, b.length));
  } catch {
    return new WireError("dns", "undecodable");
  }
  let edns: DnsQuery["edns"];
  for (const rr of decoded.additionals ?? []) {
    if (rr.type !== "OPT") continue;
    // RFC 6891 §6.1.1: more than one OPT is a format error.
    if (edns !== undefined) return new WireError("dns", "two OPT records");
    edns = { udpSize: rr.udpPayloadSize, version: rr.ednsVersion };
  }
  return { id: getU16(b, 0), flags: getU16(b, 2), ...q, edns };
}

/** One answer record: the owner is always the question's name (pointer to offset 12). */
interface LocalRr {
  type: number;
  rdata: Uint8Array;
}

/** RFC 1035 §3.1: a dotted name as labels. */
export function encodeName(name: string): Uint8Array {
  const labels = name.split(".").filter((l) => l.length > 0);
  const out = new Uint8Array(labels.reduce((n, l) => n + 1 + l.length, 1));
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) out[o++] = l.charCodeAt(i);
  }
  out[o] = 0;
  return out;
}

/** RFC 6891 §6.1.2–6.1.3: an OPT record (root owner, no options) at `o`. */
function writeOpt(out: Uint8Array, o: number, udpSize: number, rcode: number): number {
  out[o] = 0;
  setU16(out, o + 1, DnsType.OPT);
  setU16(out, o + 3, udpSize);
  setU32(out, o + 5, ((rcode >>> 4) & 0xff) << 24); // extended RCODE, version 0, DO clear
  setU16(out, o + 9, 0);
  return o + OPT_LEN;
}

export class ResolverCounters extends Counters {
  queries = 0;
  /** Answered from built-ins, run-time records or the hosts file (any rcode). */
  local = 0;
  localNxdomain = 0;
  localNodata = 0;
  forwarded = 0;
  forwardedAnswers = 0;
  servfailTimeout = 0;
  servfailNoServers = 0;
  formerr = 0;
  notimp = 0;
  badvers = 0;
  /** UDP answers cut to header + question with TC. */
  truncated = 0;
  /** Silence: fewer than 12 bytes. */
  ignoredMalformed = 0;
  /** Silence: QR set (a response, not a query). */
  ignoredResponses = 0;
  /** Silence: the forwarder was full. */
  dropped = 0;
  internalErrors = 0;
}

/** Where local names come from besides the record store (the hosts file). */
export interface LocalNames {
  lookup(name: string): NameRecords | undefined;
  reverse(ip: number): string | undefined;
}

export interface ResolverOptions {
  records: RecordStore;
  hosts?: LocalNames;
  /** Forwarding; without it, names skiff does not own get SERVFAIL. */
  upstream?: DnsUpstream;
  /** TTL of local answers (s). */
  ttl?: number;
  /** Largest UDP answer sent, and the payload size skiff's OPT advertises (RFC 6891 §6.2.3). */
  maxUdpPayload?: number;
  log?: Logger;
}

export class DnsResolver {
  readonly counters = new ResolverCounters();
  readonly records: RecordStore;
  private readonly hosts: LocalNames | undefined;
  private readonly upstream: DnsUpstream | undefined;
  private readonly ttl: number;
  readonly maxUdpPayload: number;
  private readonly log: Logger | undefined;

  constructor(opts: ResolverOptions) {
    this.records = opts.records;
    this.hosts = opts.hosts;
    this.upstream = opts.upstream;
    this.ttl = opts.ttl ?? 0;
    this.maxUdpPayload = Math.max(DNS_UDP_MIN, Math.min(opts.maxUdpPayload ?? 1232, 65535));
    this.log = opts.log;
  }

  /**
   * Answer one DNS message received over `transport`. Resolves to the answer, or undefined
   * when the message gets no answer at all.
   */
  async resolve(query: Uint8Array, transport: DnsTransport = "udp"): Promise<Uint8Array | undefined> {
    const c = this.counters;
    c.queries++;
    try {
      if (query.length < DNS_HEADER_LEN) {
        c.ignoredMalformed++;
        return undefined;
      }
      const flags = getU16(query, 2);
      if (flags & QR) {
        c.ignoredResponses++;
        return undefined;
      }
      if (flags & OPCODE) {
        c.notimp++;
        return headerOnly(query, DnsRcode.NotImp);
      }
      const q = parseQuery(query);
      if (isWireError(q)) {
        c.formerr++;
        return headerOnly(query, DnsRcode.FormErr);
      }
      if (q.edns !== undefined && q.edns.version !== 0) {
        c.badvers++;
        return this.reply(q, query, RCODE_BADVERS, [], false);
      }
      const limit = transport === "tcp" ? 65535 : udpLimit(q, this.maxUdpPayload);
      const local = this.answerLocally(q, query);
      if (local !== undefined) {
        c.local++;
        return this.fit(local, q, query, limit);
      }
      if (this.upstream === undefined) {
        c.servfailNoServers++;
        return this.reply(q, query, DnsRcode.ServFail, [], false);
      }
      c.forwarded++;
      const r = await this.upstream.forward(query, q.questionEnd);
      switch (r.kind) {
        case "answer":
          c.forwardedAnswers++;
          return this.fit(r.bytes, q, query, limit);
        case "timeout":
          c.servfailTimeout++;
          return this.reply(q, query, DnsRcode.ServFail, [], false);
        case "no-servers":
          c.servfailNoServers++;
          return this.reply(q, query, DnsRcode.ServFail, [], false);
        case "dropped":
          c.dropped++;
          return undefined;
      }
    } catch (e) {
      c.internalErrors++;
      this.log?.error({ err: (e as Error).message }, "dns: internal error answering a query");
      return query.length >= DNS_HEADER_LEN ? headerOnly(query, DnsRcode.ServFail) : undefined;
    }
  }

  /** The answer from skiff's own names, or undefined to forward. */
  private answerLocally(q: DnsQuery, query: Uint8Array): Uint8Array | undefined {
    const name = q.name;
    if (name === undefined || (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY)) return undefined;
    const c = this.counters;
    if (this.records.isReserved(name)) {
      c.localNxdomain++;
      return this.reply(q, query, DnsRcode.NxDomain, [], true);
    }
    const recs = this.records.lookup(name) ?? this.hosts?.lookup(name);
    if (recs !== undefined) {
      const rrs: LocalRr[] = [];
      if (q.qtype === DnsType.A || q.qtype === DnsType.ANY) for (const a of recs.a) rrs.push({ type: DnsType.A, rdata: ipv4Bytes(a) });
      if (q.qtype === DnsType.AAAA || q.qtype === DnsType.ANY) for (const a of recs.aaaa) rrs.push({ type: DnsType.AAAA, rdata: a });
      if (rrs.length === 0) c.localNodata++;
      return this.reply(q, query, DnsRcode.NoError, rrs, true);
    }
    const ip = parseReverseName(name);
    if (ip !== undefined) return this.answerReverse(q, query, this.records.reverse(ip) ?? this.hosts?.reverse(ip), this.records.inGuestNetwork(ip));
    // PTR in ip6.arpa (RFC 3596 §2.5) for skiff's own IPv6 names; NXDOMAIN inside the guest prefix.
    const ip6 = parseReverseName6(name);
    if (ip6 !== undefined) return this.answerReverse(q, query, this.records.reverse6(ip6), this.records.inGuestPrefix6(ip6));
    return undefined;
  }

  /** A reverse name: PTR to `target` when skiff owns it, NXDOMAIN in the guests' own range, else forwarded. */
  private answerReverse(q: DnsQuery, query: Uint8Array, target: string | undefined, ours: boolean): Uint8Array | undefined {
    const c = this.counters;
    if (target !== undefined) {
      const rrs: LocalRr[] = q.qtype === DnsType.PTR || q.qtype === DnsType.ANY ? [{ type: DnsType.PTR, rdata: encodeName(target) }] : [];
      if (rrs.length === 0) c.localNodata++;
      return this.reply(q, query, DnsRcode.NoError, rrs, true);
    }
    if (ours) {
      c.localNxdomain++;
      return this.reply(q, query, DnsRcode.NxDomain, [], true);
    }
    return undefined;
  }

  /** A reply to `q`: header, the client's question as sent, `rrs`, and an OPT if the query had one. */
  private reply(q: DnsQuery, query: Uint8Array, rcode: number, rrs: LocalRr[], authoritative: boolean): Uint8Array {
    let len = q.questionEnd;
    for (const rr of rrs) len += 12 + rr.rdata.length;
    if (q.edns !== undefined) len += OPT_LEN;
    const out = new Uint8Array(len);
    setU16(out, 0, q.id);
    setU16(out, 2, QR | (q.flags & (OPCODE | RD | CD)) | RA | (authoritative ? AA : 0) | (rcode & 0x0f));
    setU16(out, 4, 1);
    setU16(out, 6, rrs.length);
    setU16(out, 10, q.edns !== undefined ? 1 : 0);
    out.set(query.subarray(DNS_HEADER_LEN, q.questionEnd), DNS_HEADER_LEN);
    let o = q.questionEnd;
    for (const rr of rrs) {
      setU16(out, o, 0xc000 | DNS_HEADER_LEN); // RFC 1035 §4.1.4: pointer to the question's name
      setU16(out, o + 2, rr.type);
      setU16(out, o + 4, CLASS_IN);
      setU32(out, o + 6, this.ttl);
      setU16(out, o + 10, rr.rdata.length);
      out.set(rr.rdata, o + 12);
      o += 12 + rr.rdata.length;
    }
    if (q.edns !== undefined) writeOpt(out, o, this.maxUdpPayload, rcode);
    return out;
  }

  /**
   * RFC 2181 §9 / RFC 1035 §4.2.1: an answer over `limit` becomes header (rcode kept, TC set) +
   * the client's question (+ skiff's OPT when the client sent one), so the client asks over TCP.
   */
  private fit(answer: Uint8Array, q: DnsQuery, query: Uint8Array, limit: number): Uint8Array {
    if (answer.length <= limit) return answer;
    this.counters.truncated++;
    const out = new Uint8Array(q.questionEnd + (q.edns !== undefined ? OPT_LEN : 0));
    out.set(answer.subarray(0, 4));
    out[2] |= TC >>> 8;
    setU16(out, 4, 1);
    setU16(out, 10, q.edns !== undefined ? 1 : 0);
    out.set(query.subarray(DNS_HEADER_LEN, q.questionEnd), DNS_HEADER_LEN);
    if (q.edns !== undefined) writeOpt(out, q.questionEnd, this.maxUdpPayload, 0);
    return out;
  }
}

/** RFC 6891 §6.2.5: the client's payload size (below 512 means 512), capped at what skiff sends. */
function udpLimit(q: DnsQuery, cap: number): number {
  const want = q.edns === undefined ? DNS_UDP_MIN : Math.max(DNS_UDP_MIN, q.edns.udpSize);
  return Math.max(DNS_UDP_MIN, Math.min(want, cap));
}

/** A header-only reply (no question): ID, opcode and RD copied, QR set, `rcode`. */
function headerOnly(query: Uint8Array, rcode: number): Uint8Array {
  const out = new Uint8Array(DNS_HEADER_LEN);
  setU16(out, 0, getU16(query, 0));
  setU16(out, 2, QR | (getU16(query, 2) & (OPCODE | RD | CD)) | RA | (rcode & 0x0f));
  return out;
}

function ipv4Bytes(ip: number): Uint8Array {
  const b = new Uint8Array(4);
  setU32(b, 0, ip);
  return b;
}
