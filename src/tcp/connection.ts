/**
 * TcpConnection: one TCP connection as a sans-I/O state machine (a TCB, RFC 9293 §3.3.1).
 *
 * Read first: RFC 9293 §3.3-§3.10 (states, sequence space, segment arrival §3.10.7), RFC 5961
 * (blind RST/SYN/data injection), RFC 7323 (window scale, timestamps, PAWS), RFC 2018 (SACK),
 * RFC 6298 (RTO), RFC 5681 + RFC 6582 (congestion control, NewReno), RFC 6675 (SACK-based
 * loss recovery), RFC 8985 (RACK-TLP: time-based loss detection and tail loss probes, with
 * SACK; rack.ts, tlp.ts), RFC 1122 §4.2.3.6 (keep-alive).
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

import { TcpFlag, type TcpOptions, type TcpRepr } from "./wire.js";
import { seqAdd, seqSub, seqLt, seqLe, seqGt, seqGe, seqMax, seqInRange } from "./seq.js";
import { RttEstimator } from "./rto.js";
import { ReassemblyQueue } from "./reassembly.js";
import { SendQueue } from "./send-queue.js";
import { RecvQueue } from "./recv-queue.js";
import { SackScoreboard } from "./sack-scoreboard.js";
import { Rack } from "./rack.js";
import { TlpEpisode, probeTimeout } from "./tlp.js";
import { Prr } from "./prr.js";
import type { CongestionControl } from "./congestion.js";
import { type TcpConfig, tcpConfig, windowScaleFor } from "./config.js";
import { TcpState, TcpEvent, stateName, type TcpError } from "./state.js";

const EMPTY = new Uint8Array(0);
/** RFC 9293 §3.7.1: without the option, assume 536. */
const DEFAULT_PEER_MSS = 536;
/** RFC 7323 §5.5: PAWS does not apply to a TS.Recent older than 24 days. */
const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;
/** Bytes a timestamps option takes with its NOP padding. */
const TS_OPTION_LEN = 12;

export interface TcpPorts {
  localPort: number;
  remotePort: number;
}

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

export class TcpConnection {
  readonly cfg: TcpConfig;
  state: TcpState = TcpState.Closed;
  /** Why the connection failed, once it has. */
  error: TcpError | undefined;
  readonly localPort: number;
  readonly remotePort: number;

  // ---- send sequence space (RFC 9293 §3.3.1) ----
  readonly iss: number;
  sndUna: number;
  /** Next sequence number to send (rewound to sndUna by a retransmission timeout). */
  sndNxt: number;
  /** Highest sequence number sent + 1. */
  sndMax: number;
  sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  /** Largest window the peer has offered (RFC 5961 §5.2 MAX.SND.WND). */
  private maxSndWnd = 0;
  /** Peer's window scale shift, applied to windows it advertises. */
  private sndScale = 0;
  /** Segment payload size toward the peer (its MSS, our MSS, minus timestamps). */
  private sndMss: number;
  /** Most payload of one new-data super-segment the link cuts into sndMss pieces (0: no offload). */
  private superSegment = 0;

  // ---- receive sequence space ----
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window last advertised: never moved left (RFC 9293 §3.8.6.2.2). */
  private rcvAdvEdge = 0;
  /** Our window scale shift (0 until negotiated). */
  private rcvScale = 0;
  /** Shift we offer in our SYN. */
  private readonly rcvScaleOffer: number;
  /** The peer's SYN carried a window scale option (RFC 7323 §2.2: only then may a SYN-ACK carry ours). */
  private peerOfferedWs = false;

  // ---- options negotiated ----
  private tsOn = false;
  private sackOn = false;
  private tsRecent = 0;
  /** When TS.Recent was recorded (-Infinity: never; `now` may legitimately be 0). */
  private tsRecentAge = -Infinity;
  private lastAckSent = 0;
  /** Random per-connection offset of our timestamp clock (RFC 7323 §5.4). */
  private readonly tsOffset: number;

  // ---- data ----
  private readonly sendQ = new SendQueue();
  private readonly recvQ = new RecvQueue();
  private readonly ooo: ReassemblyQueue;
  private readonly scoreboard = new SackScoreboard();
  /** Application asked to close its sending side; FIN goes after queued data. */
  private finQueued = false;
  /** Sequence number our FIN occupies (fixed when the application closes its side). */
  private finSeq: number | undefined;
  /** Sequence number after the last byte the application has written. */
  private sndEnd: number;
  /** Peer's FIN seen ahead of missing data: its sequence number. */
  private peerFinSeq: number | undefined;
  private peerFinDone = false;

  // ---- retransmission and congestion ----
  private readonly rtt: RttEstimator;
  readonly cc: CongestionControl;
  private retransmits = 0;
  /** Non-timestamp RTT sample in flight (Karn): the sequence number that ends it and when. */
  private rttSeq: number | undefined;
  private rttTime = 0;
  private dupAcks = 0;
  private inRecovery = false;
  /** RFC 6582 "recover" / RFC 6675 RecoveryPoint: initialised to ISS. */
  private recoveryPoint: number;
  /** RFC 6675 HighRxt: highest sequence retransmitted in this recovery. */
  private highRxt = 0;
  /** A fast retransmission of the segment at sndUna is due (NewReno). */
  private rtxPending = false;
  /** RFC 8985 loss detection (with SACK and `cfg.rack`): the segments in flight and RACK's state. */
  private readonly rack = new Rack();
  private readonly tlp = new TlpEpisode();
  /** RFC 6937 rate reduction in RACK's recoveries (`cfg.prr`). */
  private readonly prr = new Prr();
  /** RACK entered recovery: the first lost segment goes out whatever the pipe (RFC 6675 §5 step 4.3). */
  private rackForceRtx = false;
  /** The PTO fired: a tail loss probe is due (RFC 8985 §7.3). */
  private tlpPending = false;

  // ---- timers (ms; Infinity = not running) ----
  private rtoAt = Infinity;
  /** RACK reordering timer (RFC 8985 §6.2 step 5) and probe timeout (§7.2). */
  private rackAt = Infinity;
  private ptoAt = Infinity;
  private persistAt = Infinity;
  private persistBackoff = 0;
  /** Zero-window probes sent since the peer last answered (RFC 9293 §3.8.6.1 MUST-36: keep probing while it answers). */
  private probesUnanswered = 0;
  /** The override timer (RFC 1122 §4.2.3.4) fired: send a sub-MSS segment the window allows. */
  private overridePending = false;
  /** RFC 6298 (5.7): the SYN (or SYN-ACK) timed out, so data starts with a 3 s RTO until a sample. */
  private synTimedOut = false;
  private delayedAckAt = Infinity;
  private timeWaitAt = Infinity;
  private finWait2At = Infinity;
  private keepaliveAt = Infinity;
  private keepaliveProbes = 0;
  private lastRecvAt = 0;

  // ---- output state ----
  /** A segment must go out now (ACK, window update, SYN, probe). */
  private ackNow = false;
  /** Full-sized segments received since our last ACK (RFC 5681 §4.2: ACK every second one). */
  private unackedSegments = 0;
  private synPending = false;
  private rstPending = false;
  private probePending = false;
  private keepalivePending = false;
  /** Something changed that may let `output` send: `pollAt` answers "now". */
  private dirty = false;
  /** A passive connection waits for `accept` or `refuse` before answering the SYN. */
  private held = false;
  private events = 0;
  private challengeWindowStart = -Infinity;
  private challengeCount = 0;
  private writeBlocked = false;
  private readonly out: TcpRepr;

  /** Counted oddities (not errors): for stats and tests. */
  readonly counters = {
    segmentsIn: 0,
    segmentsOut: 0,
    retransmittedSegments: 0,
    timeouts: 0,
    fastRetransmits: 0,
    /** Loss recoveries entered because RACK marked a segment lost (RFC 8985 §6). */
    rackRecoveries: 0,
    /** Tail loss probes sent (RFC 8985 §7.3). */
    lossProbes: 0,
    challengeAcks: 0,
    pawsDrops: 0,
    outOfWindow: 0,
    duplicateBytes: 0,
  };

