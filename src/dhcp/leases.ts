/**
 * The DHCP server's address pool and lease records (RFC 2131 §4.3.1 "choosing a network
 * address"), kept apart from the message handling in `./server.ts`: static leases, one record
 * per MAC and per address (offered, bound, released) bounded by `maxLeases`, declined
 * addresses held back, and how a new client's address is picked (see server.ts's file comment:
 * FNV-1a of the MAC modulo the pool, probing upwards, or the lowest free address).
 *
 * It also answers which address is bound to a MAC for source validation
 * (src/stack/guests.ts): `bindingOf` and a `generation` that changes with every binding.
 */

import { setMac } from "../common/bytes.js";
import { formatIpv4 } from "../common/addr.js";
import { broadcastAddress, inSubnet } from "../common/cidr.js";

/** What the pool takes from the server's configuration (see `DhcpServerConfig`). */
export interface PoolConfig {
  network: number;
  prefixLength: number;
  serverIp: number;
  reserved?: number[];
  poolFirst?: number;
  poolLast?: number;
  staticLeases?: StaticLease[];
  maxLeases?: number;
  allocation?: "hash" | "lowest";
}

export interface StaticLease {
  mac: number;
  ip: number;
}

/** One active binding, as listed for the control API. */
export interface DhcpLease {
  mac: number;
  ip: number;
  /** When the lease ends, on the clock passed to `handle` (ms); Infinity for an infinite lease. */
  expiresAt: number;
  static: boolean;
}

/** Where the pool counts its refusals (the server's counters). */
interface PoolDrops {
  drop(reason: "lease-table-full" | "pool-exhausted"): undefined;
}

export type RecordState = "offered" | "bound" | "released";

export interface LeaseRecord {
  mac: number;
  ip: number;
  state: RecordState;
  expiresAt: number;
  /** The guest (an opaque token of the service) whose port the binding was made through. */
  owner: object | undefined;
}

/** How an address stands for a given client. */
export const Avail = {
  /** The client's own (its record or its static lease). */
  Mine: 0,
  /** In the pool and never remembered for anyone. */
  Free: 1,
  /** Remembered for another client whose record has expired: usable as a last resort. */
  ExpiredOther: 2,
  /** Not usable: outside the pool, reserved, declined, another's static or live lease. */
  Taken: 3,
} as const;
export type Avail = (typeof Avail)[keyof typeof Avail];

