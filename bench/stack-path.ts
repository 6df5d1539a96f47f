/**
 * The gateway's receive path for bulk TCP, in process (not a test; numbers vary by machine):
 * a guest's in-order 1448-byte data segments (IPv4, and the same over IPv6) go through
 * `NetworkStack.receive` — Ethernet, IP checks, source validation, the TCP layer's flow lookup,
 * the engine — to an established flow whose reader drains them; the stack's ACKs go to a
 * channel that drops them. Measures what the IPv6 work could have cost the IPv4 hot path
 * (run it on the revision before and after) and what IPv6 costs beside it.
 *
 * Run: `npx tsx bench/stack-path.ts`. Prints a markdown table (CPU ns per segment, median of 7).
 */

import { BaseFrameChannel } from "../src/common/frame-channel.js";
import { emitEthernet, EtherType } from "../src/ethernet/ethernet.js";
import { emitIpv4 } from "../src/ipv4/ipv4.js";
import { NetworkStack } from "../src/stack/stack.js";
import { TcpLayer, type TcpFlow } from "../src/stack/tcp.js";
import { emitTcp, parseTcp, tcpLen, TcpFlag, type TcpRepr } from "../src/tcp/wire.js";

const GUEST_MAC = 0x525400123456;
const GW_MAC = 0x025000000001;
const GUEST4 = 0xc0a84103;
const HOST4 = 0x0a000001;
// fd73:6b69:6666::3 and 2001:db8::1 as 16 bytes.
const GUEST6 = Uint8Array.from([0xfd, 0x73, 0x6b, 0x69, 0x66, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
const HOST6 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const MSS = 1448;
const BATCH = 16;

class Sink extends BaseFrameChannel {
  last: Uint8Array | undefined;
  constructor() {
    super("sink", 1500);
  }
  protected transmit(frame: Uint8Array): boolean {
    this.last = Uint8Array.from(frame);
    return true;
  }
  protected shutdown(): void {}
}

/** A guest frame carrying `seg` (IPv4 or IPv6), checksums filled. */
function frame(v6: boolean, seg: TcpRepr): Uint8Array {
  const l4 = tcpLen(seg);
  const ipLen = v6 ? 40 : 20;
  const f = new Uint8Array(14 + ipLen + l4);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: v6 ? EtherType.IPv6 : EtherType.IPv4 }, f);
  if (!v6) {
    emitIpv4({ src: GUEST4, dst: HOST4, protocol: 6, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: l4, options: new Uint8Array(0) }, f, o);
    emitTcp(seg, f, o + 20, GUEST4, HOST4);
    return f;
  }
  f[o] = 0x60;
  f[o + 4] = l4 >>> 8;
  f[o + 5] = l4 & 0xff;
  f[o + 6] = 6;
  f[o + 7] = 64;
  f.set(GUEST6, o + 8);
  f.set(HOST6, o + 24);
  emitTcp(seg, f, o + 40, 0, 0);
  // Recompute over the IPv6 pseudo-header (RFC 8200 §8.1), plainly: this is set-up, not measured.
  f[o + 40 + 16] = 0;
  f[o + 40 + 17] = 0;
  let s = 6 + l4;
  for (let i = o + 8; i < o + 40; i += 2) s += (f[i] << 8) | f[i + 1];
  for (let i = o + 40; i < f.length; i += 2) s += (f[i] << 8) | (i + 1 < f.length ? f[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  const c = ~s & 0xffff;
  f[o + 40 + 16] = c >>> 8;
  f[o + 40 + 17] = c & 0xff;
  return f;
}

const seg = (seq: number, ack: number, flags: number, payload = new Uint8Array(0)): TcpRepr => ({
  srcPort: 40000, dstPort: 80, seq, ack, flags, window: 65535, urgentPointer: 0, options: { mss: MSS, windowScale: 7 }, payload,
});

async function measure(v6: boolean, segments: number): Promise<number> {
  const stack = new NetworkStack({ mtu: 1500 });
  const ch = new Sink();
  const port = stack.attach(ch);
  const tcp = new TcpLayer(stack, { tcp: { recvBufferSize: 4 << 20 } });
  let flow: TcpFlow | undefined;
  tcp.forwarder = (f) => {
    flow = f;
    f.onEvents = (g) => {
      while (g.readable > 0) g.consume(g.peekHead().length);
    };
    f.accept();
  };
  stack.receive(port, frame(v6, seg(1000, 0, TcpFlag.SYN)));
  const synAck = parseTcp(ch.last!.subarray(14 + (v6 ? 40 : 20)), 0, 0, { verifyChecksum: false });
  if ("reason" in synAck) throw new Error("no SYN-ACK");
  const ack = (synAck.seq + 1) >>> 0;
  stack.receive(port, frame(v6, seg(1001, ack, TcpFlag.ACK)));
  // Frames made ahead of time: the loop measures the stack only.
  const payload = new Uint8Array(MSS).fill(7);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < segments; i++) {
    const s = seg((1001 + i * MSS) >>> 0, ack, TcpFlag.ACK | TcpFlag.PSH, payload);
    s.options = {};
    frames.push(frame(v6, s));
  }
  // CPU time of this process rather than wall time: on a shared machine, waiting for a core is not the stack's cost.
  const t0 = process.cpuUsage();
  for (let i = 0; i < segments; i += BATCH) {
    for (let j = i; j < i + BATCH && j < segments; j++) stack.receive(port, frames[j]);
    await Promise.resolve(); // the TCP layer's end-of-batch service (a microtask)
  }
  const used = process.cpuUsage(t0);
  const ns = ((used.user + used.system) * 1000) / segments;
  if (flow === undefined || tcp.counters.segmentsIn < segments) throw new Error(`segments lost: ${tcp.counters.segmentsIn}`);
  tcp.close();
  stack.close();
  return ns;
}

const rows: Array<[string, string]> = [];
const families = [false, true];
const ok = new Map<boolean, string | undefined>();
// Warm both paths up first, then alternate the measured rounds (JIT tiering and machine noise fall on both alike).
for (const v6 of families) {
  try {
    await measure(v6, 20_000);
    ok.set(v6, undefined);
  } catch (e) {
    ok.set(v6, (e as Error).message);
  }
}
const runs = new Map<boolean, number[]>(families.map((f) => [f, []]));
for (let r = 0; r < 7; r++) for (const v6 of families) if (ok.get(v6) === undefined) runs.get(v6)!.push(await measure(v6, 50_000));
for (const v6 of families) {
  const name = `receive, ${v6 ? "IPv6" : "IPv4"} TCP data segment (${MSS} B) to an established flow`;
  const err = ok.get(v6);
  if (err !== undefined) {
    rows.push([name, `not measured (${err})`]);
    continue;
  }
  const xs = runs.get(v6)!.sort((a, b) => a - b);
  rows.push([name, `${xs[3].toFixed(0)} ns`]);
}
console.log("| operation | median of 7 |\n|---|---|");
for (const [a, b] of rows) console.log(`| ${a} | ${b} |`);
