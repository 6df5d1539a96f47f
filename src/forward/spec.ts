/**
 * Port forward specifications: what a forward is, docker's `-p [hostAddr:]hostPort:guestPort[/udp]`
 * syntax (with port ranges, `8000-8009:80-89`; an IPv6 host address in brackets, `[::1]:8080:80`)
 * extended with an optional guest address before the guest port (`8080:192.168.65.4:80`,
 * `[::1]:8080:[fd73:6b69:6666::100]:80`), and validation of the control API's JSON body. The
 * host side may listen on IPv4 or IPv6 (`::1`, `::`); the guest side is a guest's IPv4 or IPv6
 * address.
 *
 * Which guest address a forward without one goes to: the default guest's IPv4 address, except a
 * TCP forward listening on an IPv6 host address when the network knows the guest's IPv6 address
 * (`defaultGuest6`, e.g. `skiff run`'s): it connects to the guest over IPv6 (the guest sees an
 * IPv6 peer, the host alias), and falls back to the IPv4 address (`guestAddrFallback`) when the
 * guest refuses over IPv6 (nothing listens on its IPv6 side) or does not answer neighbour
 * solicitation. UDP has no refusal to fall back on, so its default stays IPv4.
 * Every error message names the field or the text at fault; nothing here throws on bad input —
 * functions return a spec or a string saying what is wrong.
 */

import { isIPv6 } from "node:net";
import { parseIpv4Address } from "../common/addr.js";

export type ForwardProto = "tcp" | "udp";

/** One forward: the host listens on `hostAddr:hostPort` and connects to `guestAddr:guestPort`. */
export interface ForwardSpec {
  proto: ForwardProto;
  /** Address the host listens on: dotted IPv4 or IPv6 (`::1`, `::`); default 127.0.0.1. */
  hostAddr: string;
  /** 0 asks the host for any free port. */
  hostPort: number;
  /** The guest's IPv4 or IPv6 address (IPv6 without a zone). */
  guestAddr: string;
  guestPort: number;
  /** TCP with an IPv6 `guestAddr` only: the guest's IPv4 address, tried when it refuses over IPv6. */
  guestAddrFallback?: string;
}

export const DEFAULT_HOST_ADDR = "127.0.0.1";

const FIELDS = new Set(["proto", "hostAddr", "hostPort", "guestAddr", "guestPort", "guestAddrFallback"]);

function isPort(v: unknown, allowZero: boolean): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= (allowZero ? 0 : 1) && v <= 65535;
}

function isIpv4(v: unknown): v is string {
  return typeof v === "string" && parseIpv4Address(v) !== undefined;
}

function isIpv6NoZone(v: unknown): v is string {
  return typeof v === "string" && !v.includes("%") && isIPv6(v);
}

/** A host address to listen on, or a guest address: IPv4, or IPv6 without a zone. */
export function isHostAddr(v: unknown): v is string {
  return isIpv4(v) || isIpv6NoZone(v);
}

/**
 * The guest address of a forward given none (see the file comment): the default guest's IPv6
 * address for TCP on an IPv6 host address, with its IPv4 one as fallback; else the IPv4 one.
 */
export function defaultGuestFor(proto: ForwardProto, hostAddr: string, guest: string | undefined, guest6: string | undefined): { guestAddr?: string; guestAddrFallback?: string } {
  if (proto === "tcp" && guest6 !== undefined && isIpv6NoZone(hostAddr)) return guest === undefined ? { guestAddr: guest6 } : { guestAddr: guest6, guestAddrFallback: guest };
  return { guestAddr: guest };
}

/**
 * Validate the JSON body of `POST /forwards`: `{proto?, hostAddr?, hostPort, guestAddr?, guestPort,
 * guestAddrFallback?}`. A missing `guestAddr` is the default guest (`defaultGuestFor`). Returns
 * the spec or a message naming the problem.
 */
export function validateForward(body: unknown, defaultGuest?: string, defaultGuest6?: string): ForwardSpec | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "expected a JSON object";
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) return `unknown field ${JSON.stringify(k)}`;
  const proto = o.proto ?? "tcp";
  if (proto !== "tcp" && proto !== "udp") return `proto: expected "tcp" or "udp", got ${JSON.stringify(o.proto)}`;
  const hostAddr = o.hostAddr ?? DEFAULT_HOST_ADDR;
  if (!isHostAddr(hostAddr)) return `hostAddr: not an IPv4 or IPv6 address: ${JSON.stringify(o.hostAddr)}`;
  if (!isPort(o.hostPort, true)) return `hostPort: expected an integer in 0..65535, got ${JSON.stringify(o.hostPort)}`;
  const dflt: { guestAddr?: unknown; guestAddrFallback?: string } = o.guestAddr === undefined ? defaultGuestFor(proto, hostAddr, defaultGuest, defaultGuest6) : { guestAddr: o.guestAddr };
  const guestAddr = dflt.guestAddr;
  if (guestAddr === undefined) return "guestAddr: missing";
  if (!isHostAddr(guestAddr)) return `guestAddr: not an IPv4 or IPv6 address: ${JSON.stringify(o.guestAddr)}`;
  if (!isPort(o.guestPort, false)) return `guestPort: expected an integer in 1..65535, got ${JSON.stringify(o.guestPort)}`;
  const spec: ForwardSpec = { proto, hostAddr, hostPort: o.hostPort, guestAddr, guestPort: o.guestPort };
  const fallback = o.guestAddrFallback ?? dflt.guestAddrFallback;
  if (fallback !== undefined) {
    if (!isIpv4(fallback)) return `guestAddrFallback: not an IPv4 address: ${JSON.stringify(fallback)}`;
    if (proto !== "tcp" || isIpv4(guestAddr)) return "guestAddrFallback: only for a TCP forward to an IPv6 guestAddr";
    spec.guestAddrFallback = fallback;
  }
  return spec;
}

