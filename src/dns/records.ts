/**
 * The names skiff answers itself: the built-in names of the gateway and the host alias, and
 * records added at run time (the control API's `add`/`remove`/`list`). The hosts file is in
 * `hosts.ts`; the resolver consults built-ins, then run-time records, then the hosts file,
 * and forwards everything else.
 *
 * Built-in names (ARCHITECTURE.md "Addressing plan"):
 *   host.internal, host.docker.internal, host.containers.internal → the host alias (.2)
 *   gateway.internal, gateway.docker.internal                     → the gateway (.1)
 * with their IPv6 addresses (AAAA) when the stack has IPv6 (`ipv6`: the gateway's ULA and the
 * alias's, src/stack/config6.ts), and the PTR names of those addresses (in-addr.arpa and
 * ip6.arpa, RFC 3596 §2.5). When host loopback is disabled (no host alias),
 * the host names stay *reserved*: they answer NXDOMAIN and are never forwarded, so a guest
 * cannot pick up some other network's `host.docker.internal`.
 *
 * Names are compared case-insensitively (RFC 4343) with the trailing dot ignored.
 * IPv4 addresses are uint32 numbers, IPv6 addresses 16-byte arrays.
 */

import { Address6 } from "ip-address";
import { formatIpv4, parseIpv4Address } from "../common/addr.js";
import { bytesEqual } from "../common/bytes.js";

/** The addresses of one name. */
export interface NameRecords {
  a: number[];
  aaaa: Uint8Array[];
}

/** One record as the control API lists it. */
export interface RecordEntry {
  name: string;
  ip: string;
  builtin: boolean;
}

/** An IPv6 address as four big-endian 32-bit words (the stack's `Ipv6Addr` fits). */
export interface Words128 {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
}

/** The part of the stack configuration the built-in names need. */
export interface RecordsConfig {
  network: number;
  prefixLength: number;
  gatewayIp: number;
  hostAliasIp: number | null;
  /** IPv6 addresses of the built-in names (a /64 prefix), or null/absent without IPv6. */
  ipv6?: { prefix: Words128; gateway: Words128; hostAlias: Words128 | null } | null;
}

function wordsBytes(a: Words128): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, a.w0);
  v.setUint32(4, a.w1);
  v.setUint32(8, a.w2);
  v.setUint32(12, a.w3);
  return b;
}

export const HOST_NAMES: readonly string[] = ["host.internal", "host.docker.internal", "host.containers.internal"];
export const GATEWAY_NAMES: readonly string[] = ["gateway.internal", "gateway.docker.internal"];

/** Lower-case (ASCII only, RFC 4343) and drop one trailing dot. */
export function normalizeName(name: string): string {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

/** RFC 1035 §2.3.4 sizes, RFC 952/1123 characters (plus `_` for service names). */
export function isValidName(name: string): boolean {
  const n = normalizeName(name);
  if (n.length === 0 || n.length > 253) return false;
  for (const label of n.split(".")) {
    if (label.length === 0 || label.length > 63 || !/^[a-z0-9_-]+$/.test(label)) return false;
  }
  return true;
}

/** An IPv6 address (an optional `%zone` is ignored) as 16 bytes, or undefined. */
export function parseIpv6(s: string): Uint8Array | undefined {
  if (!s.includes(":") || !Address6.isValid(s)) return undefined;
  const bytes = new Address6(s).toUnsignedByteArray();
  const out = new Uint8Array(16);
  out.set(bytes.slice(-16), 16 - Math.min(16, bytes.length));
  return out;
}

export function formatIpv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return new Address6(groups.join(":")).correctForm();
}

/** `d.c.b.a.in-addr.arpa` (RFC 1035 §3.5), normalised, → a.b.c.d as uint32, or undefined. */
export function parseReverseName(name: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (!m) return undefined;
  return parseIpv4Address(`${m[4]}.${m[3]}.${m[2]}.${m[1]}`);
}

/** The 32-nibble `….ip6.arpa` name (RFC 3596 §2.5), normalised, → 16 bytes, or undefined. */
export function parseReverseName6(name: string): Uint8Array | undefined {
  if (!name.endsWith(".ip6.arpa") || name.length !== 64 + 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 32; i++) {
    if (name[2 * i + 1] !== ".") return undefined;
    const v = parseInt(name[2 * i], 16);
    if (Number.isNaN(v)) return undefined;
    const k = 31 - i; // nibble index from the most significant
    out[k >> 1] |= k & 1 ? v : v << 4;
  }
  return out;
}

export function reverseName(ip: number): string {
  return `${ip & 0xff}.${(ip >>> 8) & 0xff}.${(ip >>> 16) & 0xff}.${ip >>> 24}.in-addr.arpa`;
}

export function emptyRecords(): NameRecords {
  return { a: [], aaaa: [] };
}

/** Add an address to a record set, ignoring duplicates. Returns false for an unparseable address. */
export function addAddress(r: NameRecords, ip: string): boolean {
  const v4 = parseIpv4Address(ip);
  if (v4 !== undefined) {
    if (!r.a.includes(v4)) r.a.push(v4);
    return true;
  }
  const v6 = parseIpv6(ip);
  if (v6 === undefined) return false;
  if (!r.aaaa.some((x) => bytesEqual(x, v6))) r.aaaa.push(v6);
  return true;
}

export interface RecordStoreOptions {
  /** Bound on run-time addresses (all names together); `add` throws beyond it. */
  maxRecords?: number;
}