  private constructor(cfg: Partial<TcpConfig> | TcpConfig, ports: TcpPorts, iss: number, tsOffset: number) {
    this.cfg = tcpConfig(cfg);
    this.localPort = ports.localPort;
    this.remotePort = ports.remotePort;
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.sndEnd = seqAdd(this.iss, 1);
    this.recoveryPoint = this.iss;
    this.tsOffset = tsOffset >>> 0;
    this.rcvScaleOffer = this.cfg.windowScaling ? windowScaleFor(this.cfg.recvBufferSize) : 0;
    this.sndMss = Math.min(this.cfg.mss, DEFAULT_PEER_MSS);
    this.ooo = new ReassemblyQueue(this.cfg.maxReassemblyBytes, this.cfg.maxReassemblySegments);
    this.rtt = new RttEstimator({ initialRto: this.cfg.initialRtoMs, minRto: this.cfg.minRtoMs, maxRto: this.cfg.maxRtoMs });
    this.cc = this.cfg.congestionControl(this.sndMss);
    this.out = {
      srcPort: ports.localPort,
      dstPort: ports.remotePort,
      seq: 0,
      ack: 0,
      flags: 0,
      window: 0,
      urgentPointer: 0,
      options: {},
      payload: EMPTY,
    };
  }

  // =====================================================================================
  // Opening
  // =====================================================================================

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

  /** Apply the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2/§3.2, RFC 2018 §2). */
  private negotiate(o: TcpOptions, weOffer: boolean): void {
    const peerMss = o.mss ?? DEFAULT_PEER_MSS;
    this.tsOn = weOffer && this.cfg.timestamps && o.timestamp !== undefined;
    this.sackOn = weOffer && this.cfg.sack && o.sackPermitted === true;
    this.peerOfferedWs = o.windowScale !== undefined;
    if (this.cfg.windowScaling && o.windowScale !== undefined) {
      // RFC 7323 §2.3: a shift above 14 is treated as 14.
      this.sndScale = Math.min(o.windowScale, 14);
      this.rcvScale = this.rcvScaleOffer;
    } else {
      this.sndScale = 0;
      this.rcvScale = 0;
    }
    const mss = Math.max(64, Math.min(peerMss, this.cfg.mss)) - (this.tsOn ? TS_OPTION_LEN : 0);
    this.sndMss = mss;
    this.cc.cwnd = Math.min(this.cfg.initialCwndSegments * mss, Math.max(2 * mss, 14600));
    if (this.cfg.initialCwndSegments * mss <= 14600) this.cc.cwnd = this.cfg.initialCwndSegments * mss;
  }

  // =====================================================================================
  // Application side
  // =====================================================================================

  /** Bytes `write` would accept now. */
  get writable(): number {
    if (!this.canSend()) return 0;
    return Math.max(0, this.cfg.sendBufferSize - this.sendQ.length);
  }

  private canSend(): boolean {
    if (this.finQueued) return false;
    const s = this.state;
    return s === TcpState.SynSent || s === TcpState.SynReceived || s === TcpState.Established || s === TcpState.CloseWait;
  }

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

  takeEvents(): number {
    const e = this.events;
    this.events = 0;
    return e;
  }

  get stateName(): string {
    return stateName(this.state);
  }

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

  // =====================================================================================
  // Segment arrival (RFC 9293 §3.10.7)
  // =====================================================================================

  /** Process one arriving segment. The repr and its payload are borrowed for the call. */
  onSegment(seg: TcpRepr, now: number): void {
    this.counters.segmentsIn++;
    this.dirty = true;
    switch (this.state) {
      case TcpState.Closed:
        // §3.10.7.1: answered by the owner (no TCB); nothing to do here.
        return;
      case TcpState.SynSent:
        this.onSegmentSynSent(seg, now);
        return;
      default:
        if (this.held) {
          this.onSegmentHeld(seg);
          return;
        }
        this.onSegmentSynchronized(seg, now);
    }
  }

  /** While the SYN is held: a retransmitted SYN is absorbed; RST aborts; the rest waits. */
  private onSegmentHeld(seg: TcpRepr): void {
    if (seg.flags & TcpFlag.RST && seg.seq >>> 0 === this.rcvNxt) this.toClosed("reset");
  }

  /** RFC 9293 §3.10.7.3, SYN-SENT. */
  private onSegmentSynSent(seg: TcpRepr, now: number): void {
    const f = seg.flags;
    const ack = seg.ack >>> 0;
    let ackOk = false;
    if (f & TcpFlag.ACK) {
      // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset ... and discard the segment."
      if (seqLe(ack, this.iss) || seqGt(ack, this.sndMax)) {
        if (!(f & TcpFlag.RST)) this.sendReset(ack, 0, false);
        return;
      }
      ackOk = seqGt(ack, this.sndUna);
    }
    if (f & TcpFlag.RST) {
      // RFC 5961 §3.2 / RFC 9293: only an RST that acknowledges our SYN is believed.
      if (ackOk) this.toClosed("refused");
      return;
    }
    if (!(f & TcpFlag.SYN)) return;
    this.irs = seg.seq >>> 0;
    this.rcvNxt = seqAdd(this.irs, 1);
    this.rcvAdvEdge = this.rcvNxt;
    this.lastAckSent = this.rcvNxt;
    this.negotiate(seg.options, true);
    if (this.tsOn && seg.options.timestamp) {
      this.tsRecent = seg.options.timestamp.tsVal >>> 0;
      this.tsRecentAge = now;
    }
    this.lastRecvAt = now;
    if (ackOk) {
      this.sndUna = ack;
      if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
      this.rttAck(seg, now);
      this.rtoAt = Infinity;
      this.retransmits = 0;
      this.synPending = false;
      // RFC 7323 §2.2: the SYN's window is not scaled.
      this.sndWnd = seg.window;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = this.irs;
      this.sndWl2 = ack;
      this.state = this.finQueued ? TcpState.FinWait1 : TcpState.Established;
      this.events |= TcpEvent.Established | (this.sendQ.length < this.cfg.sendBufferSize ? TcpEvent.Writable : 0);
      this.ackNow = true;
      this.armKeepalive(now);
      if (seg.payload.length > 0 || f & TcpFlag.FIN) this.processText(seg, seqAdd(this.irs, 1), now);
    } else {
      // Simultaneous open (§3.10.7.3 "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment").
      this.state = TcpState.SynReceived;
      this.sndWnd = seg.window;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = this.irs;
      this.sndWl2 = this.sndUna;
      this.synPending = true;
      this.sndNxt = this.iss;
    }
  }

