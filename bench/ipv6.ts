/**
 * Micro-benchmarks of the IPv6 codecs (not tests; numbers vary by machine):
 *  - the address representation (src/ipv6/addr.ts): reading the source and destination of a
 *    packet, comparing them with a known address and looking a source up in a 1,024-entry flow
 *    table, for four uint32 words (skiff's choice) against a 16-byte Uint8Array with a hex-string
 *    key, two BigInt halves, and the RFC 5952 text form;
 *  - parse costs: the fixed header, the extension-header walk (none, and Hop-by-Hop +
 *    Destination Options + Fragment), an ICMPv6 echo with its checksum, dnsmasq's RA.
 *
 * Run: `npx tsx bench/ipv6.ts`. Prints a markdown table (ns per operation, median of 5 rounds).
 */

import { formatIpv6, hashIpv6, ipv6Equal, readIpv6Addr, Ipv6Addr } from "../src/ipv6/addr.js";
import { emitFragmentHeader, emitOptionsHeader, walkExtensionHeaders } from "../src/ipv6/ext.js";
import { emitIcmpv6, parseIcmpv6 } from "../src/ipv6/icmpv6.js";
import { emitIpv6, parseIpv6 } from "../src/ipv6/ipv6.js";
import { emitNdp, ndpLen, parseNdp, type NdpRepr } from "../src/ipv6/ndp.js";
import { timeIt } from "./time-it.js";

let sink = 0;
const rows: Array<[string, string]> = [];
const ns = (x: number) => `${x.toFixed(1)} ns`;

// A 1,024-entry flow table keyed by source address, and packets from those sources.
const N = 1024;
const sources = Array.from({ length: N }, (_, i) => new Ipv6Addr(0xfd536b69, 0x66660000, 0x50540000 + (i >>> 8), 0xfe000000 + i * 7919));
const gateway = new Ipv6Addr(0xfd536b69, 0x66660000, 0, 1);
const packets = sources.map((s) => {
  const b = new Uint8Array(60);
  emitIpv6({ src: s, dst: gateway, nextHeader: 17, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: 20 }, b);
  return b;
});

// (a) four uint32 words: hash to a number key, chained entries compared with ipv6Equal.
const byHash = new Map<number, Array<{ addr: Ipv6Addr; v: number }>>();
sources.forEach((a, i) => {
  const h = hashIpv6(a);
  const list = byHash.get(h) ?? [];
  list.push({ addr: a, v: i });
  byHash.set(h, list);
});
let k = 0;
const words = timeIt(() => {
  const p = packets[k++ & (N - 1)];
  const src = readIpv6Addr(p, 8);
  const dst = readIpv6Addr(p, 24);
  if (ipv6Equal(dst, gateway)) {
    const list = byHash.get(hashIpv6(src));
    if (list !== undefined) for (const e of list) if (ipv6Equal(e.addr, src)) sink ^= e.v;
  }
});
rows.push(["address: read src+dst, compare, flow lookup — four uint32 words (skiff)", ns(words)]);

// (b) 16-byte Uint8Array copies, compared byte by byte, keyed by a hex string.
const hexKey = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, 16).toString("hex");
const byHex = new Map<string, number>();
packets.forEach((p, i) => byHex.set(hexKey(p.subarray(8, 24)), i));
const gwBytes = packets[0].slice(24, 40);
k = 0;
const arrays = timeIt(() => {
  const p = packets[k++ & (N - 1)];
  const src = p.slice(8, 24);
  const dst = p.slice(24, 40);
  let same = true;
  for (let i = 0; i < 16; i++) if (dst[i] !== gwBytes[i]) same = false;
  if (same) sink ^= byHex.get(hexKey(src)) ?? 0;
});
rows.push(["address: read src+dst, compare, flow lookup — Uint8Array(16) + hex-string key", ns(arrays)]);

