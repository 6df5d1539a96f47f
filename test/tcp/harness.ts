/**
 * Exact-segment test harness for the TCP engine, in the style of smoltcp's socket tests:
 * build a connection in a given state, feed one exact segment at an explicit time, and assert
 * the exact reply (or none).
 *
 *   const c = established();
 *   send(c, 0, { ...SEND, seq: REMOTE_SEQ + 1, payload: bytes("abc") });
 *   recv(c, 40, [{ ...RECV, seq: LOCAL_SEQ + 1, ack: REMOTE_SEQ + 4 }]);   // delayed ACK at 40 ms
 *   recvNothing(c, 39);
 *
 * `SEND` is a template of a segment from the peer to us, `RECV` of one from us to the peer.
 * Segments compare with their payload as bytes; options must match exactly.
 */
import { expect } from "chai";
import { TcpConnection } from "../../src/tcp/connection.js";
import { TcpFlag, type TcpOptions, type TcpRepr } from "../../src/tcp/wire.js";
import type { TcpConfig } from "../../src/tcp/config.js";
import { seqAdd } from "../../src/tcp/seq.js";

export const LOCAL_PORT = 80;
export const REMOTE_PORT = 49500;
/** Our initial sequence number. */
export const LOCAL_SEQ = 10_000;
/** The peer's initial sequence number. */
export const REMOTE_SEQ = -10_000 >>> 0; // just below 2^32: every test crosses the wrap
export const { FIN, SYN, RST, PSH, ACK } = TcpFlag;

/** A segment as tests write it: a plain TcpRepr (payload and options as values). */
export type Seg = TcpRepr;

export const SEND: Seg = {
  srcPort: REMOTE_PORT,
  dstPort: LOCAL_PORT,
  seq: 0,
  ack: 0,
  flags: ACK,
  window: 65535,
  urgentPointer: 0,
  options: {},
  payload: new Uint8Array(0),
};

export const RECV: Seg = {
  srcPort: LOCAL_PORT,
  dstPort: REMOTE_PORT,
  seq: 0,
  ack: 0,
  flags: ACK,
  window: 0,
  urgentPointer: 0,
  options: {},
  payload: new Uint8Array(0),
};

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function s(a: number, n: number): number {
  return seqAdd(a, n);
}

/** Configuration for tests: deterministic, options off unless a test turns them on. */
export function testConfig(over: Partial<TcpConfig> = {}): Partial<TcpConfig> {
  return {
    mss: 1460,
    recvBufferSize: 64 * 1024,
    sendBufferSize: 64 * 1024,
    windowScaling: false,
    sack: false,
    timestamps: false,
    delayedAckMs: 0,
    ...over,
  };
}

function copy(seg: TcpRepr): Seg {
  const o: TcpOptions = {};
  if (seg.options.mss !== undefined) o.mss = seg.options.mss;
  if (seg.options.windowScale !== undefined) o.windowScale = seg.options.windowScale;
  if (seg.options.sackPermitted) o.sackPermitted = true;
  if (seg.options.timestamp) o.timestamp = { ...seg.options.timestamp };
  if (seg.options.sack && seg.options.sack.length > 0) o.sack = seg.options.sack.map(([l, r]) => [l >>> 0, r >>> 0]);
  return { ...seg, seq: seg.seq >>> 0, ack: seg.ack >>> 0, options: o, payload: Uint8Array.from(seg.payload) };
}

function normalize(seg: Seg): Seg {
  return { ...seg, seq: seg.seq >>> 0, ack: seg.ack >>> 0, payload: Uint8Array.from(seg.payload) };
}

/** Feed one segment from the peer at time `t`. */
export function send(c: TcpConnection, t: number, seg: Seg): void {
  c.onSegment({ ...seg, seq: seg.seq >>> 0, ack: seg.ack >>> 0 }, t);
}

/** Everything the connection sends at time `t` (copies). */
export function drain(c: TcpConnection, t: number, max = 10_000): Seg[] {
  const out: Seg[] = [];
  for (let i = 0; i < max; i++) {
    const seg = c.output(t);
    if (seg === undefined) break;
    out.push(copy(seg));
  }
  const extra = c.takeReset();
  if (extra) out.push(copy(extra));
  return out;
}

/** Assert the exact segments the connection sends at time `t`. */
export function recv(c: TcpConnection, t: number, expected: Seg[]): void {
  expect(drain(c, t)).to.deep.equal(expected.map(normalize));
}

/** Assert that the connection sends nothing at time `t`. */
export function recvNothing(c: TcpConnection, t: number): void {
  expect(drain(c, t)).to.deep.equal([]);
}

// ---- fixtures: a connection in each state ------------------------------------------

/** A passive connection whose SYN is held (SYN-RECEIVED, nothing sent yet). */
export function heldSyn(cfg: Partial<TcpConfig> = {}, synOptions: TcpOptions = { mss: 1460 }, t = 0): TcpConnection {
  return TcpConnection.fromSyn(testConfig(cfg), { ...SEND, seq: REMOTE_SEQ, flags: SYN, options: synOptions, window: 65535 }, LOCAL_SEQ, t);
}

/** SYN-RECEIVED with the SYN-ACK sent. */
export function synReceived(cfg: Partial<TcpConfig> = {}, synOptions: TcpOptions = { mss: 1460 }): TcpConnection {
  const c = heldSyn(cfg, synOptions);
  c.accept(0);
  drain(c, 0);
  c.takeEvents();
  return c;
}

