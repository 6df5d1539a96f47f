/**
 * The options of `createNetwork` (src/network/network.ts): their types, their defaults (the
 * `skiff` command's), and one check of all of them that runs before anything is opened. A bad
 * option throws one `NetworkOptionError` whose `option` names it ("subnet", "limits.udpFlows",
 * "staticLeases[1].mac"...).
 */

import type { Logger } from "pino";
import { pino } from "pino";
import { formatIpv4, parseIpv4Address, parseMac } from "../common/addr.js";
import type { ApiLimits } from "../forward/api.js";
import { parseCidr } from "../common/cidr.js";
import { resolveConfig, DEFAULT_SUBNET, type StackConfig } from "../stack/config.js";
import { formatIpv6, inPrefix64, parseIpv6Address } from "../stack/config6.js";
import type { ShareSpec } from "../share/registry.js";

export type { ApiLimits };

/**
 * The MTU range of the guest links. 576 is the least every IPv4 host must accept (RFC 791; RFC
 * 1122 §3.3.3). 65521 is the most a Linux TAP device takes (65535 minus the 14-byte Ethernet
 * header), the tightest of skiff's links; QEMU's stream and dgram netdevs and vmnet carry any
 * frame up to 64 KiB.
 */
export const MTU_MIN = 576;
export const MTU_MAX = 65521;
/** Default MTU of the guest links (as `skiff serve` and `skiff vpnkit`). */
export const DEFAULT_MTU = 1500;
/** Busy polling after traffic, µs: halves a TCP ping-pong's latency for a little CPU while traffic flows. */
export const DEFAULT_BUSY_POLL_US = 100;
/** Most µs of busy polling accepted. */
export const MAX_BUSY_POLL_US = 100_000;

/**
 * Totals and per-guest shares of the network's tables (a guest cannot fill a table the others
 * need). Defaults: 65 536 TCP flows, 1 024 half-open ones and 256 host dials in flight, 4 096
 * UDP and 1 024 ICMP flows, each guest a quarter of each, 4 DHCP client MACs per guest.
 */
export interface NetworkLimits {
  tcpFlows?: number;
  tcpFlowsPerGuest?: number;
  tcpHalfOpen?: number;
  tcpHalfOpenPerGuest?: number;
  tcpDials?: number;
  tcpDialsPerGuest?: number;
  udpFlows?: number;
  udpFlowsPerGuest?: number;
  icmpFlows?: number;
  icmpFlowsPerGuest?: number;
  leasesPerGuest?: number;
  /** Directories each share's host watcher watches for file events (default 65 536; src/share/host-watch.ts). */
  shareWatchDirs?: number;
}

/** A DHCP static lease: this MAC always gets this address. Numbers are uint48 / uint32. */
export interface StaticLeaseOption {
  /** "52:54:00:12:34:56" or a 48-bit number. */
  mac: string | number;
  /** "192.168.65.10" or a 32-bit number; inside `subnet`. */
  ip: string | number;
}

/** Options of `createNetwork`; every one is optional. */
export interface NetworkOptions {
  /** IP MTU of the guest links, 576..65521; default 1500. */
  mtu?: number;
  /** Guest network, a /8 to /30; default "192.168.65.0/24" (gateway .1, host alias .2, guests from .3). */
  subnet?: string;
  /**
   * Host alias: connections to this address go to the host's 127.0.0.1. Default: the subnet's
   * second address (192.168.65.2); "0.0.0.0" turns host loopback off (the address is then refused).
   */
  hostIp?: string;
  /** Gateway address (default: the subnet's first address, 192.168.65.1). */
  gatewayIp?: string;
  /** IPv6 on the guest link (router advertisements, NDP, DHCPv6, DNS, TCP/UDP to host sockets); default true. */
  ipv6?: boolean;
  /** Guest IPv6 prefix, a /64; default "fd73:6b69:6666::/64" (gateway ::1, host alias ::2 → the host's ::1). */
  subnet6?: string;
  /** Destination CIDRs guests may not reach (replaces the default deny list, 169.254.0.0/16). */
  deny?: string[];
  /** Extra names for skiff's DNS server, "NAME=IP" (`host.internal` and `gateway.internal` are built in). */
  dnsRecords?: string[];
  /** DHCP static leases known at start. */
  staticLeases?: StaticLeaseOption[];
  /**
   * Host directories served to guests over 9P2000.L on the gateway's TCP port 564 (more can be
   * added while running: `services.shares.registry`). A share that is not a directory is refused.
   */
  shares?: ShareSpec[];
  /**
   * Guests share one learning Ethernet switch and reach each other (default true). False
   * attaches each guest straight to the gateway: guests do not see each other, and a single
   * guest saves the switch's per-frame work (as `skiff run` does).
   */
  switch?: boolean;
  /** Busy-poll window after traffic, µs (0: off), 0..100000; default 100. */
  busyPollUs?: number;
  /**
   * A guest may send only from an address leased or statically assigned to its MAC (default
   * true). Turn it off for guests configured by hand without DHCP, or give them a static lease.
   */
  validateSources?: boolean;
  /** Bounds of the shared tables and each guest's share of them. */
  limits?: NetworkLimits;
  /**
   * Descriptors kept out of the host-socket budget for the API, DNS, forwards and new guests
   * (default 256). The soft open-file limit is raised to the hard one first.
   */
  fdReserve?: number;
  /**
   * Where `forward()` and the control API send a forward that names no guest; default the first
   * guest address (subnet + 3: the first DHCP lease). null: every forward must name its guest.
   */
  defaultGuest?: string | null;
  /**
   * The default guest's IPv6 address (in the guest prefix), when it is known (`skiff run` knows
   * its guest's): TCP forwards on an IPv6 host address that name no guest connect to it over
   * IPv6, falling back to `defaultGuest` when the guest refuses there (src/forward/spec.ts).
   * Default none: such forwards go to `defaultGuest` over IPv4.
   */
  defaultGuest6?: string;
  /** Bounds of the control API. */
  apiLimits?: ApiLimits;
  /** A pino logger; default silent (events carry everything that goes wrong). */
  log?: Logger;
}