  /** RFC 9293 §3.10.7.4, the synchronized states (and SYN-RECEIVED after accept). */
  private onSegmentSynchronized(seg: TcpRepr, now: number): void {
    const f = seg.flags;
    let seq = seg.seq >>> 0;
    let payload = seg.payload;
    let fin = (f & TcpFlag.FIN) !== 0;
    const syn = (f & TcpFlag.SYN) !== 0;
    const segLen = payload.length + (syn ? 1 : 0) + (fin ? 1 : 0);
    const ts = this.tsOn ? seg.options.timestamp : undefined;

    // RFC 7323 §5.3 R1: PAWS — a segment with an older timestamp is a duplicate.
    if (ts !== undefined && !(f & TcpFlag.RST) && now - this.tsRecentAge < PAWS_IDLE_MS) {
      if (seqLt(ts.tsVal >>> 0, this.tsRecent)) {
        this.counters.pawsDrops++;
        this.ackNow = true;
        return;
      }
    }

    // "first, check sequence number": the four acceptability cases.
    const wnd = this.rcvWindow();
    const rn = this.rcvNxt;
    let acceptable: boolean;
    if (segLen === 0) {
      acceptable = wnd === 0 ? seq === rn : seqInRange(seq, rn, seqAdd(rn, wnd));
    } else if (wnd === 0) {
      acceptable = false;
    } else {
      acceptable = seqInRange(seq, rn, seqAdd(rn, wnd)) || seqInRange(seqAdd(seq, segLen - 1), rn, seqAdd(rn, wnd));
    }
    if (syn && this.state === TcpState.SynReceived && seq === this.irs) {
      const ack = seg.ack >>> 0;
      if (!(f & TcpFlag.ACK) || !(seqGt(ack, this.sndUna) && seqLe(ack, this.sndMax))) {
        // A retransmitted SYN in SYN-RECEIVED: answer with the SYN-ACK again.
        this.synPending = true;
        return;
      }
      // Simultaneous open (RFC 9293 §3.5, figure 7 line 6): the peer's SYN,ACK acknowledges our
      // SYN. Its SYN was already counted: process it as an ACK, then acknowledge.
      this.ackNow = true;
      this.onSegmentSynchronized({ ...seg, seq: seqAdd(seq, 1), flags: f & ~TcpFlag.SYN }, now);
      return;
    }
    if (!acceptable) {
      // "special allowance should be made to accept valid ACKs, URGs, and RSTs" when RCV.WND is 0.
      if (wnd === 0 && seq === rn && !syn) {
        // Process the ACK, drop the data (a zero-window probe), and say so with an ACK (§3.10.7.4).
        if (payload.length > 0 || fin) this.ackNow = true;
        payload = EMPTY;
        fin = false;
      } else {
        this.counters.outOfWindow++;
        if (segLen > 0 && seqLt(seq, rn)) this.counters.duplicateBytes += payload.length;
        if (!(f & TcpFlag.RST)) this.ackNow = true;
        // RFC 9293 §3.10.7.4 TIME-WAIT: a retransmission of the peer's FIN restarts the 2 MSL timeout.
        if (this.state === TcpState.TimeWait && fin && seqAdd(seq, segLen) === rn) this.timeWaitAt = now + this.cfg.timeWaitMs;
        return;
      }
    }

    // "second, check the RST bit" (RFC 5961 §3.2).
    if (f & TcpFlag.RST) {
      if (seq === rn) this.toClosed(this.state === TcpState.SynReceived ? "refused" : "reset");
      else this.challengeAck(now);
      return;
    }

    // "fourth, check the SYN bit" (RFC 5961 §4.2): a SYN in a synchronized state gets a challenge ACK.
    if (syn) {
      this.challengeAck(now);
      return;
    }

    // Trim to the window: bytes before RCV.NXT (duplicates) and beyond the right edge.
    if (seqLt(seq, rn)) {
      const dup = seqSub(rn, seq);
      this.counters.duplicateBytes += Math.min(dup, payload.length);
      payload = dup >= payload.length ? EMPTY : payload.subarray(dup);
      seq = rn;
    }
    const room = seqSub(seqAdd(rn, wnd), seq);
    if (payload.length > room) {
      payload = payload.subarray(0, Math.max(0, room));
      fin = false;
    }

    // "fifth, check the ACK field".
    if (!(f & TcpFlag.ACK)) return;
    if (!this.processAck(seg, now)) return;
    if (this.state === TcpState.Closed) return;

    // RFC 7323 §4.3 (2): update TS.Recent when the segment covers Last.ACK.sent.
    if (ts !== undefined && seqLe(seq, this.lastAckSent) && !seqLt(ts.tsVal >>> 0, this.tsRecent)) {
      this.tsRecent = ts.tsVal >>> 0;
      this.tsRecentAge = now;
    }
    this.lastRecvAt = now;
    this.keepaliveProbes = 0;
    if (this.cfg.keepalive) this.armKeepalive(now);

    // "seventh, process the segment text" and "eighth, check the FIN bit".
    if (payload.length > 0 || fin) {
      this.processText({ ...seg, payload, flags: fin ? f : f & ~TcpFlag.FIN }, seq, now);
    }
  }

