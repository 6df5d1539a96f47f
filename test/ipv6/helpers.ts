/**
 * Shared helpers for the IPv6 codec tests: hex in and out, address arbitraries, and a builder
 * of whole IPv6 packets (fixed header + raw extension-header/upper-layer bytes).
 */
import fc from "fast-check";
import { expect } from "chai";
import { Ipv6Addr, parseIpv6Address } from "../../src/ipv6/addr.js";
import { emitIpv6, IPV6_HEADER_LEN } from "../../src/ipv6/ipv6.js";
import { WireError } from "../../src/common/wire-error.js";
import { readPcapFile } from "../../src/pcap/reader.js";
import { fileURLToPath } from "node:url";

export const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
export const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** An address from its text form (throws on a typo in a test). */
export function a6(s: string): Ipv6Addr {
  const a = parseIpv6Address(s);
  if (a === undefined) throw new Error(`bad test address ${s}`);
  return a;
}

const word = () => fc.integer({ min: 0, max: 0xffff_ffff });
/** Any address, with a bias towards runs of zero groups (the interesting case for RFC 5952). */
export const ipv6Addr = (): fc.Arbitrary<Ipv6Addr> =>
  fc
    .tuple(fc.array(fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }), fc.boolean(), word(), word(), word(), word())
    .map(([g, grouped, w0, w1, w2, w3]) =>
      grouped
        ? new Ipv6Addr(((g[0] << 16) | g[1]) >>> 0, ((g[2] << 16) | g[3]) >>> 0, ((g[4] << 16) | g[5]) >>> 0, ((g[6] << 16) | g[7]) >>> 0)
        : new Ipv6Addr(w0, w1, w2, w3),
    );

export const GUEST = a6("fd53:6b69:6666:0:5054:ff:fe12:3456");
export const GATEWAY = a6("fd53:6b69:6666::1");

/** A whole IPv6 packet: fixed header with `nextHeader`, then `payload`. */
export function packet6(nextHeader: number, payload: Uint8Array, src = GUEST, dst = GATEWAY, hopLimit = 64): Uint8Array {
  const b = new Uint8Array(IPV6_HEADER_LEN + payload.length);
  emitIpv6({ src, dst, nextHeader, hopLimit, trafficClass: 0, flowLabel: 0, payloadLength: payload.length }, b);
  b.set(payload, IPV6_HEADER_LEN);
  return b;
}

/** Concatenate byte arrays (test code only; codecs never concatenate). */
export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The reason of a WireError from `layer` (fails the test when `x` is not one). */
export function reasonOf(x: unknown, layer: string): string {
  expect(x).to.be.instanceOf(WireError);
  expect((x as WireError).layer).to.equal(layer);
  return (x as WireError).reason;
}

/** Unwrap a parse result, failing the test on a WireError. */
export function ok<T>(x: T | WireError): T {
  if (x instanceof WireError) throw new Error(`unexpected ${x.toString()}`);
  return x;
}

/** The IPv6 packets (Ethernet header stripped; EtherType 0x86dd only) of a fixture in fixtures/pcaps/ipv6/, in capture order, with their 1-based frame numbers. */
export function fixturePackets(name: string): Array<{ frame: number; ip: Uint8Array }> {
  const cap = readPcapFile(fileURLToPath(new URL(`../../fixtures/pcaps/ipv6/${name}`, import.meta.url)));
  if (cap instanceof WireError) throw new Error(cap.toString());
  const out: Array<{ frame: number; ip: Uint8Array }> = [];
  cap.packets.forEach((p, i) => {
    if (p.data[12] === 0x86 && p.data[13] === 0xdd) out.push({ frame: i + 1, ip: Uint8Array.from(p.data.subarray(14)) });
  });
  return out;
}