/** ESTABLISHED after a passive open, nothing in flight; events cleared. */
export function established(cfg: Partial<TcpConfig> = {}, synOptions: TcpOptions = { mss: 1460 }): TcpConnection {
  const c = synReceived(cfg, synOptions);
  send(c, 0, { ...SEND, seq: s(REMOTE_SEQ, 1), ack: s(LOCAL_SEQ, 1) });
  drain(c, 0);
  c.takeEvents();
  return c;
}

/** SYN-SENT after an active open with the SYN sent. */
export function synSent(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = TcpConnection.connect(testConfig(cfg), { localPort: LOCAL_PORT, remotePort: REMOTE_PORT }, LOCAL_SEQ, 0);
  drain(c, 0);
  return c;
}

/** FIN-WAIT-1: we closed, our FIN is in flight. */
export function finWait1(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = established(cfg);
  c.shutdownWrite();
  drain(c, 0);
  return c;
}

/** FIN-WAIT-2: our FIN acknowledged. */
export function finWait2(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = finWait1(cfg);
  send(c, 0, { ...SEND, seq: s(REMOTE_SEQ, 1), ack: s(LOCAL_SEQ, 2) });
  drain(c, 0);
  c.takeEvents();
  return c;
}

/** CLOSE-WAIT: the peer's FIN received and acknowledged. */
export function closeWait(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = established(cfg);
  send(c, 0, { ...SEND, seq: s(REMOTE_SEQ, 1), ack: s(LOCAL_SEQ, 1), flags: FIN | ACK });
  drain(c, 0);
  c.takeEvents();
  return c;
}

/** LAST-ACK: CLOSE-WAIT, then we closed and our FIN is in flight. */
export function lastAck(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = closeWait(cfg);
  c.shutdownWrite();
  drain(c, 0);
  return c;
}

/** TIME-WAIT: both FINs exchanged, ours acknowledged, theirs acknowledged by us. */
export function timeWait(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = finWait2(cfg);
  send(c, 0, { ...SEND, seq: s(REMOTE_SEQ, 1), ack: s(LOCAL_SEQ, 2), flags: FIN | ACK });
  drain(c, 0);
  c.takeEvents();
  return c;
}

/** CLOSING: simultaneous close, our FIN not yet acknowledged when theirs arrives. */
export function closing(cfg: Partial<TcpConfig> = {}): TcpConnection {
  const c = finWait1(cfg);
  send(c, 0, { ...SEND, seq: s(REMOTE_SEQ, 1), ack: s(LOCAL_SEQ, 1), flags: FIN | ACK });
  drain(c, 0);
  c.takeEvents();
  return c;
}

// ---- helpers for options/data/timers/recovery tests (one block; appended) -----------

/** Deterministic payload of `n` bytes: byte i is (seed + i) & 0xff. */
export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i) & 0xff;
  return b;
}

/** Sequence number of our data byte `n` (0 = the first byte after our SYN). */
export function ourSeq(n: number): number {
  return s(LOCAL_SEQ, 1 + n);
}

/** Sequence number of the peer's data byte `n` (0 = the first byte after its SYN). */
export function peerSeq(n: number): number {
  return s(REMOTE_SEQ, 1 + n);
}

/**
 * Our data segment carrying `data[from, to)` at our byte offset `from`, acknowledging the
 * peer's SYN only and offering 65535 (override any field with `over`).
 */
export function ourData(data: Uint8Array, from: number, to: number, flags: number = ACK, over: Partial<Seg> = {}): Seg {
  return { ...RECV, seq: ourSeq(from), ack: peerSeq(0), flags, window: 65535, payload: data.subarray(from, to), ...over };
}

/** The peer's pure ACK of our byte offset `n` (its sequence number at its first data byte). */
export function peerAck(n: number, window = 65535, over: Partial<Seg> = {}): Seg {
  return { ...SEND, seq: peerSeq(0), ack: ourSeq(n), window, ...over };
}

/** A timestamps option value (RFC 7323 §3.2). */
export function tsOpt(tsVal: number, tsEcr: number): TcpOptions {
  return { timestamp: { tsVal, tsEcr } };
}

export interface OpenOptions {
  /** Our timestamp clock offset (RFC 7323 §5.4); 0 by default. */
  tsOffset?: number;
  /** Window field of the peer's SYN (never scaled); 65535 by default. */
  synWindow?: number;
  /** When the peer's SYN arrives and our SYN-ACK goes out (ms); 0 by default. */
  synAt?: number;
  /** When the peer's ACK of our SYN-ACK arrives (ms); `synAt` by default. */
  ackAt?: number;
  /** Fields of the peer's third segment (ACK of our SYN-ACK): window, options. */
  third?: Partial<Seg>;
}

/**
 * ESTABLISHED after a passive open, like `established`, with explicit times, our timestamp
 * offset, the peer's SYN window and the peer's completing ACK (e.g. with its timestamp or a
 * scaled window). Events are cleared and nothing is pending.
 */
export function openPassive(cfg: Partial<TcpConfig> = {}, synOptions: TcpOptions = { mss: 1460 }, o: OpenOptions = {}): TcpConnection {
  const t0 = o.synAt ?? 0;
  const t1 = o.ackAt ?? t0;
  const syn: Seg = { ...SEND, seq: REMOTE_SEQ, flags: SYN, options: synOptions, window: o.synWindow ?? 65535 };
  const c = TcpConnection.fromSyn(testConfig(cfg), syn, LOCAL_SEQ, t0, o.tsOffset ?? 0);
  c.accept(t0);
  drain(c, t0);
  send(c, t1, { ...SEND, seq: s(REMOTE_SEQ, 1), ack: s(LOCAL_SEQ, 1), ...o.third });
  drain(c, t1);
  c.takeEvents();
  return c;
}
