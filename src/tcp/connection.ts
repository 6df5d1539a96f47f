/**
 * TcpConnection: one TCP connection as a sans-I/O state machine (a TCB, RFC 9293 §3.3.1):
 * opening (active open §3.10.1, passive open from a SYN §3.10.7.2), the application side (SEND
 * §3.10.2, RECEIVE §3.10.3 with window updates §3.8.6.2.2, CLOSE §3.10.4, ABORT §3.10.5) and
 * the reply to a segment for no connection (§3.10.7.1).
 *
 * Read first: RFC 9293 §3.3-§3.10 (states, sequence space, segment arrival §3.10.7), RFC 5961
 * (blind RST/SYN/data injection), RFC 7323 (window scale, timestamps, PAWS), RFC 2018 (SACK),
 * RFC 6298 (RTO), RFC 5681 + RFC 6582 (congestion control, NewReno), RFC 6675 (SACK-based
 * loss recovery), RFC 8985 (RACK-TLP: time-based loss detection and tail loss probes, with
 * SACK; rack.ts, tlp.ts), RFC 1122 §4.2.3.6 (keep-alive).
 *
 * The engine is one class, split along RFC 9293's lines into a chain of files, each class
 * extending the one before (no file imports a later one):
 *   connection-tcb.ts      the variables (TCB) and small helpers over them
 *   connection-timers.ts   RTO, persist, keep-alive, TIME-WAIT, delayed ACK, PTO; `pollAt`
 *   connection-ack.ts      ACK processing, send-side bookkeeping, loss-recovery hooks
 *   connection-output.ts   building segments: data, retransmissions, probes, window, options
 *   connection-arrival.ts  SEGMENT ARRIVES: state checks, RST/SYN, text, FIN
 *   connection.ts          `TcpConnection`: opening, the application side, the public API
 *
 * How it is driven (DESIGN.md "Sans-I/O cores"):
 *  - `onSegment(seg, now)` — a segment for this connection arrived (already checksummed).
 *  - `output(now)` — returns the next segment to send, or undefined; call until undefined.
 *    The returned repr (and its payload) is valid until the next call.
 *  - `pollAt()` — when `output` next wants to be called (timers), or -Infinity for "now".
 *  - `takeEvents()` — bits of `TcpEvent` that happened since the last call.
 *  - Application side: `write`, `read`, `shutdownWrite`, `abort`.
 * There is no clock, timer or I/O inside; `now` is milliseconds from any fixed origin.
 *
 * Not implemented: urgent data (URG is ignored, its bytes delivered inline, RFC 6093 §3
 * allows this), TCP-AO/MD5, ECN, PLPMTUD.
 */

import { TcpFlag, type TcpRepr } from "./wire.js";
import { seqAdd } from "./seq.js";
import type { TcpConfig } from "./config.js";
import { TcpState, stateName } from "./state.js";
import { EMPTY, type TcpPorts } from "./connection-tcb.js";
import { TcpSegmentArrival } from "./connection-arrival.js";

export type { TcpPorts } from "./connection-tcb.js";

/** A snapshot of the connection's variables, for tests, logs and the control API. */
export interface TcpSnapshot {
  state: string;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd: number;
  rcvNxt: number;
  rcvWnd: number;
  cwnd: number;
  ssthresh: number;
  rto: number;
  srtt: number | undefined;
  inRecovery: boolean;
  sendQueued: number;
  recvQueued: number;
  reassemblyBytes: number;
  retransmits: number;
}

/** One TCP connection: create it with `connect` or `fromSyn` (see the file's opening comment). */
export class TcpConnection extends TcpSegmentArrival {
  private constructor(cfg: Partial<TcpConfig> | TcpConfig, ports: TcpPorts, iss: number, tsOffset: number) {
    super(cfg, ports, iss, tsOffset);
  }

  // ---- opening (RFC 9293 §3.10.1, §3.10.7.2) ----

  /**
   * Active open (RFC 9293 §3.10.1): a connection in SYN-SENT whose SYN goes out on the next
   * `output`. `iss` should come from an RFC 6528 generator (`isn.ts`).
   */
  static connect(cfg: Partial<TcpConfig>, ports: TcpPorts, iss: number, now: number, tsOffset = 0): TcpConnection {
    const c = new TcpConnection(cfg, ports, iss, tsOffset);
    c.state = TcpState.SynSent;
    c.synPending = true;
    c.dirty = true;
    c.lastRecvAt = now;
    return c;
  }