/** `N` or `N-M` → [first, last], or undefined. */
function parsePortRange(s: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (!isPort(a, false) || !isPort(b, false) || b < a) return undefined;
  return [a, b];
}

/** Split at colons outside brackets; a bracketed part keeps its brackets. Undefined when brackets do not pair. */
function splitColons(text: string): string[] | undefined {
  const parts: string[] = [];
  let cur = "";
  let inBracket = false;
  for (const ch of text) {
    if (ch === "[") {
      if (inBracket || cur !== "") return undefined;
      inBracket = true;
    } else if (ch === "]") {
      if (!inBracket) return undefined;
      inBracket = false;
    } else if (ch === ":" && !inBracket) {
      parts.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  if (inBracket) return undefined;
  parts.push(cur);
  return parts;
}

/** An address part of `-p`: IPv4 bare, IPv6 in brackets; returns the address, or undefined. */
function addrPart(p: string): string | undefined {
  if (p.startsWith("[") && p.endsWith("]")) {
    const a = p.slice(1, -1);
    return isIpv6NoZone(a) ? a : undefined;
  }
  return isIpv4(p) ? p : undefined;
}

/** Looks like an address (not a port or range): contains a bracket, a dot or a letter. */
function looksLikeAddr(p: string): boolean {
  return !/^[\d-]*$/.test(p);
}

/**
 * Docker's `-p` syntax, `[hostAddr:]hostPort[-hostEnd]:[guestAddr:]guestPort[-guestEnd][/tcp|/udp]`
 * (IPv6 addresses in brackets). A range on one side needs a range of the same length on the
 * other. Without a guest address, `defaultGuestFor(guestAddr, guestAddr6)` chooses it. Returns
 * one spec per port, or a message.
 */
export function parsePublish(text: string, guestAddr: string, guestAddr6?: string): ForwardSpec[] | string {
  const bad = (why: string) => `-p ${JSON.stringify(text)}: ${why}`;
  let rest = text;
  let proto: ForwardProto = "tcp";
  const slash = rest.lastIndexOf("/");
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== "tcp" && p !== "udp") return bad(`unknown protocol ${JSON.stringify(p)} (tcp or udp)`);
    proto = p;
    rest = rest.slice(0, slash);
  }
  const form = "expected [hostAddr:]hostPort:[guestAddr:]guestPort[/udp] (IPv6 addresses in brackets)";
  const parts = splitColons(rest);
  if (parts === undefined || parts.length < 2 || parts.length > 4) return bad(form);
  // Which parts are addresses: 3 parts are host or guest address by where the address is.
  const withHost = parts.length === 4 || (parts.length === 3 && looksLikeAddr(parts[0]));
  const withGuest = parts.length === 4 || (parts.length === 3 && !withHost);
  const [hostText, hostSide, guestText, guestSide] = [withHost ? parts[0] : undefined, parts[withHost ? 1 : 0], withGuest ? parts[parts.length - 2] : undefined, parts[parts.length - 1]];
  const hostAddr = hostText === undefined ? DEFAULT_HOST_ADDR : addrPart(hostText);
  if (hostAddr === undefined) return bad(`not an IPv4 address or a bracketed IPv6 address: ${JSON.stringify(hostText)}`);
  const explicit = guestText === undefined ? undefined : addrPart(guestText);
  if (guestText !== undefined && explicit === undefined) return bad(`guest address: not an IPv4 address or a bracketed IPv6 address: ${JSON.stringify(guestText)}`);
  const h = parsePortRange(hostSide);
  if (!h) return bad(`bad host port ${JSON.stringify(hostSide)} (1..65535 or a range N-M)`);
  const g = parsePortRange(guestSide);
  if (!g) return bad(`bad guest port ${JSON.stringify(guestSide)} (1..65535 or a range N-M)`);
  const hn = h[1] - h[0] + 1;
  const gn = g[1] - g[0] + 1;
  if (gn !== hn) return bad(`host range has ${hn} ports, guest range ${gn}`);
  const to = explicit !== undefined ? { guestAddr: explicit } : defaultGuestFor(proto, hostAddr, guestAddr, guestAddr6);
  const specs: ForwardSpec[] = [];
  for (let i = 0; i < hn; i++) {
    const s: ForwardSpec = { proto, hostAddr, hostPort: h[0] + i, guestAddr: to.guestAddr!, guestPort: g[0] + i };
    if (to.guestAddrFallback !== undefined) s.guestAddrFallback = to.guestAddrFallback;
    specs.push(s);
  }
  return specs;
}