export class RecordStore {
  private readonly builtins = new Map<string, NameRecords>();
  /** Built-in names with no address (the host names when the host alias is disabled). */
  private readonly reserved = new Set<string>();
  private readonly runtime = new Map<string, NameRecords>();
  private runtimeCount = 0;
  private readonly maxRecords: number;
  private readonly network: number;
  private readonly mask: number;
  /** First 8 bytes of the guest IPv6 prefix (a /64), or undefined without IPv6. */
  private readonly prefix6: Uint8Array | undefined;

  constructor(cfg: RecordsConfig, opts: RecordStoreOptions = {}) {
    this.maxRecords = opts.maxRecords ?? 4096;
    this.network = cfg.network;
    this.mask = cfg.prefixLength === 0 ? 0 : (0xffff_ffff << (32 - cfg.prefixLength)) >>> 0;
    const v6 = cfg.ipv6 ?? undefined;
    this.prefix6 = v6 === undefined ? undefined : wordsBytes(v6.prefix).subarray(0, 8);
    for (const n of GATEWAY_NAMES) this.builtins.set(n, { a: [cfg.gatewayIp], aaaa: v6 === undefined ? [] : [wordsBytes(v6.gateway)] });
    for (const n of HOST_NAMES) {
      if (cfg.hostAliasIp === null) this.reserved.add(n);
      else this.builtins.set(n, { a: [cfg.hostAliasIp], aaaa: v6?.hostAlias ? [wordsBytes(v6.hostAlias)] : [] });
    }
  }

  /** Records of a normalised name: built-ins first, then run-time records. */
  lookup(name: string): NameRecords | undefined {
    return this.builtins.get(name) ?? this.runtime.get(name);
  }

  /** True for a built-in name that has no address now (answered NXDOMAIN, never forwarded). */
  isReserved(name: string): boolean {
    return this.reserved.has(name);
  }

  /** The name for a PTR query of `ip` (built-ins first, then run-time records). */
  reverse(ip: number): string | undefined {
    for (const map of [this.builtins, this.runtime]) {
      for (const [name, r] of map) if (r.a.includes(ip)) return name;
    }
    return undefined;
  }

  /** The name for a PTR query of the IPv6 address `ip` (16 bytes). */
  reverse6(ip: Uint8Array): string | undefined {
    for (const map of [this.builtins, this.runtime]) {
      for (const [name, r] of map) if (r.aaaa.some((x) => bytesEqual(x, ip))) return name;
    }
    return undefined;
  }

  /** True for an address of the guest IPv6 prefix (its reverse zone is skiff's too). */
  inGuestPrefix6(ip: Uint8Array): boolean {
    return this.prefix6 !== undefined && bytesEqual(ip.subarray(0, 8), this.prefix6);
  }

  /** True for an address of the guest network (its reverse zone is skiff's: RFC 6303 spirit). */
  inGuestNetwork(ip: number): boolean {
    return ((ip & this.mask) >>> 0) === this.network;
  }

  /**
   * Add an A (IPv4) or AAAA (IPv6) record at run time; a name may have several. Throws an
   * Error naming the problem for a bad name or address, a built-in name, or a full store.
   */
  add(name: string, ip: string): void {
    if (!isValidName(name)) throw new Error(`invalid DNS name: ${JSON.stringify(name)}`);
    const n = normalizeName(name);
    if (this.builtins.has(n) || this.reserved.has(n)) throw new Error(`${n} is a built-in name`);
    const r = this.runtime.get(n) ?? emptyRecords();
    const probe: NameRecords = { a: [...r.a], aaaa: [...r.aaaa] };
    if (!addAddress(probe, ip)) throw new Error(`invalid IP address: ${JSON.stringify(ip)}`);
    const added = probe.a.length + probe.aaaa.length - r.a.length - r.aaaa.length;
    if (added === 0) return;
    if (this.runtimeCount + added > this.maxRecords) throw new Error(`too many DNS records (limit ${this.maxRecords})`);
    this.runtime.set(n, probe);
    this.runtimeCount += added;
  }

  /** Remove a run-time name (every address, or only `ip`). Returns how many records went. */
  remove(name: string, ip?: string): number {
    const n = normalizeName(name);
    const r = this.runtime.get(n);
    if (r === undefined) return 0;
    const before = r.a.length + r.aaaa.length;
    if (ip === undefined) {
      r.a = [];
      r.aaaa = [];
    } else {
      const v4 = parseIpv4Address(ip);
      const v6 = v4 === undefined ? parseIpv6(ip) : undefined;
      r.a = r.a.filter((x) => x !== v4);
      r.aaaa = r.aaaa.filter((x) => v6 === undefined || !bytesEqual(x, v6));
    }
    const removed = before - r.a.length - r.aaaa.length;
    this.runtimeCount -= removed;
    if (r.a.length + r.aaaa.length === 0) this.runtime.delete(n);
    return removed;
  }

  /** Every record: built-ins (marked) then run-time records in insertion order. */
  list(): RecordEntry[] {
    const out: RecordEntry[] = [];
    const push = (map: Map<string, NameRecords>, builtin: boolean) => {
      for (const [name, r] of map) {
        for (const a of r.a) out.push({ name, ip: formatIpv4(a), builtin });
        for (const a of r.aaaa) out.push({ name, ip: formatIpv6(a), builtin });
      }
    };
    push(this.builtins, true);
    push(this.runtime, false);
    return out;
  }
}
