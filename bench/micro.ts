/**
 * Micro-benchmarks of the data path's building blocks (not tests; numbers vary by machine):
 *  - Internet checksum throughput over 64 KiB buffers (MB/s), against the plain byte loop;
 *  - parse and emit cost of an IPv4 + TCP header with timestamps (ns/op).
 *
 * Run: `npm run bench:micro` (or `npx tsx bench/micro.ts`). Prints a markdown table.
 */

import { checksum } from "../src/ipv4/checksum.js";
import { emitIpv4, parseIpv4, ipv4HeaderLen, type Ipv4Repr } from "../src/ipv4/ipv4.js";
import { emitTcp, parseTcp, tcpLen, TcpFlag, type TcpRepr } from "../src/tcp/wire.js";
import { timeIt } from "./time-it.js";

function naiveChecksum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}


let sink = 0;
const rows: Array<[string, string]> = [];

const big = new Uint8Array(65536);
for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
const fast = timeIt(() => (sink ^= checksum(big, 0, big.length)));
const slow = timeIt(() => (sink ^= naiveChecksum(big, 0, big.length)));
rows.push(["checksum, 64 KiB buffer (skiff)", `${((65536 / fast) * 1e3).toFixed(0)} MB/s`]);
rows.push(["checksum, 64 KiB buffer (byte loop, reference)", `${((65536 / slow) * 1e3).toFixed(0)} MB/s`]);
const odd = big.subarray(1);
const fastOdd = timeIt(() => (sink ^= checksum(odd, 0, 65534)));
rows.push(["checksum, 64 KiB, odd alignment (skiff)", `${((65534 / fastOdd) * 1e3).toFixed(0)} MB/s`]);

const src = 0xc0a84103;
const dst = 0x7f000001;
const tcp: TcpRepr = {
  srcPort: 40000,
  dstPort: 80,
  seq: 123456789,
  ack: 987654321,
  flags: TcpFlag.ACK | TcpFlag.PSH,
  window: 65535,
  urgentPointer: 0,
  options: { timestamp: { tsVal: 1000, tsEcr: 2000 } },
  payload: new Uint8Array(0),
};
const ip: Ipv4Repr = {
  src,
  dst,
  protocol: 6,
  ttl: 64,
  id: 1,
  tos: 0,
  df: true,
  mf: false,
  fragmentOffset: 0,
  payloadLength: tcpLen(tcp),
  options: new Uint8Array(0),
};
const frame = new Uint8Array(ipv4HeaderLen(ip) + tcpLen(tcp));
const emitBoth = () => {
  const h = emitIpv4(ip, frame, 0);
  sink ^= emitTcp(tcp, frame, h, src, dst);
};
emitBoth();
const parseBoth = () => {
  const r = parseIpv4(frame);
  if (!("src" in r)) throw new Error("parse failed");
  const t = parseTcp(frame.subarray(20), r.src, r.dst);
  if (!("seq" in t)) throw new Error("parse failed");
  sink ^= t.seq;
};
rows.push(["emit IPv4 + TCP header (timestamps option), checksums filled", `${timeIt(emitBoth).toFixed(0)} ns/op`]);
rows.push(["parse IPv4 + TCP header, checksums verified", `${timeIt(parseBoth).toFixed(0)} ns/op`]);

console.log(`\nskiff micro-benchmarks — node ${process.version}, ${new Date().toISOString()}\n`);
console.log("| measurement | result |\n|---|---|");
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
if (sink === 0.5) console.log(sink);