/** A bad option: `option` names it; nothing was opened. */
export class NetworkOptionError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = "NetworkOptionError";
  }
}

/** Options after checking, with their defaults filled in. */
export interface ResolvedNetworkOptions {
  mtu: number;
  config: StackConfig;
  subnet: string;
  hostIp?: string;
  gatewayIp?: string;
  ipv6: boolean;
  subnet6?: string;
  deny?: string[];
  shares: ShareSpec[];
  dnsRecords: Array<{ name: string; ip: string; text: string }>;
  staticLeases: Array<{ mac: number; ip: number }>;
  switch: boolean;
  busyPollUs: number;
  validateSources: boolean;
  limits: NetworkLimits;
  fdReserve?: number;
  defaultGuest: string | undefined;
  defaultGuest6: string | undefined;
  apiLimits: ApiLimits;
  log: Logger;
}

const KNOWN = new Set([
  "mtu", "subnet", "hostIp", "gatewayIp", "ipv6", "subnet6", "deny", "shares", "dnsRecords", "staticLeases", "switch", "busyPollUs", "validateSources", "limits", "fdReserve", "defaultGuest", "defaultGuest6", "apiLimits", "log",
]);
const LIMIT_KEYS = new Set([
  "tcpFlows", "tcpFlowsPerGuest", "tcpHalfOpen", "tcpHalfOpenPerGuest", "tcpDials", "tcpDialsPerGuest", "udpFlows", "udpFlowsPerGuest", "icmpFlows", "icmpFlowsPerGuest", "leasesPerGuest", "shareWatchDirs",
]);
const API_LIMIT_KEYS = new Set(["maxConnections", "headersTimeoutMs", "idleTimeoutMs"]);