// (c) two BigInt halves, keyed by one BigInt.
const big = (b: Uint8Array, o: number) => {
  const v = new DataView(b.buffer, b.byteOffset);
  return [v.getBigUint64(o), v.getBigUint64(o + 8)] as const;
};
const byBig = new Map<bigint, number>();
packets.forEach((p, i) => {
  const [h, l] = big(p, 8);
  byBig.set((h << 64n) | l, i);
});
const [gh, gl] = big(packets[0], 24);
k = 0;
const bigints = timeIt(() => {
  const p = packets[k++ & (N - 1)];
  const [sh, sl] = big(p, 8);
  const [dh, dl] = big(p, 24);
  if (dh === gh && dl === gl) sink ^= byBig.get((sh << 64n) | sl) ?? 0;
});
rows.push(["address: read src+dst, compare, flow lookup — two BigInt halves", ns(bigints)]);

// (d) the text form as the key.
const byText = new Map<string, number>();
sources.forEach((a, i) => byText.set(formatIpv6(a), i));
const gwText = formatIpv6(gateway);
k = 0;
const texts = timeIt(() => {
  const p = packets[k++ & (N - 1)];
  if (formatIpv6(readIpv6Addr(p, 24)) === gwText) sink ^= byText.get(formatIpv6(readIpv6Addr(p, 8))) ?? 0;
});
rows.push(["address: read src+dst, compare, flow lookup — RFC 5952 strings", ns(texts)]);

// Parse costs.
const plain = packets[0];
rows.push(["parseIpv6 (fixed header)", ns(timeIt(() => (sink ^= (parseIpv6(plain) as { hopLimit: number }).hopLimit)))]);
rows.push(["walkExtensionHeaders, no extension header", ns(timeIt(() => (sink ^= (walkExtensionHeaders(plain) as { offset: number }).offset)))]);
const chained = new Uint8Array(40 + 8 + 16 + 8 + 8);
emitIpv6({ src: sources[1], dst: gateway, nextHeader: 0, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: 40 }, chained);
emitOptionsHeader(60, [{ type: 5, data: Uint8Array.of(0, 0) }], chained, 40);
emitOptionsHeader(44, [{ type: 0x1e, data: new Uint8Array(8) }], chained, 48);
emitFragmentHeader({ nextHeader: 17, fragmentOffset: 0, moreFragments: false, id: 1 }, chained, 64);
rows.push(["walkExtensionHeaders, Hop-by-Hop + Destination Options + Fragment", ns(timeIt(() => (sink ^= (walkExtensionHeaders(chained) as { offset: number }).offset)))]);
const echo = new Uint8Array(64);
emitIcmpv6({ kind: "echo-request", id: 1, seq: 1, data: new Uint8Array(56) }, echo, 0, sources[0], gateway);
rows.push(["parseIcmpv6, 64-byte echo request with its checksum", ns(timeIt(() => (sink ^= (parseIcmpv6(echo, sources[0], gateway) as { kind: string }).kind.length)))]);
const ra: NdpRepr = {
  kind: "ra", curHopLimit: 64, flags: 0x40, routerLifetime: 1800, reachableTime: 0, retransTimer: 0,
  options: [
    { type: "prefix", prefixLength: 64, flags: 0xc0, validLifetime: 3600, preferredLifetime: 3600, prefix: new Ipv6Addr(0xfd536b69, 0x66660000, 0, 0) },
    { type: "mtu", mtu: 1500 },
    { type: "source-lla", mac: 0x025000000001 },
    { type: "dnssl", lifetime: 3600, domains: ["internal"] },
    { type: "rdnss", lifetime: 3600, servers: [gateway] },
  ],
};
const ll = new Ipv6Addr(0xfe800000, 0, 0x005000ff, 0xfe000001);
const allNodes = new Ipv6Addr(0xff020000, 0, 0, 1);
const raBytes = new Uint8Array(ndpLen(ra));
emitNdp(ra, raBytes, 0, ll, allNodes);
rows.push(["parseNdp, dnsmasq's RA (5 options)", ns(timeIt(() => (sink ^= (parseNdp(raBytes, ll, allNodes, 255) as { kind: string }).kind.length)))]);
rows.push(["emitNdp, the same RA", ns(timeIt(() => (sink ^= emitNdp(ra, raBytes, 0, ll, allNodes))))]);

console.log(`| operation (node ${process.version}) | time |\n|---|---|`);
for (const [name, v] of rows) console.log(`| ${name} | ${v} |`);
if (sink === 0.5) console.log(sink);
