/**
 * Port forward specifications: what a forward is, docker's `-p [hostAddr:]hostPort:guestPort[/udp]`
 * syntax (with port ranges, `8000-8009:80-89`; an IPv6 host address in brackets, `[::1]:8080:80`),
 * and validation of the control API's JSON body. The host side may listen on IPv4 or IPv6
 * (`::1`, `::`); the guest side is the guest's IPv4 address.
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
  guestAddr: string;
  guestPort: number;
}

export const DEFAULT_HOST_ADDR = "127.0.0.1";

const FIELDS = new Set(["proto", "hostAddr", "hostPort", "guestAddr", "guestPort"]);

function isPort(v: unknown, allowZero: boolean): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= (allowZero ? 0 : 1) && v <= 65535;
}

function isIpv4(v: unknown): v is string {
  return typeof v === "string" && parseIpv4Address(v) !== undefined;
}

/** A host address to listen on: IPv4, or IPv6 without a zone. */
export function isHostAddr(v: unknown): v is string {
  return isIpv4(v) || (typeof v === "string" && !v.includes("%") && isIPv6(v));
}

/**
 * Validate the JSON body of `POST /forwards`: `{proto?, hostAddr?, hostPort, guestAddr?, guestPort}`.
 * `defaultGuest` fills a missing `guestAddr`. Returns the spec or a message naming the problem.
 */
export function validateForward(body: unknown, defaultGuest?: string): ForwardSpec | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "expected a JSON object";
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) return `unknown field ${JSON.stringify(k)}`;
  const proto = o.proto ?? "tcp";
  if (proto !== "tcp" && proto !== "udp") return `proto: expected "tcp" or "udp", got ${JSON.stringify(o.proto)}`;
  const hostAddr = o.hostAddr ?? DEFAULT_HOST_ADDR;
  if (!isHostAddr(hostAddr)) return `hostAddr: not an IPv4 or IPv6 address: ${JSON.stringify(o.hostAddr)}`;
  if (!isPort(o.hostPort, true)) return `hostPort: expected an integer in 0..65535, got ${JSON.stringify(o.hostPort)}`;
  const guestAddr = o.guestAddr ?? defaultGuest;
  if (guestAddr === undefined) return "guestAddr: missing";
  if (!isIpv4(guestAddr)) return `guestAddr: not an IPv4 address: ${JSON.stringify(o.guestAddr)}`;
  if (!isPort(o.guestPort, false)) return `guestPort: expected an integer in 1..65535, got ${JSON.stringify(o.guestPort)}`;
  return { proto, hostAddr, hostPort: o.hostPort, guestAddr, guestPort: o.guestPort };
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

/**
 * Docker's `-p` syntax: `[hostAddr:]hostPort[-hostEnd]:guestPort[-guestEnd][/tcp|/udp]`. A
 * range on one side needs a range of the same length on the other. Returns one spec per port,
 * or a message.
 */
export function parsePublish(text: string, guestAddr: string): ForwardSpec[] | string {
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
  // An IPv6 host address comes in brackets: [::1]:8080:80.
  let bracketed: string | undefined;
  const m = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (m) {
    bracketed = m[1];
    rest = m[2];
  }
  const parts = rest.split(":");
  if (bracketed !== undefined) parts.unshift(bracketed);
  if (parts.length < 2 || parts.length > 3) return bad("expected [hostAddr:]hostPort:guestPort[/udp]");
  const hostAddr = parts.length === 3 ? parts[0] : DEFAULT_HOST_ADDR;
  if (!isHostAddr(hostAddr) || (isIpv4(hostAddr) === (bracketed !== undefined))) return bad(`not an IPv4 address or a bracketed IPv6 address: ${JSON.stringify(hostAddr)}`);
  const hostSide = parts[parts.length - 2];
  const guestSide = parts[parts.length - 1];
  const h = parsePortRange(hostSide);
  if (!h) return bad(`bad host port ${JSON.stringify(hostSide)} (1..65535 or a range N-M)`);
  const g = parsePortRange(guestSide);
  if (!g) return bad(`bad guest port ${JSON.stringify(guestSide)} (1..65535 or a range N-M)`);
  const hn = h[1] - h[0] + 1;
  const gn = g[1] - g[0] + 1;
  if (gn !== hn) return bad(`host range has ${hn} ports, guest range ${gn}`);
  const specs: ForwardSpec[] = [];
  for (let i = 0; i < hn; i++) specs.push({ proto, hostAddr, hostPort: h[0] + i, guestAddr, guestPort: g[0] + i });
  return specs;
}