  /**
   * Passive open from a guest's SYN (RFC 9293 §3.10.7.2, LISTEN state "third, check for a
   * SYN"): the connection is created in SYN-RECEIVED but *held*: nothing is sent until the
   * owner calls `accept` (SYN-ACK goes out) or `refuse` (RST). Retransmissions of the same
   * SYN while held are absorbed. This is how skiff dials the host before answering.
   */
  static fromSyn(cfg: Partial<TcpConfig>, syn: TcpRepr, iss: number, now: number, tsOffset = 0): TcpConnection {
    const c = new TcpConnection(cfg, { localPort: syn.dstPort, remotePort: syn.srcPort }, iss, tsOffset);
    c.state = TcpState.SynReceived;
    c.held = true;
    c.irs = syn.seq >>> 0;
    c.rcvNxt = seqAdd(c.irs, 1);
    c.rcvAdvEdge = c.rcvNxt;
    c.lastAckSent = c.rcvNxt;
    c.negotiate(syn.options, true);
    // RFC 7323 §2.2: the window in a SYN is never scaled.
    c.sndWnd = syn.window;
    c.maxSndWnd = syn.window;
    c.sndWl1 = c.irs;
    c.sndWl2 = c.iss;
    if (c.tsOn && syn.options.timestamp) {
      c.tsRecent = syn.options.timestamp.tsVal >>> 0;
      c.tsRecentAge = now;
    }
    c.lastRecvAt = now;
    return c;
  }

  /** Answer the held SYN with SYN-ACK (RFC 9293 §3.10.7.2). */
  accept(now: number): void {
    if (!this.held || this.state !== TcpState.SynReceived) return;
    this.held = false;
    this.synPending = true;
    this.dirty = true;
    this.lastRecvAt = now;
  }

  /**
   * Refuse the held SYN: returns the RST to send (RFC 9293 §3.10.7.1: `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`)
   * and closes the connection.
   */
  refuse(): TcpRepr {
    const rst = this.resetFor(0, this.rcvNxt, true);
    this.toClosed(undefined);
    return rst;
  }

  /** True while a passive connection waits for `accept`/`refuse`. */
  get isHeld(): boolean {
    return this.held;
  }

  // ---- the application side (RFC 9293 §3.10.2-§3.10.5) ----

  /**
   * Queue data to send. Returns the number of bytes accepted (0 when the send buffer is full
   * or the sending side is closed); a `Writable` event follows when space frees up. With
   * `owned` the caller hands the buffer over (it is kept without copying and never written to
   * again by either side).
   */
  write(data: Uint8Array, owned = false): number {
    const room = this.writable;
    const n = Math.min(room, data.length);
    if (n < data.length) this.writeBlocked = true;
    if (n === 0) return 0;
    const piece = n === data.length ? data : data.subarray(0, n);
    if (owned) this.sendQ.pushOwned(piece);
    else this.sendQ.push(piece);
    this.sndEnd = seqAdd(this.sndEnd, n);
    this.dirty = true;
    return n;
  }

  /** Payload bytes per segment toward the peer (the MSS it announced, ours, minus timestamps). */
  get sendMss(): number {
    return this.sndMss;
  }

  /**
   * Segmentation offload: let new data go out as one segment of up to `maxPayload` bytes that
   * the link cuts into `sendMss`-byte segments (TSO; the peer sees ordinary MSS-sized
   * segments). Only first transmissions outside loss recovery use it; retransmissions stay
   * one MSS. 0 turns it off.
   */
  setSegmentationOffload(maxPayload: number): void {
    this.superSegment = maxPayload > 0 ? maxPayload : 0;
  }

  /** Bytes waiting to be read. */
  get readable(): number {
    return this.recvQ.length;
  }

  /** Bytes written but not yet acknowledged by the peer. */
  get unacknowledged(): number {
    return this.sendQ.length;
  }

  /** Remove and return up to `max` received bytes (an owned copy). Reading opens the window. */
  read(max = Infinity): Uint8Array {
    if (this.recvQ.length === 0) return EMPTY;
    const data = this.recvQ.read(max);
    this.windowOpened();
    return data;
  }

  /** Like `read`, but only what is readable without copying (see RecvQueue.readHead). */
  readHead(max = Infinity): Uint8Array {
    if (this.recvQ.length === 0) return EMPTY;
    const data = this.recvQ.readHead(max);
    this.windowOpened();
    return data;
  }

  /** The next bytes readable without copying, left in place (see RecvQueue.peekHead); `consume` them after use. */
  peekHead(max = Infinity): Uint8Array {
    return this.recvQ.peekHead(max);
  }

  /** Remove `n` bytes after `peekHead` (their memory may be reused at once). */
  consume(n: number): void {
    // Clamped: an abort while the caller wrote the bytes out has emptied the queue.
    n = Math.min(n, this.recvQ.length);
    if (n <= 0) return;
    this.recvQ.consume(n);
    this.windowOpened();
  }

  /** Like `read`, into the caller's buffer; returns the byte count. */
  readInto(dst: Uint8Array): number {
    const n = this.recvQ.readInto(dst);
    if (n > 0) this.windowOpened();
    return n;
  }