function int(option: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new NetworkOptionError(option, `expected an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function bool(option: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new NetworkOptionError(option, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function strings(option: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new NetworkOptionError(option, "expected an array of strings");
  return v as string[];
}

function positiveInts<T extends object>(option: string, v: unknown, keys: Set<string>): T {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new NetworkOptionError(option, "expected an object");
  for (const [k, x] of Object.entries(v)) {
    if (!keys.has(k)) throw new NetworkOptionError(`${option}.${k}`, `unknown option (known: ${[...keys].join(", ")})`);
    if (x !== undefined) int(`${option}.${k}`, x, 1, Number.MAX_SAFE_INTEGER);
  }
  return v as T;
}

/** Check every option and fill in the defaults; throws `NetworkOptionError` naming the first bad one. */
export function resolveNetworkOptions(opts: NetworkOptions = {}): ResolvedNetworkOptions {
  if (typeof opts !== "object" || opts === null) throw new NetworkOptionError("options", "expected an object");
  for (const k of Object.keys(opts)) {
    if (!KNOWN.has(k)) throw new NetworkOptionError(k, `unknown option (known: ${[...KNOWN].join(", ")})`);
  }
  const mtu = opts.mtu === undefined ? DEFAULT_MTU : int("mtu", opts.mtu, MTU_MIN, MTU_MAX);
  const subnet = opts.subnet ?? DEFAULT_SUBNET;
  if (typeof subnet !== "string") throw new NetworkOptionError("subnet", "expected a string A.B.C.D/N");
  if (opts.hostIp !== undefined && (typeof opts.hostIp !== "string" || parseIpv4Address(opts.hostIp) === undefined)) {
    throw new NetworkOptionError("hostIp", `expected an IPv4 address (or "0.0.0.0": off), got ${JSON.stringify(opts.hostIp)}`);
  }
  let config: StackConfig;
  try {
    if (opts.ipv6 !== undefined) bool("ipv6", opts.ipv6);
    if (opts.subnet6 !== undefined && typeof opts.subnet6 !== "string") throw new NetworkOptionError("subnet6", "expected a string such as fd73:6b69:6666::/64");
    config = resolveConfig({ subnet, mtu, hostAliasIp: opts.hostIp, gatewayIp: opts.gatewayIp, ipv6: opts.ipv6, subnet6: opts.subnet6 });
  } catch (e) {
    if (e instanceof NetworkOptionError) throw e;
    const msg = (e as Error).message;
    if (/subnet6/.test(msg)) throw new NetworkOptionError("subnet6", msg);
    const option = /host alias/.test(msg) || (opts.hostIp !== undefined && msg.includes(opts.hostIp)) ? "hostIp" : /gateway/.test(msg) ? "gatewayIp" : "subnet";
    throw new NetworkOptionError(option, msg);
  }
  if (opts.shares !== undefined && (!Array.isArray(opts.shares) || opts.shares.some((x) => typeof x?.name !== "string" || typeof x?.path !== "string"))) {
    throw new NetworkOptionError("shares", "expected an array of {name, path, readOnly?}");
  }
  const deny = opts.deny === undefined ? undefined : strings("deny", opts.deny);
  deny?.forEach((c, i) => {
    try {
      parseCidr(c);
    } catch (e) {
      throw new NetworkOptionError(`deny[${i}]`, (e as Error).message);
    }
  });
  const dnsRecords = strings("dnsRecords", opts.dnsRecords ?? []).map((text, i) => {
    const at = text.indexOf("=");
    if (at <= 0 || parseIpv4Address(text.slice(at + 1)) === undefined) throw new NetworkOptionError(`dnsRecords[${i}]`, `${JSON.stringify(text)}: expected NAME=IP`);
    return { name: text.slice(0, at), ip: text.slice(at + 1), text };
  });
  if (!Array.isArray(opts.staticLeases ?? [])) throw new NetworkOptionError("staticLeases", "expected an array of {mac, ip}");
  const staticLeases = (opts.staticLeases ?? []).map((l, i) => {
    const mac = typeof l?.mac === "number" ? l.mac : typeof l?.mac === "string" ? parseMac(l.mac) : undefined;
    if (mac === undefined || !Number.isInteger(mac) || mac < 0 || mac > 0xffff_ffff_ffff) throw new NetworkOptionError(`staticLeases[${i}].mac`, `expected a MAC address, got ${JSON.stringify(l?.mac)}`);
    const ip = typeof l.ip === "number" ? l.ip : typeof l.ip === "string" ? parseIpv4Address(l.ip) : undefined;
    if (ip === undefined || !Number.isInteger(ip) || ip < 0 || ip > 0xffff_ffff) throw new NetworkOptionError(`staticLeases[${i}].ip`, `expected an IPv4 address, got ${JSON.stringify(l.ip)}`);
    return { mac, ip };
  });
  const defaultGuest = opts.defaultGuest === null ? undefined : (opts.defaultGuest ?? formatIpv4(firstGuestAddress(config)));
  if (defaultGuest !== undefined && (typeof defaultGuest !== "string" || parseIpv4Address(defaultGuest) === undefined)) throw new NetworkOptionError("defaultGuest", `expected an IPv4 address, got ${JSON.stringify(opts.defaultGuest)}`);
  const g6 = opts.defaultGuest6;
  if (g6 !== undefined) {
    const a = typeof g6 === "string" ? parseIpv6Address(g6) : undefined;
    if (a === undefined) throw new NetworkOptionError("defaultGuest6", `expected an IPv6 address, got ${JSON.stringify(g6)}`);
    if (config.ipv6 === null) throw new NetworkOptionError("defaultGuest6", "IPv6 is off (ipv6: false)");
    if (!inPrefix64(config.ipv6, a)) throw new NetworkOptionError("defaultGuest6", `${g6} is not in the guest prefix ${formatIpv6(config.ipv6.prefix)}/64`);
  }
  const log = opts.log ?? pino({ level: "silent" });
  if (typeof log?.child !== "function" || typeof log.info !== "function") throw new NetworkOptionError("log", "expected a pino Logger");
  return {
    mtu,
    config,
    subnet,
    hostIp: opts.hostIp,
    gatewayIp: opts.gatewayIp,
    ipv6: config.ipv6 !== null,
    subnet6: opts.subnet6,
    deny,
    shares: opts.shares ?? [],
    dnsRecords,
    staticLeases,
    switch: opts.switch === undefined ? true : bool("switch", opts.switch),
    busyPollUs: opts.busyPollUs === undefined ? DEFAULT_BUSY_POLL_US : int("busyPollUs", opts.busyPollUs, 0, MAX_BUSY_POLL_US),
    validateSources: opts.validateSources === undefined ? true : bool("validateSources", opts.validateSources),
    limits: positiveInts<NetworkLimits>("limits", opts.limits ?? {}, LIMIT_KEYS),
    fdReserve: opts.fdReserve === undefined ? undefined : int("fdReserve", opts.fdReserve, 0, 1 << 20),
    defaultGuest,
    defaultGuest6: g6,
    apiLimits: positiveInts<ApiLimits>("apiLimits", opts.apiLimits ?? {}, API_LIMIT_KEYS),
    log,
  };
}

/** The first guest address of the network (subnet + 3: the first DHCP lease, `skiff run`'s guest). */
export function firstGuestAddress(config: StackConfig): number {
  return (config.network + 3) >>> 0;
}