/** FNV-1a, 32-bit, over the 6 bytes of a MAC (the hash of the file comment). */
export function macHash(mac: number): number {
  const b = MAC_BYTES;
  setMac(b, 0, mac);
  let h = 0x811c9dc5;
  for (let i = 0; i < 6; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h;
}
const MAC_BYTES = new Uint8Array(6);


export class LeasePool {
  readonly poolFirst: number;
  readonly poolLast: number;
  readonly maxLeases: number;
  private readonly poolSize: number;
  private readonly network: number;
  private readonly broadcast: number;
  private readonly subnet: { network: number; prefixLength: number };
  private readonly reserved: Set<number>;
  private readonly hashAllocation: boolean;
  readonly staticByMac = new Map<number, number>();
  readonly staticByIp = new Map<number, number>();
  readonly byMac = new Map<number, LeaseRecord>();
  readonly byIp = new Map<number, LeaseRecord>();
  /** Declined address → until when it is held back; insertion order is age. */
  readonly declined = new Map<number, number>();
  /** Changes whenever a binding (record or static lease) changes: source validation's cache key. */
  generation = 0;

  constructor(
    config: PoolConfig,
    private readonly counters: PoolDrops,
  ) {
    this.network = config.network;
    this.subnet = { network: config.network, prefixLength: config.prefixLength };
    this.broadcast = broadcastAddress(config);
    if (!this.isHostAddress(config.serverIp)) throw new Error(`dhcp: server address ${formatIpv4(config.serverIp)} is not a host address of the subnet`);
    this.reserved = new Set([config.serverIp, ...(config.reserved ?? [])]);
    this.poolFirst = config.poolFirst ?? (config.network + 3) >>> 0;
    this.poolLast = config.poolLast ?? (this.broadcast - 1) >>> 0;
    for (const [what, v, given] of [["poolFirst", this.poolFirst, config.poolFirst], ["poolLast", this.poolLast, config.poolLast]] as const) {
      if (given !== undefined && !this.isHostAddress(v)) throw new Error(`dhcp: ${what} ${formatIpv4(v)} is not a host address of the subnet`);
    }
    if (config.poolFirst !== undefined && config.poolLast !== undefined && this.poolFirst > this.poolLast) {
      throw new Error(`dhcp: poolFirst ${formatIpv4(this.poolFirst)} is after poolLast ${formatIpv4(this.poolLast)}`);
    }
    this.poolSize = Math.max(0, this.poolLast - this.poolFirst + 1);
    this.maxLeases = config.maxLeases ?? 4096;
    if (!Number.isInteger(this.maxLeases) || this.maxLeases < 1) throw new Error(`dhcp: invalid maxLeases ${this.maxLeases}`);
    this.hashAllocation = (config.allocation ?? "hash") === "hash";
    for (const { mac, ip } of config.staticLeases ?? []) this.addStaticLease(mac, ip);
  }

  /**
   * Add a static lease while running (a new vmnet VIF, say). Adding the same pair again is a
   * no-op; an address or MAC already bound to something else is an Error naming it.
   */
  addStaticLease(mac: number, ip: number): void {
    if (this.staticByMac.get(mac) === ip) return;
    if (!this.isHostAddress(ip) || this.reserved.has(ip)) throw new Error(`dhcp: static lease address ${formatIpv4(ip)} is not usable`);
    if (this.staticByMac.has(mac) || this.staticByIp.has(ip)) throw new Error(`dhcp: duplicate static lease for ${formatIpv4(ip)}`);
    this.staticByMac.set(mac, ip);
    this.staticByIp.set(ip, mac);
    this.generation++;
  }

  /** Active bindings (bound and not expired at `now`), in no particular order. */
  leases(now: number): DhcpLease[] {
    const out: DhcpLease[] = [];
    for (const r of this.byMac.values()) {
      if (r.state === "bound" && r.expiresAt > now) out.push(this.leaseOf(r));
    }
    return out;
  }

  /**
   * The address a MAC may use as a source (src/stack/guests.ts): its static lease, else its
   * bound record (expired or not, as long as the address was not given to someone else:
   * clients such as RootlessKit's never renew) with the guest it was bound through.
   */
  /** Make `owner` the guest of `mac`'s record (its previous guest went away). */
  adopt(mac: number, owner: object): void {
    const r = this.byMac.get(mac);
    if (r !== undefined) r.owner = owner;
  }

  bindingOf(mac: number): { ip: number; owner: object | undefined } | undefined {
    const fixed = this.staticByMac.get(mac);
    if (fixed !== undefined) return { ip: fixed, owner: undefined };
    const r = this.byMac.get(mac);
    if (r === undefined || r.state !== "bound" || this.byIp.get(r.ip) !== r) return undefined;
    return { ip: r.ip, owner: r.owner };
  }


  /** RFC 2131 §4.3.1 order: static, current or previous address, requested address, a new one. */
  chooseAddress(mac: number, requested: number | undefined, now: number): number | undefined {
    const fixed = this.staticByMac.get(mac);
    if (fixed !== undefined) return fixed;
    const r = this.byMac.get(mac);
    if (r !== undefined && this.avail(mac, r.ip, now) === Avail.Mine) return r.ip;
    if (r === undefined && !this.roomFor(now)) return this.counters.drop("lease-table-full");
    if (requested !== undefined && this.avail(mac, requested, now) === Avail.Free) return requested;
    const n = this.poolSize;
    const start = this.hashAllocation && n > 0 ? macHash(mac) % n : 0;
    let fallback: number | undefined;
    for (let i = 0; i < n; i++) {
      const ip = (this.poolFirst + ((start + i) % n)) >>> 0;
      const a = this.avail(mac, ip, now);
      if (a === Avail.Free || a === Avail.Mine) return ip;
      if (a === Avail.ExpiredOther && fallback === undefined) fallback = ip;
    }
    return fallback ?? this.counters.drop("pool-exhausted");
  }

  avail(mac: number, ip: number, now: number): Avail {
    const fixed = this.staticByIp.get(ip);
    if (fixed !== undefined) return fixed === mac ? Avail.Mine : Avail.Taken;
    if (this.staticByMac.has(mac)) return Avail.Taken; // a static client gets its static address only
    if (ip < this.poolFirst || ip > this.poolLast || this.reserved.has(ip) || !this.isHostAddress(ip)) return Avail.Taken;
    const until = this.declined.get(ip);
    if (until !== undefined) {
      if (until > now) return Avail.Taken;
      this.declined.delete(ip);
    }
    const r = this.byIp.get(ip);
    if (r === undefined) return Avail.Free;
    if (r.mac === mac) return Avail.Mine;
    return r.expiresAt > now ? Avail.Taken : Avail.ExpiredOther;
  }

  /** Whether `ip` may be given to `mac` now (its own, free, or another's expired address). */
  usable(mac: number, ip: number, now: number): boolean {
    return this.avail(mac, ip, now) !== Avail.Taken;
  }

  remember(mac: number, ip: number, state: RecordState, expiresAt: number, owner?: object): LeaseRecord {
    this.generation++;
    const mine = this.byMac.get(mac);
    if (mine !== undefined && mine.ip !== ip) this.forget(mine);
    const other = this.byIp.get(ip);
    if (other !== undefined && other.mac !== mac) this.forget(other);
    let r = this.byMac.get(mac);
    if (r === undefined) {
      r = { mac, ip, state, expiresAt, owner };
      this.byMac.set(mac, r);
      this.byIp.set(ip, r);
    } else {
      r.state = state;
      r.expiresAt = expiresAt;
      if (owner !== undefined) r.owner = owner;
    }
    return r;
  }

  forget(r: LeaseRecord): void {
    this.generation++;
    this.byMac.delete(r.mac);
    if (this.byIp.get(r.ip) === r) this.byIp.delete(r.ip);
  }

  /** Room for one more client's record: true if below the bound or after forgetting the record that expired first. */
  roomFor(now: number): boolean {
    if (this.byMac.size < this.maxLeases) return true;
    let oldest: LeaseRecord | undefined;
    for (const r of this.byMac.values()) {
      if (r.expiresAt <= now && (oldest === undefined || r.expiresAt < oldest.expiresAt)) oldest = r;
    }
    if (oldest === undefined) return false;
    this.forget(oldest);
    return true;
  }

  isHostAddress(ip: number): boolean {
    return inSubnet(this.subnet, ip) && ip !== this.network && ip !== this.broadcast;
  }

  leaseOf(r: LeaseRecord): DhcpLease {
    return { mac: r.mac, ip: r.ip, expiresAt: r.expiresAt, static: this.staticByMac.get(r.mac) === r.ip };
  }
}