  /**
   * RFC 9293 §3.10.7.4 "fifth, check the ACK field", with RFC 5961 §5.2 ACK validation,
   * congestion control and loss recovery. Returns false when the segment must be dropped.
   */
  private processAck(seg: TcpRepr, now: number): boolean {
    const ack = seg.ack >>> 0;
    if (this.state === TcpState.SynReceived) {
      // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state ..."
      if (seqGt(ack, this.sndUna) && seqLe(ack, this.sndMax)) {
        this.state = this.finQueued ? TcpState.FinWait1 : TcpState.Established;
        this.synPending = false;
        this.sndWnd = seg.window << this.sndScale;
        this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
        this.sndWl1 = seg.seq >>> 0;
        this.sndWl2 = ack;
        this.events |= TcpEvent.Established | TcpEvent.Writable;
        this.armKeepalive(now);
      } else {
        // "If the segment acknowledgment is not acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST>."
        this.sendReset(ack, 0, false);
        return false;
      }
    }
    // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
    if (seqGt(ack, this.sndMax)) {
      this.ackNow = true;
      return false;
    }
    if (seqLt(ack, seqSub0(this.sndUna, Math.max(this.maxSndWnd, 1)))) {
      this.challengeAck(now);
      return false;
    }

    this.probesUnanswered = 0;
    // SACK information (RFC 2018 §3, RFC 6675 §5 "update the scoreboard").
    let newlySacked = 0;
    if (this.sackOn && seg.options.sack && seg.options.sack.length > 0) {
      newlySacked = this.scoreboard.update(seqGt(ack, this.sndUna) ? ack : this.sndUna, this.sndMax, seg.options.sack);
    }
    // RFC 6937 DeliveredData: the change in SND.UNA plus the change in SACKed bytes.
    const una0 = this.sndUna;
    const sacked0 = this.rack.sackedBytes;
    if (this.rackOn) this.rackOnAck(seg, ack, now);

    const window = seg.window << this.sndScale;
    if (seqGt(ack, this.sndUna)) {
      this.ackAdvanced(seg, ack, now);
    } else if (ack === this.sndUna) {
      // RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT": outstanding data, no data or SYN/FIN in the
      // segment, same window (or, with SACK, new SACK information, RFC 6675 §2).
      const outstanding = this.sndMax !== this.sndUna;
      const pure = seg.payload.length === 0 && !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN));
      if (outstanding && pure && (window === this.sndWnd || newlySacked > 0)) this.duplicateAck(now);
    }

    // Window update (§3.10.7.4 ESTABLISHED, "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated").
    const seq = seg.seq >>> 0;
    if (seqLt(this.sndWl1, seq) || (this.sndWl1 === seq && seqLe(this.sndWl2, ack))) {
      const wasZero = this.sndWnd === 0;
      this.sndWnd = window;
      this.sndWl1 = seq;
      this.sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      if (wasZero && window > 0) {
        this.persistAt = Infinity;
        this.persistBackoff = 0;
      }
    }
    if (this.probePending && this.sndWnd > 0) this.probePending = false;
    if (this.rackOn) this.rackAfterAck(now, seqSub(this.sndUna, una0) + this.rack.sackedBytes - sacked0);
    return true;
  }

  // ---- RACK-TLP (RFC 8985), with SACK ----

  private get rackOn(): boolean {
    return this.sackOn && this.cfg.rack;
  }

  /** RFC 8985 §6.2 steps 1-3: what this ACK delivered (cumulatively or by SACK). */
  private rackOnAck(seg: TcpRepr, ack: number, now: number): void {
    const sack = seg.options.sack;
    const ts = this.tsOn ? seg.options.timestamp : undefined;
    if (this.rack.onAck(seqGt(ack, this.sndUna) ? ack : this.sndUna, this.sndMax, sack, now, ts?.tsEcr, this.tsOffset) > 0) this.tlp.noteDelivery();
    // RFC 2883 §4: a first block at or below the cumulative ACK, or inside the second, is a D-SACK.
    if (sack && sack.length > 0 && (seqLe(sack[0][1], ack) || (sack.length > 1 && seqGe(sack[0][0], sack[1][0]) && seqLe(sack[0][1], sack[1][1])))) this.tlp.noteDsack();
  }

  /**
   * After an ACK that delivered `delivered` bytes: end a probe episode (RFC 8985 §7.4), detect
   * losses (§6.2 step 5), set cwnd by PRR in recovery (RFC 6937), re-arm the PTO (§7.2).
   */
  private rackAfterAck(now: number, delivered: number): void {
    if (this.tlp.onAck(this.sndUna, delivered > 0) && !this.inRecovery) {
      // §7.4.2: the probe repaired a loss; react once as to a loss (RFC 5681 eq. (4)).
      this.cc.onEnterRecovery(this.cc.cwnd, this.sndMss, now);
    }
    this.rackDetect(now);
    this.prrOnAck(delivered);
    this.armPto(now);
  }

  /** RFC 6937 §3 "on every ACK during recovery": cwnd = pipe + sndcnt. */
  private prrOnAck(delivered: number): void {
    if (this.inRecovery && this.cfg.prr) this.cc.cwnd = this.prr.onAck(delivered, this.pipe(), this.cc.ssthresh, this.sndMss);
  }

  /** RFC 8985 §6.2 step 5, and entering fast recovery when it finds a loss (§9, RFC 6675 §5 step 4). */
  private rackDetect(now: number): void {
    this.rackAt = Infinity;
    if (this.sndUna === this.sndMax) return;
    // SRTT caps the window; timestamp samples have 1 ms granularity, so a local peer's SRTT may
    // read 0: RACK's own (sub-millisecond) minimum stands in as its floor.
    const srtt = Math.max(this.rtt.srtt ?? this.rack.rtt, this.rack.minRtt === Infinity ? 0 : this.rack.minRtt);
    const reo = this.rack.reoWnd(this.inRecovery, this.dupAcks, this.cfg.dupThresh, srtt);
    const r = this.rack.detectLoss(now, reo);
    if (r.timeoutAt !== Infinity) this.rackAt = r.timeoutAt;
    if (r.lost === 0) return;
    this.dirty = true;
    if (this.inRecovery) return;
    this.inRecovery = true;
    this.rackForceRtx = true;
    this.counters.rackRecoveries++;
    this.rttSeq = undefined;
    // One reduction per window of data (RFC 6675 §5 step 4 "HighACK > RecoveryPoint"): not
    // again for data sent before a timeout or the previous recovery.
    const flight = seqSub(this.sndMax, this.sndUna);
    if (seqGt(this.sndUna, this.recoveryPoint)) this.cc.onEnterRecovery(flight, this.sndMss, now);
    this.recoveryPoint = this.sndMax;
    this.prr.start(flight);
  }

  /**
   * RFC 8985 §7.2: schedule a tail loss probe while data is in flight and none is outstanding.
   * Deviation: also in loss recovery and after a timeout (RFC 8985 leaves those to the RTO): a
   * lost retransmission with nothing sent after it, or a lost go-back-N resend, would otherwise
   * cost a whole RTO (200 ms or more against a sub-millisecond RTT); the probe's ACK lets RACK
   * find the loss instead (an ACK for a segment sent later).
   */
  private armPto(now: number): void {
    this.ptoAt = Infinity;
    if (!this.rackOn || !this.cfg.tlp || this.sndUna === this.sndMax) return;
    const cfg = this.cfg.tlpTiming;
    const mult = this.tlp.backoff(cfg);
    if (mult === 0) return;
    const one = seqSub(this.sndMax, this.sndUna) <= this.sndMss;
    const at = now + mult * probeTimeout(this.rtt.srtt, one, cfg);
    if (at < this.rtoAt) this.ptoAt = at;
  }

  /** RFC 8985 §7.3: the probe — one new segment if the peer's window allows, else the last segment again. */
  private sendProbe(now: number): TcpRepr | undefined {
    this.tlpPending = false;
    if (this.sndUna === this.sndMax) return undefined;
    const before = this.sndMax;
    if (this.tlp.unanswered) {
      // A second probe (tlp.ts): the segment at SND.UNA again. A receiver answers a duplicate, or
      // a segment filling a hole, at once (RFC 5681 §4.2), where new in-order data may wait for
      // its delayed ACK (the case when only our ACKs were lost).
      const again = this.retransmitAt(this.sndUna, now);
      if (again === undefined) return undefined;
      this.counters.lossProbes++;
      this.tlp.sent(before, true);
      this.rtoAt = now + this.rtoTimeout();
      this.armPto(now);
      return again;
    }
    let seg = this.unsentBytes() > 0 && seqSub(seqAdd(this.sndUna, this.sndWnd), this.sndNxt) >= Math.min(this.sndMss, this.unsentBytes()) ? this.sendData(now, true) : undefined;
    const isRetrans = seg === undefined;
    if (seg === undefined) {
      // The last segment sent (with the FIN if it carried one), or a bare FIN.
      const last = this.rack.last();
      const from = last === undefined ? this.sndUna : seqSub(last[1], last[0]) > this.sndMss ? seqAdd(last[1], -this.sndMss) : last[0];
      seg = this.retransmitAt(from, now, last?.[1]);
      if (seg === undefined) return undefined;
    }
    this.counters.lossProbes++;
    this.tlp.sent(isRetrans ? before : this.sndMax, isRetrans);
    // §7.3: after the probe, the RTO timer (and, while unanswered, another probe: see tlp.ts).
    this.rtoAt = now + this.rtoTimeout();
    this.armPto(now);
    return seg;
  }

  /** New data acknowledged: free the send buffer, sample RTT, grow cwnd or progress recovery. */
  private ackAdvanced(seg: TcpRepr, ack: number, now: number): void {
    const acked = seqSub(ack, this.sndUna);
    let dataAcked = acked;
    // The SYN and the FIN each occupy a sequence number but no byte of the send queue.
    if (this.finSeq !== undefined && seqGt(ack, this.finSeq) && seqLe(this.sndUna, this.finSeq)) dataAcked -= 1;
    if (seqLe(this.sndUna, this.iss)) dataAcked -= 1;
    if (dataAcked > 0) this.sendQ.consume(Math.min(dataAcked, this.sendQ.length));
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.scoreboard.advance(ack);
    this.rttAck(seg, now);
    this.retransmits = 0;
    this.rtt.resetBackoff();
    this.persistBackoff = 0;

    if (this.inRecovery) {
      if (seqGe(ack, this.recoveryPoint)) {
        // RFC 6582 §3.2 step 3 ("full acknowledgment"): leave recovery.
        this.inRecovery = false;
        this.dupAcks = 0;
        this.cc.onExitRecovery(seqSub(this.sndMax, this.sndUna), this.sndMss, now);
        // RFC 6937 §3: at the end of recovery, cwnd = ssthresh.
        if (this.rackOn && this.cfg.prr) this.cc.cwnd = this.cc.ssthresh;
      } else if (!this.sackOn) {
        // RFC 6582 §3.2 step 4 ("partial acknowledgment"): retransmit the next segment,
        // deflate cwnd by the amount acknowledged, add back one SMSS.
        this.rtxPending = true;
        this.cc.cwnd = Math.max(this.sndMss, this.cc.cwnd - acked + this.sndMss);
      }
    } else {
      this.dupAcks = 0;
      if (dataAcked > 0) this.cc.onAck(dataAcked, this.sndMss, now);
    }

    // RFC 6298 (5.2)/(5.3): stop the timer when everything is acknowledged, else restart it.
    this.rtoAt = this.sndUna === this.sndMax ? Infinity : now + this.rtoTimeout();

    // Our FIN acknowledged?
    if (this.finSeq !== undefined && seqGt(ack, this.finSeq)) {
      switch (this.state) {
        case TcpState.FinWait1:
          this.state = TcpState.FinWait2;
          if (this.cfg.finWait2TimeoutMs !== null) this.finWait2At = now + this.cfg.finWait2TimeoutMs;
          break;
        case TcpState.Closing:
          this.enterTimeWait(now);
          break;
        case TcpState.LastAck:
          this.toClosed(undefined);
          return;
      }
    }
    if (this.writeBlocked && this.writable > 0) {
      this.writeBlocked = false;
      this.events |= TcpEvent.Writable;
    }
  }

  /** RFC 5681 §3.2 / RFC 6675 §5: count duplicate ACKs; enter fast recovery at DupThresh. */
  private duplicateAck(now: number): void {
    this.dupAcks++;
    if (this.inRecovery) {
      // RFC 5681 §3.2 step 4 (NewReno): inflate cwnd for each further duplicate ACK.
      if (!this.sackOn) this.cc.cwnd += this.sndMss;
      return;
    }
    // With RACK (RFC 8985 §6.2 step 4 makes reo_wnd 0 at DupThresh) loss detection is RACK's alone.
    if (this.rackOn) return;
    const lost = this.sackOn && this.scoreboard.isLost(this.sndUna, this.sndMss, this.cfg.dupThresh);
    if (this.dupAcks < this.cfg.dupThresh && !lost) return;
    // RFC 6582 §3.2 step 2 (and RFC 6675 §5 step 4: "HighACK > RecoveryPoint"): only when the
    // cumulative ACK covers more than the previous recovery point, so the duplicate ACKs that
    // still arrive for data sent before a recovery or a timeout do not start another one.
    if (!seqGt(this.sndUna, this.recoveryPoint)) return;
    this.inRecovery = true;
    this.recoveryPoint = this.sndMax;
    this.highRxt = this.sndUna;
    const flight = seqSub(this.sndMax, this.sndUna);
    this.cc.onEnterRecovery(flight, this.sndMss, now);
    // RFC 5681 §3.2 step 3: cwnd = ssthresh + 3*SMSS for NewReno; RFC 6675 uses pipe instead.
    if (!this.sackOn) this.cc.cwnd = this.cc.ssthresh + 3 * this.sndMss;
    this.rtxPending = true;
    this.counters.fastRetransmits++;
    // Karn: no RTT sample from retransmitted data.
    this.rttSeq = undefined;
  }

  /** RTT measurement on an ACK that advances SND.UNA (RFC 7323 §4.1; RFC 6298 §3 Karn). */
  private rttAck(seg: TcpRepr, now: number): void {
    const ts = seg.options.timestamp;
    if (this.tsOn && ts !== undefined && ts.tsEcr !== 0) {
      const sample = this.tsNow(now) - (ts.tsEcr >>> 0);
      if (sample >= 0 && sample < 0x7fffffff) this.rtt.sample(Math.max(sample, 0));
      return;
    }
    if (this.rttSeq !== undefined && seqGe(seg.ack >>> 0, this.rttSeq)) {
      this.rtt.sample(now - this.rttTime);
      this.rttSeq = undefined;
    }
  }

  /** "seventh, process the segment text" and "eighth, check the FIN bit". */
  private processText(seg: TcpRepr, seq: number, now: number): void {
    const s = this.state;
    const receiving = s === TcpState.Established || s === TcpState.FinWait1 || s === TcpState.FinWait2;
    const payload = seg.payload;
    const fin = (seg.flags & TcpFlag.FIN) !== 0;
    if (payload.length > 0 && receiving) {
      if (seq === this.rcvNxt) {
        const hadHoles = this.ooo.bytes > 0;
        this.recvQ.push(payload);
        this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
        if (hadHoles) {
          for (const chunk of this.ooo.take(this.rcvNxt)) {
            this.recvQ.push(chunk);
            this.rcvNxt = seqAdd(this.rcvNxt, chunk.length);
          }
          // RFC 5681 §4.2: ACK at once when a segment fills (part of) a gap.
          this.ackNow = true;
        }
        this.events |= TcpEvent.Readable;
        this.scheduleAck(payload.length, now);
      } else {
        // Out of order: keep it (bounded) and send an immediate duplicate ACK with SACK (RFC 5681 §4.2).
        this.ooo.insert(seq, payload, this.rcvNxt);
        this.ackNow = true;
      }
    }
    if (fin && (receiving || s === TcpState.CloseWait || s === TcpState.Closing || s === TcpState.LastAck || s === TcpState.TimeWait)) {
      this.peerFinSeq = seqAdd(seq, payload.length);
      // RFC 5681 §4.2: an out-of-order segment (a FIN ahead of missing data too) is ACKed at once.
      if (this.peerFinSeq !== this.rcvNxt) this.ackNow = true;
    }
    this.maybeFinArrived(now);
  }

  /** The peer's FIN counts once every byte before it has arrived. */
  private maybeFinArrived(now: number): void {
    if (this.peerFinSeq === undefined || this.peerFinSeq !== this.rcvNxt) {
      if (this.peerFinSeq !== undefined && this.peerFinDone && seqLt(this.peerFinSeq, this.rcvNxt) && this.state === TcpState.TimeWait) {
        // A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2MSL timeout.
        this.ackNow = true;
        this.timeWaitAt = now + this.cfg.timeWaitMs;
      }
      return;
    }
    if (this.peerFinDone) return;
    this.peerFinDone = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.ackNow = true;
    this.events |= TcpEvent.PeerFin | TcpEvent.Readable;
    switch (this.state) {
      case TcpState.SynReceived:
      case TcpState.Established:
        this.state = TcpState.CloseWait;
        break;
      case TcpState.FinWait1:
        // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2): simultaneous close.
        this.state = TcpState.Closing;
        break;
      case TcpState.FinWait2:
        this.enterTimeWait(now);
        break;
    }
  }

  /** RFC 5681 §4.2 / RFC 9293 §3.8.6.3: delayed ACK, at least every second full-sized segment. */
  private scheduleAck(len: number, now: number): void {
    if (this.cfg.delayedAckMs <= 0) {
      this.ackNow = true;
      return;
    }
    if (len >= this.sndMssForAck()) this.unackedSegments++;
    if (this.unackedSegments >= 2) {
      this.ackNow = true;
      return;
    }
    if (this.delayedAckAt === Infinity) this.delayedAckAt = now + this.cfg.delayedAckMs;
  }

  /** Full-sized segment from the peer: our advertised MSS less the timestamp option. */
  private sndMssForAck(): number {
    return this.cfg.mss - (this.tsOn ? TS_OPTION_LEN : 0);
  }

  /** RFC 5961 §7: challenge ACKs, rate-limited per connection. */
  private challengeAck(now: number): void {
    if (now - this.challengeWindowStart >= 1000) {
      this.challengeWindowStart = now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.cfg.challengeAckLimit) return;
    this.challengeCount++;
    this.counters.challengeAcks++;
    this.ackNow = true;
  }

  private enterTimeWait(now: number): void {
    this.state = TcpState.TimeWait;
    this.timeWaitAt = now + this.cfg.timeWaitMs;
    this.rtoAt = Infinity;
    this.persistAt = Infinity;
    this.keepaliveAt = Infinity;
    this.finWait2At = Infinity;
    this.sendQ.clear();
  }

  /**
   * RFC 9293 §3.10.7.4 TIME-WAIT and RFC 6191: may a new SYN for this 4-tuple replace this
   * connection? Yes when its sequence number (or timestamp) is beyond the old connection's.
   */
  acceptsNewSyn(syn: TcpRepr): boolean {
    if (this.state !== TcpState.TimeWait) return false;
    const ts = syn.options.timestamp;
    if (this.tsOn && ts !== undefined) return seqGt(ts.tsVal >>> 0, this.tsRecent);
    return seqGt(syn.seq >>> 0, this.rcvNxt);
  }

  // =====================================================================================
  // Window management
  // =====================================================================================

  /** The receive window currently offered (from the last advertisement). */
  private rcvWindow(): number {
    const w = seqSub(this.rcvAdvEdge, this.rcvNxt);
    return w > 0 ? w : 0;
  }

  /**
   * Window to advertise now: free receive buffer space, with receiver-side silly window
   * avoidance (RFC 9293 §3.8.6.2.2: move the right edge only by at least min(buffer/2, MSS))
   * and never shrinking the window already offered.
   */
  private windowToAdvertise(): number {
    const free = Math.max(0, this.cfg.recvBufferSize - this.recvQ.length);
    const current = this.rcvWindow();
    let wnd = free;
    if (wnd - current < Math.min(this.cfg.recvBufferSize / 2, this.cfg.mss)) wnd = current;
    wnd = Math.max(wnd, current);
    // Representable with our scale (RFC 7323 §2.3), rounded down.
    const max = 0xffff << this.rcvScale;
    if (wnd > max) wnd = max;
    return (wnd >>> this.rcvScale) << this.rcvScale;
  }

  /** After the application reads: send a window update if the window grew enough. */
  private windowOpened(): void {
    const current = this.rcvWindow();
    const free = Math.max(0, this.cfg.recvBufferSize - this.recvQ.length);
    if (free - current >= Math.min(this.cfg.recvBufferSize / 2, this.cfg.mss) || (current === 0 && free > 0 && free >= this.cfg.mss)) {
      this.ackNow = true;
      this.dirty = true;
    }
  }

  // =====================================================================================
  // Timers
  // =====================================================================================

  /** When `output` next wants to be called: -Infinity for "now", Infinity for never. */
  pollAt(): number {
    if (this.state === TcpState.Closed && !this.rstPending) return Infinity;
    if (this.dirty || this.ackNow || this.rstPending) return -Infinity;
    return Math.min(this.rtoAt, this.rackAt, this.ptoAt, this.persistAt, this.delayedAckAt, this.timeWaitAt, this.finWait2At, this.keepaliveAt);
  }

  private runTimers(now: number): void {
    if (this.delayedAckAt <= now) {
      this.delayedAckAt = Infinity;
      this.ackNow = true;
    }
    if (this.timeWaitAt <= now) {
      this.timeWaitAt = Infinity;
      this.toClosed(undefined);
      return;
    }
    if (this.finWait2At <= now) {
      this.finWait2At = Infinity;
      if (this.state === TcpState.FinWait2) {
        this.toClosed("timeout");
        return;
      }
    }
    if (this.rtoAt <= now) this.retransmitTimeout(now);
    if (this.rackAt <= now) {
      this.rackDetect(now);
      this.prrOnAck(0);
      this.armPto(now);
    }
    if (this.ptoAt <= now) {
      this.ptoAt = Infinity;
      this.tlpPending = true;
      this.dirty = true;
    }
    if (this.persistAt <= now) {
      this.persistAt = Infinity;
      if (this.sndWnd === 0 && this.unsentBytes() > 0) {
        if (this.probesUnanswered > this.cfg.maxRetransmits) {
          this.abortWith("timeout");
          return;
        }
        this.probePending = true;
        this.probesUnanswered++;
        this.persistBackoff++;
      } else if (this.unsentBytes() > 0) {
        // RFC 1122 §4.2.3.4 / RFC 9293 §3.8.6.2.1: the override timeout — send what the window allows.
        this.overridePending = true;
        this.dirty = true;
      }
    }
    if (this.keepaliveAt <= now) {
      this.keepaliveAt = Infinity;
      const k = this.cfg.keepalive;
      if (k && this.state === TcpState.Established) {
        if (this.keepaliveProbes >= k.probes) {
          this.abortWith("timeout");
          return;
        }
        this.keepaliveProbes++;
        this.keepalivePending = true;
        this.keepaliveAt = now + k.intervalMs;
      }
    }
  }

  /** RFC 6298 §5.4-5.7 and RFC 5681 §3.1 (loss window): retransmit from SND.UNA. */
  private retransmitTimeout(now: number): void {
    this.rtoAt = Infinity;
    const isSyn = this.state === TcpState.SynSent || this.state === TcpState.SynReceived;
    const limit = isSyn ? this.cfg.maxSynRetransmits : this.cfg.maxRetransmits;
    if (this.retransmits >= limit) {
      this.abortWith("timeout");
      return;
    }
    this.retransmits++;
    this.counters.timeouts++;
    this.rtt.backoff();
    this.rttSeq = undefined;
    if (isSyn) {
      this.synPending = true;
      // RFC 6298 (5.7): after the SYN's retransmission, the RTO for data is 3 s if no sample.
      this.synTimedOut = true;
      return;
    }
    const flight = seqSub(this.sndMax, this.sndUna);
    this.cc.onRetransmitTimeout(flight, this.sndMss, now);
    this.inRecovery = false;
    this.rtxPending = false;
    this.dupAcks = 0;
    this.recoveryPoint = this.sndMax;
    // RFC 6675 §5.1: the scoreboard may have reneged data; start over from SND.UNA.
    this.scoreboard.clear();
    this.rack.onRetransmitTimeout();
    this.tlp.clear();
    this.rackAt = this.ptoAt = Infinity;
    this.tlpPending = this.rackForceRtx = false;
    this.sndNxt = this.sndUna;
    this.dirty = true;
  }

  private armKeepalive(now: number): void {
    const k = this.cfg.keepalive;
    this.keepaliveAt = k ? now + k.idleMs : Infinity;
  }

  private abortWith(err: TcpError): void {
    // A reset only makes sense once the peer knows our sequence numbers.
    this.rstPending = this.state !== TcpState.SynSent;
    this.toClosed(err, false);
    this.dirty = true;
  }

  /** Enter CLOSED: drop queues and timers, report. `err` undefined is a normal close. */
  private toClosed(err: TcpError | undefined, clearRst = true): void {
    if (this.state === TcpState.Closed) return;
    this.state = TcpState.Closed;
    if (err !== undefined) {
      this.error = err;
      this.events |= TcpEvent.Reset;
    }
    this.events |= TcpEvent.Closed;
    if (clearRst) this.rstPending = false;
    this.held = false;
    this.rtoAt = this.persistAt = this.delayedAckAt = this.timeWaitAt = this.finWait2At = this.keepaliveAt = Infinity;
    this.rackAt = this.ptoAt = Infinity;
    this.tlpPending = false;
    this.sendQ.clear();
    this.ooo.clear();
    this.scoreboard.clear();
    this.rack.clear();
    this.synPending = this.probePending = this.keepalivePending = this.ackNow = this.rtxPending = false;
  }

  // =====================================================================================
  // Output
  // =====================================================================================

  private tsNow(now: number): number {
    return (Math.floor(now) + this.tsOffset) >>> 0;
  }

  /** Bytes queued but not yet sent (from sndNxt). */
  private unsentBytes(): number {
    return this.sendQ.length - this.dataOffset(this.sndNxt);
  }

  /** Offset into the send queue of sequence number `seq` (the queue starts at SND.UNA's data). */
  private dataOffset(seq: number): number {
    let off = seqSub(seq, this.sndUna);
    // The SYN occupies the sequence number before the first data byte.
    if (seqLe(this.sndUna, this.iss)) off -= 1;
    return Math.max(0, off);
  }

  /** Next segment to send, or undefined. The repr is reused: valid until the next call. */
  output(now: number): TcpRepr | undefined {
    this.runTimers(now);
    const seg = this.nextSegment(now);
    if (seg === undefined) {
      this.dirty = false;
      return undefined;
    }
    this.counters.segmentsOut++;
    return seg;
  }

  private nextSegment(now: number): TcpRepr | undefined {
    if (this.rstPending) {
      this.rstPending = false;
      return this.fill(this.sndMax, this.rcvNxt, TcpFlag.RST | TcpFlag.ACK, EMPTY, now, false);
    }
    const s = this.state;
    if (s === TcpState.Closed || this.held) return undefined;
    if (this.synPending) return this.sendSyn(now);
    if (s === TcpState.SynSent) return undefined;
    if (s === TcpState.SynReceived) return this.ackNow ? this.pureAck(now) : undefined;

    if (this.tlpPending) {
      const seg = this.sendProbe(now);
      if (seg) return seg;
    }
    if (this.rtxPending) {
      const seg = this.fastRetransmit(now);
      if (seg) return seg;
    }
    if (this.inRecovery && this.sackOn) {
      const seg = this.sackRecoverySend(now);
      if (seg) return seg;
    }
    const data = this.sendData(now);
    if (data) return data;
    if (this.probePending) {
      this.probePending = false;
      this.persistAt = now + this.persistTimeout();
      // A zero-window probe that carries no new data: SEQ = SND.UNA - 1 elicits an ACK with the window.
      return this.fill(seqAdd(this.sndUna, -1), this.rcvNxt, TcpFlag.ACK, EMPTY, now, true);
    }
    if (this.keepalivePending) {
      this.keepalivePending = false;
      // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT - 1, no data.
      return this.fill(seqAdd(this.sndMax, -1), this.rcvNxt, TcpFlag.ACK, EMPTY, now, true);
    }
    if (this.ackNow) return this.pureAck(now);
    return undefined;
  }

  /**
   * The retransmission timeout now: the estimator's, or — RFC 6298 (5.7) — at least 3 s (with
   * backoff) for data after a SYN timed out, until the first RTT sample.
   */
  private rtoTimeout(): number {
    const t = this.rtt.timeout();
    if (!this.synTimedOut || this.rtt.srtt !== undefined || this.state <= TcpState.SynReceived) return t;
    return Math.min(this.cfg.maxRtoMs, Math.max(t, 3000 * 2 ** this.rtt.backoffs));
  }

  private persistTimeout(): number {
    return Math.min(this.cfg.maxRtoMs, this.rtt.rto * 2 ** Math.min(this.persistBackoff, 16));
  }

  private sendSyn(now: number): TcpRepr {
    this.synPending = false;
    const active = this.state === TcpState.SynSent;
    const o: TcpOptions = { mss: this.cfg.mss };
    // Offer each option in a SYN; in a SYN-ACK only those the peer offered (RFC 7323 §1.3, RFC 2018 §2).
    if (this.cfg.windowScaling && (active || this.peerOfferedWs)) o.windowScale = this.rcvScaleOffer;
    if (this.cfg.sack && (active || this.sackOn)) o.sackPermitted = true;
    if (this.cfg.timestamps && (active || this.tsOn)) o.timestamp = { tsVal: this.tsNow(now), tsEcr: active ? 0 : this.tsRecent };
    const flags = active ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK;
    const seg = this.fillWith(this.iss, active ? 0 : this.rcvNxt, flags, EMPTY, o);
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    seg.window = Math.min(this.cfg.recvBufferSize, 0xffff);
    if (!active) this.rcvAdvEdge = seqAdd(this.rcvNxt, seg.window);
    if (seqLt(this.sndMax, seqAdd(this.iss, 1))) this.sndMax = seqAdd(this.iss, 1);
    this.sndNxt = seqAdd(this.iss, 1);
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rtoTimeout();
    if (this.retransmits === 0 && this.rttSeq === undefined) {
      this.rttSeq = seqAdd(this.iss, 1);
      this.rttTime = now;
    } else if (this.retransmits > 0) {
      this.rttSeq = undefined;
      this.counters.retransmittedSegments++;
    }
    if (!active) this.lastAckSent = this.rcvNxt;
    this.ackNow = false;
    return seg;
  }

  /** NewReno fast retransmit / partial-ACK retransmit: the segment at SND.UNA. */
  private fastRetransmit(now: number): TcpRepr | undefined {
    this.rtxPending = false;
    // RFC 6675 §5 step (4.3) / RFC 5681 §3.2 step 2: the first segment presumed lost is
    // retransmitted at once, whatever the pipe; NewReno's partial ACKs do the same.
    return this.retransmitAt(this.sndUna, now);
  }

  /** Send one segment's worth starting at `seq` (a retransmission). */
  private retransmitAt(seq: number, now: number, end?: number): TcpRepr | undefined {
    const off = this.dataOffset(seq);
    const queued = this.sendQ.length;
    let len = Math.min(this.sndMss, queued - off);
    if (end !== undefined) len = Math.min(len, seqSub(end, seq));
    let flags = TcpFlag.ACK;
    if (len < 0) len = 0;
    if (this.finSeq !== undefined && seqAdd(seq, len) === this.finSeq && seqGt(this.sndMax, this.finSeq)) flags |= TcpFlag.FIN;
    if (len === 0 && !(flags & TcpFlag.FIN)) return undefined;
    const payload = len > 0 ? this.sendQ.slice(off, len) : EMPTY;
    this.counters.retransmittedSegments++;
    // Re-arm the timer when the head is retransmitted (as Linux does): its ACK needs a whole
    // round trip, and the timer last started when the segment before it was acknowledged.
    if (this.rtoAt === Infinity || seq === this.sndUna) this.rtoAt = now + this.rtoTimeout();
    const segEnd = seqAdd(seq, len + (flags & TcpFlag.FIN ? 1 : 0));
    if (seqGt(segEnd, this.highRxt)) this.highRxt = segEnd;
    // RACK tracks data bytes only: a FIN cannot be SACKed, so it would look lost (RFC 8985 §6.2)
    // once later data is SACKed; a lost FIN is left to the probe and the RTO.
    if (this.rackOn) this.rack.onSend(seq, seqAdd(seq, len), now);
    if (this.inRecovery) this.prr.onSent(len);
    return this.fill(seq, this.rcvNxt, flags | (len > 0 ? TcpFlag.PSH : 0), payload, now, true);
  }

  /**
   * RFC 6675 §5 (step C) with NextSeg (§4): during SACK recovery, while pipe allows, send the
   * first lost hole above HighRxt, else new data, else any unSACKed hole above HighRxt.
   */
  private sackRecoverySend(now: number): TcpRepr | undefined {
    const pipe = this.pipe();
    if (this.rackOn) {
      // RFC 8985 §9 with RFC 6675 §5 step (C): the segments RACK marked lost first, then new data.
      const lost = this.rack.firstLost();
      if (lost === undefined || (!this.rackForceRtx && this.cc.cwnd - pipe < this.sndMss)) return undefined;
      this.rackForceRtx = false;
      return this.retransmitAt(lost[0], now, lost[1]);
    }
    if (this.cc.cwnd - pipe < this.sndMss) return undefined;
    // Rule 1: a lost, unSACKed, not-yet-retransmitted range.
    const from = seqGt(this.highRxt, this.sndUna) ? this.highRxt : this.sndUna;
    const hole = this.scoreboard.nextHole(from);
    if (hole !== undefined && this.scoreboard.isLost(hole[0], this.sndMss, this.cfg.dupThresh)) {
      return this.retransmitAt(hole[0], now, hole[1]);
    }
    // Rule 2: new data, if the receiver's window allows.
    if (this.unsentBytes() > 0 || this.finUnsent()) return undefined; // let sendData handle it
    // Rule 3: an unSACKed hole above HighRxt even if not judged lost.
    if (hole !== undefined) return this.retransmitAt(hole[0], now, hole[1]);
    return undefined;
  }

  /** RFC 6675 §4 SetPipe: octets in flight, not SACKed, not lost, plus retransmitted ones. */
  private pipe(): number {
    const outstanding = seqSub(this.sndMax, this.sndUna);
    if (!this.sackOn || !this.inRecovery) return seqSub(this.sndNxt, this.sndUna);
    // RFC 8985 with RFC 6675 §4 SetPipe: in flight = outstanding - SACKed - marked lost (not resent).
    if (this.rackOn) return Math.max(0, outstanding - this.rack.sackedBytes - this.rack.lostBytes);
    const sacked = this.scoreboard.sackedIn(this.sndUna, this.sndMax);
    let pipe = outstanding - sacked;
    // Lost (not retransmitted) octets are not in the network: estimate them as the holes below
    // HighSACK beyond HighRxt that IsLost() marks.
    const high = this.scoreboard.highSacked;
    if (high !== undefined) {
      let at = seqGt(this.highRxt, this.sndUna) ? this.highRxt : this.sndUna;
      for (let i = 0; i < 64; i++) {
        const hole = this.scoreboard.nextHole(at);
        if (hole === undefined) break;
        if (this.scoreboard.isLost(hole[0], this.sndMss, this.cfg.dupThresh)) pipe -= seqSub(hole[1], hole[0]);
        at = hole[1];
      }
    }
    return Math.max(0, pipe);
  }

  /** True when the FIN still has to be sent in the current round (SND.NXT has not passed it). */
  private finUnsent(): boolean {
    return this.finSeq !== undefined && seqLe(this.sndNxt, this.finSeq);
  }

  /** New data (and the FIN) within the send window and cwnd, with sender SWS avoidance. */
  private sendData(now: number, probe = false): TcpRepr | undefined {
    const s = this.state;
    if (s !== TcpState.Established && s !== TcpState.CloseWait && s !== TcpState.FinWait1 && s !== TcpState.LastAck && s !== TcpState.Closing) {
      return undefined;
    }
    const off = this.dataOffset(this.sndNxt);
    const unsent = this.sendQ.length - off;
    const finPending = this.finUnsent();
    if (unsent <= 0 && !finPending) return undefined;

    const inFlight = this.sackOn && this.inRecovery ? this.pipe() : seqSub(this.sndNxt, this.sndUna);
    const wndRoom = seqSub(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment out.
    // (Only for previously unsent data: not for the go-back-N resends after a timeout.)
    const limited = this.inRecovery || this.sndNxt !== this.sndMax ? 0 : Math.min(this.dupAcks, 2) * this.sndMss;
    // A tail loss probe (RFC 8985 §7.3) may send one segment beyond cwnd.
    const cwndRoom = probe ? this.sndMss : this.cc.cwnd + limited - inFlight;
    const room = Math.min(wndRoom, cwndRoom);
    let len = Math.max(0, Math.min(unsent, room, this.sndMss));
    if (len === this.sndMss && this.superSegment > this.sndMss && !this.inRecovery && this.sndNxt === this.sndMax) {
      // Segmentation offload: several MSS of new data in one segment; whole MSS pieces unless
      // it carries the last of the queue.
      len = Math.min(unsent, room, this.superSegment);
      if (len < unsent) len -= len % this.sndMss;
    }

    if (unsent > 0) {
      if (len === 0) {
        if (wndRoom <= 0) this.armPersist(now);
        return undefined;
      }
      if (len < unsent && len < this.sndMss) {
        // RFC 9293 §3.8.6.2.1: send only if a full segment fits, or all remaining data does,
        // or at least half the peer's largest window does. Otherwise wait (persist timer).
        if (!(this.maxSndWnd > 0 && len >= this.maxSndWnd / 2) && !this.overridePending) {
          if (wndRoom < this.sndMss && inFlight === 0) this.armPersist(now);
          return undefined;
        }
        this.overridePending = false;
      }
      // Nagle (RFC 9293 §3.7.4), when enabled: hold a small segment while data is unacknowledged.
      if (this.cfg.nagle && len < this.sndMss && len === unsent && inFlight > 0) return undefined;
    }

    let flags = TcpFlag.ACK;
    if (len > 0 && len === unsent) flags |= TcpFlag.PSH;
    const seq = this.sndNxt;
    // The FIN rides on the last data segment, or goes alone once all data is sent (a bare
    // FIN is sent whatever the window, like Linux: it carries no data).
    if (finPending && len === unsent && seqAdd(seq, len) === this.finSeq) flags |= TcpFlag.FIN;
    if (len === 0 && !(flags & TcpFlag.FIN)) return undefined;
    const payload = len > 0 ? this.sendQ.slice(off, len) : EMPTY;
    const end = seqAdd(seq, len + (flags & TcpFlag.FIN ? 1 : 0));
    const retransmission = seqLt(seq, this.sndMax);
    if (retransmission) this.counters.retransmittedSegments++;
    else if (this.rttSeq === undefined && !this.tsOn) {
      this.rttSeq = end;
      this.rttTime = now;
    }
    this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rtoTimeout();
    this.persistAt = Infinity;
    if (this.inRecovery) this.prr.onSent(len);
    if (this.rackOn) {
      this.rack.onSend(seq, seqAdd(seq, len), now);
      // RFC 8985 §7.2: (re)schedule the probe after sending new data (and, see armPto, after
      // the first resend following a timeout).
      if (!probe && (!retransmission || this.ptoAt === Infinity)) this.armPto(now);
    }
    return this.fill(seq, this.rcvNxt, flags, payload, now, true);
  }

  private armPersist(now: number): void {
    if (this.persistAt === Infinity && this.rtoAt === Infinity) this.persistAt = now + this.persistTimeout();
  }

  /**
   * A segment with no data: its sequence number is SND.MAX, the next *new* sequence number.
   * (SND.NXT may have been rewound by a retransmission timeout; an ACK carrying that older
   * number would fall left of the peer's window and be discarded unread, RFC 9293 §3.10.7.4.)
   */
  private pureAck(now: number): TcpRepr {
    return this.fill(this.sndMax, this.rcvNxt, TcpFlag.ACK, EMPTY, now, true);
  }

  /** Fill the reused output repr for a segment that carries our current ACK and window. */
  private fill(seq: number, ack: number, flags: number, payload: Uint8Array, now: number, withSack: boolean): TcpRepr {
    const o: TcpOptions = {};
    if (this.tsOn) o.timestamp = { tsVal: this.tsNow(now), tsEcr: this.tsRecent };
    if (withSack && this.sackOn && this.ooo.bytes > 0 && !(flags & TcpFlag.RST)) {
      const blocks = this.ooo.sackBlocks(this.tsOn ? 3 : 4);
      if (blocks.length > 0) o.sack = blocks;
    }
    const seg = this.fillWith(seq, ack, flags, payload, o);
    if (flags & TcpFlag.ACK) {
      const wnd = this.windowToAdvertise();
      seg.window = wnd >>> this.rcvScale;
      this.rcvAdvEdge = seqMax(this.rcvAdvEdge, seqAdd(this.rcvNxt, wnd));
      this.lastAckSent = ack;
      this.ackNow = false;
      this.delayedAckAt = Infinity;
      this.unackedSegments = 0;
    }
    return seg;
  }

  private fillWith(seq: number, ack: number, flags: number, payload: Uint8Array, options: TcpOptions): TcpRepr {
    const seg = this.out;
    seg.seq = seq >>> 0;
    seg.ack = flags & TcpFlag.ACK ? ack >>> 0 : 0;
    seg.flags = flags;
    seg.window = 0;
    seg.options = options;
    seg.payload = payload;
    return seg;
  }

  /** Queue a reset that is not part of this connection's normal output (e.g. an unacceptable ACK in SYN-RECEIVED). */
  private sendReset(seq: number, ack: number, withAck: boolean): void {
    this.extraRst = this.resetFor(seq, ack, withAck);
  }

  /** A standalone RST the owner must send; taken with `takeReset()`. */
  private extraRst: TcpRepr | undefined;

  /** A reset to send in answer to an unacceptable segment, if one was produced (RFC 9293 §3.10.7.3/§3.10.7.4). */
  takeReset(): TcpRepr | undefined {
    const r = this.extraRst;
    this.extraRst = undefined;
    return r;
  }

  private resetFor(seq: number, ack: number, withAck: boolean): TcpRepr {
    return {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq: seq >>> 0,
      ack: withAck ? ack >>> 0 : 0,
      flags: withAck ? TcpFlag.RST | TcpFlag.ACK : TcpFlag.RST,
      window: 0,
      urgentPointer: 0,
      options: {},
      payload: EMPTY,
    };
  }
}

/** seqAdd with a negative amount, named for readability at its one use. */
function seqSub0(a: number, n: number): number {
  return seqAdd(a, -n);
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