  /** True once the peer's FIN has been received and every byte before it read. */
  get peerFinished(): boolean {
    return this.peerFinDone && this.recvQ.length === 0;
  }

  /**
   * Close the sending side (RFC 9293 §3.10.4 CLOSE): FIN follows the queued data. Reading
   * continues until the peer closes too.
   */
  shutdownWrite(): void {
    if (this.finQueued) return;
    switch (this.state) {
      case TcpState.SynSent:
        // RFC 9293 §3.10.4 deletes the TCB here, losing queued data; like SYN-RECEIVED we
        // instead queue the FIN behind the data (use `abort` to give up the connection).
        this.finQueued = true;
        break;
      case TcpState.SynReceived:
        // RFC 9293 §3.10.4: "queue for processing after entering ESTABLISHED state".
        this.finQueued = true;
        break;
      case TcpState.Established:
        this.finQueued = true;
        this.state = TcpState.FinWait1;
        break;
      case TcpState.CloseWait:
        this.finQueued = true;
        this.state = TcpState.LastAck;
        break;
      default:
        return;
    }
    this.finSeq = this.sndEnd;
    this.dirty = true;
  }

  /** Abort (RFC 9293 §3.10.5): send RST if synchronized, drop everything, go to CLOSED. */
  abort(): void {
    if (this.state === TcpState.Closed) return;
    const synchronized = this.state !== TcpState.SynSent && !(this.state === TcpState.SynReceived && this.held);
    // RFC 9293 §3.10.5: in CLOSING, LAST-ACK and TIME-WAIT, ABORT just deletes the TCB.
    const s = this.state;
    if (synchronized && s !== TcpState.TimeWait && s !== TcpState.LastAck && s !== TcpState.Closing) this.rstPending = true;
    this.toClosed("aborted", false);
    this.dirty = true;
  }

  /** The `TcpEvent` bits raised since the last call, cleared. */
  takeEvents(): number {
    const e = this.events;
    this.events = 0;
    return e;
  }

  /** The state's name as RFC 9293 §3.3.2 spells it. */
  get stateName(): string {
    return stateName(this.state);
  }

  /** The connection's variables now (see `TcpSnapshot`). */
  snapshot(): TcpSnapshot {
    return {
      state: this.stateName,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      sndMax: this.sndMax,
      sndWnd: this.sndWnd,
      rcvNxt: this.rcvNxt,
      rcvWnd: this.rcvWindow(),
      cwnd: this.cc.cwnd,
      ssthresh: this.cc.ssthresh,
      rto: this.rtoTimeout(),
      srtt: this.rtt.srtt,
      inRecovery: this.inRecovery,
      sendQueued: this.sendQ.length,
      recvQueued: this.recvQ.length,
      reassemblyBytes: this.ooo.bytes,
      retransmits: this.retransmits,
    };
  }

  /** After the application reads: send a window update if the window grew enough. */
  private windowOpened(): void {
    const current = this.rcvWindow();
    // Still within the SYN-ACK's small offer, and at least half of it left (the peer's sender
    // SWS avoidance lets it send): our next segment, the reply or the ACK of more data, carries
    // the whole window; an update of its own would cost every short connection a frame.
    if (this.synWindowOnly && current >= Math.min(this.cfg.recvBufferSize, 0xffff) / 2) return;
    const free = Math.max(0, this.cfg.recvBufferSize - this.recvQ.length);
    if (free - current >= Math.min(this.cfg.recvBufferSize / 2, this.cfg.mss) || (current === 0 && free > 0 && free >= this.cfg.mss)) {
      this.ackNow = true;
      this.dirty = true;
    }
  }

  /** A reset to send in answer to an unacceptable segment, if one was produced (RFC 9293 §3.10.7.3/§3.10.7.4). */
  takeReset(): TcpRepr | undefined {
    const r = this.extraRst;
    this.extraRst = undefined;
    return r;
  }
}

/**
 * RFC 9293 §3.10.7.1: the reply to a segment that reaches no connection (CLOSED): for a RST
 * nothing; otherwise `<SEQ=SEG.ACK><CTL=RST>` if it carried ACK, else
 * `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
 */
export function resetForUnknown(seg: TcpRepr): TcpRepr | undefined {
  if (seg.flags & TcpFlag.RST) return undefined;
  const base = {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    window: 0,
    urgentPointer: 0,
    options: {},
    payload: EMPTY,
  };
  if (seg.flags & TcpFlag.ACK) return { ...base, seq: seg.ack >>> 0, ack: 0, flags: TcpFlag.RST };
  const len = seg.payload.length + (seg.flags & TcpFlag.SYN ? 1 : 0) + (seg.flags & TcpFlag.FIN ? 1 : 0);
  return { ...base, seq: 0, ack: seqAdd(seg.seq >>> 0, len), flags: TcpFlag.RST | TcpFlag.ACK };
}
