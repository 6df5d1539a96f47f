/**
 * A seeded, deterministic network simulator for the TCP engine (in the spirit of smoltcp's
 * tests/netsim.rs): two connections joined by a link with delay, jitter (so reordering),
 * loss, duplication, a bandwidth and a drop-tail queue, driven in virtual time. No timers, no
 * sleeps: the loop jumps to the next event (a delivery or an engine's `pollAt`).
 *
 * Each side writes a deterministic byte stream of a given size, then half-closes; each reads
 * everything it is sent. `runTransfer` reports what arrived, when each side finished, and
 * whether both connections closed cleanly.
 */
import { TcpConnection, resetForUnknown } from "../../src/tcp/connection.js";
import { TcpEvent } from "../../src/tcp/state.js";
import { TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import type { TcpConfig } from "../../src/tcp/config.js";
import { seededRandom } from "../../src/link/fault.js";

export interface LinkParams {
  /** One-way delay, ms. */
  delayMs: number;
  /** Uniform extra delay 0..jitterMs (reorders segments). */
  jitterMs: number;
  loss: number;
  duplicate: number;
  /** Bytes per ms (1e6 = 8 Gbit/s). */
  bandwidth: number;
  /** Drop-tail queue limit in bytes, per direction. */
  queueBytes: number;
}

export interface SimParams {
  seed: number;
  link: LinkParams;
  /** Bytes A sends to B and B sends to A. */
  sizeAtoB: number;
  sizeBtoA: number;
  config?: Partial<TcpConfig>;
  /** Application write size. */
  writeSize?: number;
  /** Give up after this much virtual time. */
  limitMs?: number;
  /** Print every segment (debugging). */
  trace?: boolean;
}

export interface SimResult {
  /** Bytes B received from A that matched the expected stream (stops at the first mismatch). */
  receivedAtB: number;
  receivedAtA: number;
  corruptAtB: boolean;
  corruptAtA: boolean;
  /** Virtual time when the last byte of each direction was read. */
  doneAtoBMs: number;
  doneBtoAMs: number;
  endMs: number;
  closedA: boolean;
  closedB: boolean;
  errorA: string | undefined;
  errorB: string | undefined;
  segments: number;
  dropped: number;
  retransmits: number;
  timeouts: number;
  fastRetransmits: number;
  /** RFC 8985: recoveries RACK started and tail loss probes sent (both ends). */
  rackRecoveries: number;
  lossProbes: number;
}

/** Byte `i` of the stream a side sends (different per direction). */
export function streamByte(i: number, salt: number): number {
  return (Math.imul(i, 2654435761) >>> 24) ^ salt ^ (i & 0xff);
}

interface InFlight {
  at: number;
  order: number;
  toB: boolean;
  seg: TcpRepr;
}

function copySeg(seg: TcpRepr): TcpRepr {
  return {
    ...seg,
    options: {
      ...seg.options,
      timestamp: seg.options.timestamp ? { ...seg.options.timestamp } : undefined,
      sack: seg.options.sack?.map(([l, r]) => [l, r] as [number, number]),
    },
    payload: Uint8Array.from(seg.payload),
  };
}

class Writer {
  sent = 0;
  closed = false;
  constructor(
    private readonly size: number,
    private readonly salt: number,
    private readonly chunk: number,
  ) {}
  pump(c: TcpConnection): void {
    while (this.sent < this.size) {
      const n = Math.min(this.chunk, this.size - this.sent);
      const buf = new Uint8Array(n);
      for (let i = 0; i < n; i++) buf[i] = streamByte(this.sent + i, this.salt);
      const took = c.write(buf);
      this.sent += took;
      if (took < n) return;
    }
    if (!this.closed) {
      this.closed = true;
      c.shutdownWrite();
    }
  }
}

class Reader {
  received = 0;
  corrupt = false;
  doneAt = -1;
  constructor(
    private readonly size: number,
    private readonly salt: number,
  ) {}
  pump(c: TcpConnection, now: number): void {
    for (;;) {
      const data = c.read();
      if (data.length === 0) break;
      for (let i = 0; i < data.length && !this.corrupt; i++) {
        if (data[i] !== streamByte(this.received + i, this.salt)) this.corrupt = true;
      }
      this.received += data.length;
      if (this.received > this.size) this.corrupt = true;
    }
    if (this.doneAt < 0 && this.received === this.size && c.peerFinished) this.doneAt = now;
  }
}

export function runTransfer(p: SimParams): SimResult {
  const rnd = seededRandom(p.seed);
  const link = p.link;
  // A full-length TIME-WAIT (Linux's 60 s) unless the test says otherwise: the engine's short
  // default suits a gateway, but here a peer's late FIN retransmission must find it.
  const cfg: Partial<TcpConfig> = { timeWaitMs: 60_000, ...p.config };
  const chunk = p.writeSize ?? 16 * 1024;
  const limit = p.limitMs ?? 600_000;
  const a = TcpConnection.connect(cfg, { localPort: 40000, remotePort: 80 }, Math.floor(rnd() * 2 ** 32), 0, 1000);
  let b: TcpConnection | undefined;
  const wA = new Writer(p.sizeAtoB, 0x11, chunk);
  const wB = new Writer(p.sizeBtoA, 0x5a, chunk);
  const rA = new Reader(p.sizeBtoA, 0x5a);
  const rB = new Reader(p.sizeAtoB, 0x11);
  const queue: InFlight[] = [];
  const linkFreeAt = [0, 0];
  const queued = [0, 0];
  let order = 0;
  let segments = 0;
  let dropped = 0;
  let now = 0;

  const fmt = (seg: TcpRepr) =>
    `seq=${seg.seq} ack=${seg.ack} f=${seg.flags.toString(16)} win=${seg.window} len=${seg.payload.length}` +
    (seg.options.sack ? ` sack=${JSON.stringify(seg.options.sack)}` : "");
  const enqueue = (seg: TcpRepr, toB: boolean) => {
    segments++;
    if (p.trace) console.log(`${now.toFixed(2)} ${toB ? "A>B" : "B>A"} ${fmt(seg)} [${toB ? a.stateName : b?.stateName} una=${toB ? a.sndUna : b?.sndUna} max=${toB ? a.sndMax : b?.sndMax}]`);
    const dir = toB ? 0 : 1;
    const size = seg.payload.length + 40;
    if (rnd() < link.loss) {
      if (p.trace) console.log("   lost");
      dropped++;
      return;
    }
    if (queued[dir] + size > link.queueBytes) {
      dropped++;
      return;
    }
    const copies = rnd() < link.duplicate ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      const start = Math.max(now, linkFreeAt[dir]);
      linkFreeAt[dir] = start + size / link.bandwidth;
      queued[dir] += size;
      const at = linkFreeAt[dir] + link.delayMs + rnd() * link.jitterMs;
      queue.push({ at, order: order++, toB, seg: k === 0 ? copySeg(seg) : copySeg(seg) });
    }
  };

  const flush = (c: TcpConnection, toB: boolean) => {
    for (let i = 0; i < 100_000; i++) {
      const seg = c.output(now);
      if (seg === undefined) break;
      enqueue(seg, toB);
    }
    const rst = c.takeReset();
    if (rst) enqueue(rst, toB);
  };

  /** A closed endpoint answers like a host with no such connection (RFC 9293 §3.10.7.1). */
  const deliverTo = (c: TcpConnection, seg: TcpRepr, replyToB: boolean) => {
    if (c.state !== 0) return c.onSegment(seg, now);
    const rst = resetForUnknown(seg);
    if (rst) enqueue(rst, replyToB);
  };

  const app = (c: TcpConnection, w: Writer, r: Reader) => {
    c.takeEvents();
    w.pump(c);
    r.pump(c, now);
  };

  let iterations = 0;
  while (now <= limit && iterations++ < 5_000_000) {
    // Deliver everything due now.
    queue.sort((x, y) => x.at - y.at || x.order - y.order);
    while (queue.length > 0 && queue[0].at <= now) {
      const ev = queue.shift()!;
      queued[ev.toB ? 0 : 1] -= ev.seg.payload.length + 40;
      if (p.trace) console.log(`${now.toFixed(2)} deliver ${ev.toB ? "A>B" : "B>A"} ${fmt(ev.seg)}`);
      if (ev.toB) {
        if (b === undefined) {
          if (ev.seg.flags & TcpFlag.SYN && !(ev.seg.flags & TcpFlag.ACK)) {
            b = TcpConnection.fromSyn(cfg, ev.seg, Math.floor(rnd() * 2 ** 32), now, 7777);
            b.accept(now);
          }
        } else deliverTo(b, ev.seg, false);
      } else deliverTo(a, ev.seg, true);
    }
    app(a, wA, rA);
    if (b) app(b, wB, rB);
    flush(a, true);
    if (b) flush(b, false);
    const aDone = a.state === 0;
    const bDone = b !== undefined && b.state === 0;
    if (aDone && bDone && queue.length === 0) break;
    // Next event.
    let next = Infinity;
    if (queue.length > 0) next = Math.min(...queue.map((q) => q.at));
    for (const c of [a, b]) {
      if (c === undefined) continue;
      const t = c.pollAt();
      if (t === -Infinity) next = now;
      else next = Math.min(next, t);
    }
    if (next === Infinity) break;
    now = Math.max(now, next);
  }
  let retransmits = a.counters.retransmittedSegments;
  if (b) retransmits += b.counters.retransmittedSegments;
  return {
    receivedAtB: rB.received,
    receivedAtA: rA.received,
    corruptAtB: rB.corrupt,
    corruptAtA: rA.corrupt,
    doneAtoBMs: rB.doneAt,
    doneBtoAMs: rA.doneAt,
    endMs: now,
    closedA: a.state === 0,
    closedB: b !== undefined && b.state === 0,
    errorA: a.error,
    errorB: b?.error,
    segments,
    dropped,
    retransmits,
    timeouts: a.counters.timeouts + (b?.counters.timeouts ?? 0),
    fastRetransmits: a.counters.fastRetransmits + (b?.counters.fastRetransmits ?? 0),
    rackRecoveries: a.counters.rackRecoveries + (b?.counters.rackRecoveries ?? 0),
    lossProbes: a.counters.lossProbes + (b?.counters.lossProbes ?? 0),
  };
}

export { TcpEvent };
