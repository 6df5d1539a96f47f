/**
 * The TCP control block of one connection (RFC 9293 §3.3.1 "Transmission Control Block"): the
 * send and receive sequence variables (§3.3.1), the options negotiated in the SYNs (RFC 7323
 * window scale and timestamps, RFC 2018 SACK), the queues, the loss-recovery state (RFC 5681,
 * RFC 6582, RFC 6675, RFC 8985 RACK-TLP, RFC 6937 PRR), the timer deadlines, and the small
 * helpers the rest of the engine reads them through: sequence number to send-queue offset,
 * the receive window offered (§3.8.6.2.2), the reset segments of §3.10.7.
 *
 * The engine is one class, split along RFC 9293's lines into a chain of files, each class
 * extending the one before (no file imports a later one):
 *   connection-tcb.ts      the variables (TCB) and small helpers over them
 *   connection-timers.ts   RTO, persist, keep-alive, TIME-WAIT, delayed ACK, PTO; `pollAt`
 *   connection-ack.ts      ACK processing, send-side bookkeeping, loss-recovery hooks
 *   connection-output.ts   building segments: data, retransmissions, probes, window, options
 *   connection-arrival.ts  SEGMENT ARRIVES: state checks, RST/SYN, text, FIN
 *   connection.ts          `TcpConnection`: opening, the application side, the public API
 * The fields are `protected`: visible to the engine's files, not to the connection's users.
 */

import { TcpFlag, type TcpRepr } from "./wire.js";
import { seqAdd, seqSub, seqLe } from "./seq.js";
import { RttEstimator } from "./rto.js";
import { ReassemblyQueue } from "./reassembly.js";
import { SendQueue } from "./send-queue.js";
import { RecvQueue } from "./recv-queue.js";
import { SackScoreboard } from "./sack-scoreboard.js";
import { Rack } from "./rack.js";
import { TlpEpisode } from "./tlp.js";
import { Prr } from "./prr.js";
import type { CongestionControl } from "./congestion.js";
import { type TcpConfig, tcpConfig, windowScaleFor } from "./config.js";
import { TcpState, type TcpError } from "./state.js";

export const EMPTY = new Uint8Array(0);
/** RFC 9293 §3.7.1: without the option, assume 536. */
export const DEFAULT_PEER_MSS = 536;
/** RFC 7323 §5.5: PAWS does not apply to a TS.Recent older than 24 days. */
export const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;
/** Bytes a timestamps option takes with its NOP padding. */
export const TS_OPTION_LEN = 12;

export interface TcpPorts {
  localPort: number;
  remotePort: number;
}

/** The variables of one connection (RFC 9293 §3.3.1); `TcpConnection` is the class to use. */
export abstract class TcpControlBlock {
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
  protected sndWl1 = 0;
  protected sndWl2 = 0;
  /** Largest window the peer has offered (RFC 5961 §5.2 MAX.SND.WND). */
  protected maxSndWnd = 0;
  /** Peer's window scale shift, applied to windows it advertises. */
  protected sndScale = 0;
  /** Segment payload size toward the peer (its MSS, our MSS, minus timestamps). */
  protected sndMss: number;
  /** Most payload of one new-data super-segment the link cuts into sndMss pieces (0: no offload). */
  protected superSegment = 0;

  // ---- receive sequence space ----
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window last advertised: never moved left (RFC 9293 §3.8.6.2.2). */
  protected rcvAdvEdge = 0;
  /** The only window offered so far is our SYN-ACK's (unscaled, at most 65535: RFC 7323 §2.2). */
  protected synWindowOnly = false;
  /** Our window scale shift (0 until negotiated). */
  protected rcvScale = 0;
  /** Shift we offer in our SYN. */
  protected readonly rcvScaleOffer: number;
  /** The peer's SYN carried a window scale option (RFC 7323 §2.2: only then may a SYN-ACK carry ours). */
  protected peerOfferedWs = false;

  // ---- options negotiated ----
  protected tsOn = false;
  protected sackOn = false;
  protected tsRecent = 0;
  /** When TS.Recent was recorded (-Infinity: never; `now` may legitimately be 0). */
  protected tsRecentAge = -Infinity;
  protected lastAckSent = 0;
  /** Random per-connection offset of our timestamp clock (RFC 7323 §5.4). */
  protected readonly tsOffset: number;

  // ---- data ----
  protected readonly sendQ = new SendQueue();
  protected readonly recvQ = new RecvQueue();
  protected readonly ooo: ReassemblyQueue;
  protected readonly scoreboard = new SackScoreboard();
  /** Application asked to close its sending side; FIN goes after queued data. */
  protected finQueued = false;
  /** Sequence number our FIN occupies (fixed when the application closes its side). */
  protected finSeq: number | undefined;
  /** Sequence number after the last byte the application has written. */
  protected sndEnd: number;
  /** Peer's FIN seen ahead of missing data: its sequence number. */
  protected peerFinSeq: number | undefined;
  protected peerFinDone = false;

  // ---- retransmission and congestion ----
  protected readonly rtt: RttEstimator;
  readonly cc: CongestionControl;
  protected retransmits = 0;
  /** Non-timestamp RTT sample in flight (Karn): the sequence number that ends it and when. */
  protected rttSeq: number | undefined;
  protected rttTime = 0;
  protected dupAcks = 0;
  protected inRecovery = false;
  /** RFC 6582 "recover" / RFC 6675 RecoveryPoint: initialised to ISS. */
  protected recoveryPoint: number;
  /** RFC 6675 HighRxt: highest sequence retransmitted in this recovery. */
  protected highRxt = 0;
  /** A fast retransmission of the segment at sndUna is due (NewReno). */
  protected rtxPending = false;
  /** RFC 8985 loss detection (with SACK and `cfg.rack`): the segments in flight and RACK's state. */
  protected readonly rack = new Rack();
  protected readonly tlp = new TlpEpisode();
  /** RFC 6937 rate reduction in RACK's recoveries (`cfg.prr`). */
  protected readonly prr = new Prr();
  /** RACK entered recovery: the first lost segment goes out whatever the pipe (RFC 6675 §5 step 4.3). */
  protected rackForceRtx = false;
  /** The PTO fired: a tail loss probe is due (RFC 8985 §7.3). */
  protected tlpPending = false;

  // ---- timers (ms; Infinity = not running) ----
  protected rtoAt = Infinity;
  /** RACK reordering timer (RFC 8985 §6.2 step 5) and probe timeout (§7.2). */
  protected rackAt = Infinity;
  protected ptoAt = Infinity;
  protected persistAt = Infinity;
  protected persistBackoff = 0;
  /** Zero-window probes sent since the peer last answered (RFC 9293 §3.8.6.1 MUST-36: keep probing while it answers). */
  protected probesUnanswered = 0;
  /** The override timer (RFC 1122 §4.2.3.4) fired: send a sub-MSS segment the window allows. */
  protected overridePending = false;
  /** RFC 6298 (5.7): the SYN (or SYN-ACK) timed out, so data starts with a 3 s RTO until a sample. */
  protected synTimedOut = false;
  protected delayedAckAt = Infinity;
  protected timeWaitAt = Infinity;
  protected finWait2At = Infinity;
  protected keepaliveAt = Infinity;
  protected keepaliveProbes = 0;
  protected lastRecvAt = 0;

  // ---- output state ----
  /** A segment must go out now (ACK, window update, SYN, probe). */
  protected ackNow = false;
  /** Full-sized segments received since our last ACK (RFC 5681 §4.2: ACK every second one). */
  protected unackedSegments = 0;
  protected synPending = false;
  protected rstPending = false;
  protected probePending = false;
  protected keepalivePending = false;
  /** Something changed that may let `output` send: `pollAt` answers "now". */
  protected dirty = false;
  /** A passive connection waits for `accept` or `refuse` before answering the SYN. */
  protected held = false;
  protected events = 0;
  protected challengeWindowStart = -Infinity;
  protected challengeCount = 0;
  protected writeBlocked = false;
  protected readonly out: TcpRepr;

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

  /** A standalone RST the owner must send; taken with `takeReset()`. */
  protected extraRst: TcpRepr | undefined;

  protected constructor(cfg: Partial<TcpConfig> | TcpConfig, ports: TcpPorts, iss: number, tsOffset: number) {
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

  /** Our timestamp clock (RFC 7323 §5.4): milliseconds plus the connection's random offset. */
  protected tsNow(now: number): number {
    return (Math.floor(now) + this.tsOffset) >>> 0;
  }

  /** Bytes queued but not yet sent (from sndNxt). */
  protected unsentBytes(): number {
    return this.sendQ.length - this.dataOffset(this.sndNxt);
  }

  /** Offset into the send queue of sequence number `seq` (the queue starts at SND.UNA's data). */
  protected dataOffset(seq: number): number {
    let off = seqSub(seq, this.sndUna);
    // The SYN occupies the sequence number before the first data byte.
    if (seqLe(this.sndUna, this.iss)) off -= 1;
    return Math.max(0, off);
  }

  /** True when the FIN still has to be sent in the current round (SND.NXT has not passed it). */
  protected finUnsent(): boolean {
    return this.finSeq !== undefined && seqLe(this.sndNxt, this.finSeq);
  }

  /** The receive window currently offered (from the last advertisement). */
  protected rcvWindow(): number {
    const w = seqSub(this.rcvAdvEdge, this.rcvNxt);
    return w > 0 ? w : 0;
  }

  /** RACK-TLP (RFC 8985) runs when SACK was negotiated and `cfg.rack` is on. */
  protected get rackOn(): boolean {
    return this.sackOn && this.cfg.rack;
  }

  /** Full-sized segment from the peer: our advertised MSS less the timestamp option. */
  protected sndMssForAck(): number {
    return this.cfg.mss - (this.tsOn ? TS_OPTION_LEN : 0);
  }

  /** Queue a reset that is not part of this connection's normal output (e.g. an unacceptable ACK in SYN-RECEIVED). */
  protected sendReset(seq: number, ack: number, withAck: boolean): void {
    this.extraRst = this.resetFor(seq, ack, withAck);
  }

  /** A standalone reset segment `<SEQ=seq><ACK=ack><CTL=RST[,ACK]>` (RFC 9293 §3.10.7). */
  protected resetFor(seq: number, ack: number, withAck: boolean): TcpRepr {
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

  /** Bytes `write` would accept now (here because ACK processing reports `Writable` by it). */
  get writable(): number {
    if (!this.canSend()) return 0;
    return Math.max(0, this.cfg.sendBufferSize - this.sendQ.length);
  }

  /** The states in which SEND is accepted (RFC 9293 §3.10.2), before the application's CLOSE. */
  private canSend(): boolean {
    if (this.finQueued) return false;
    const s = this.state;
    return s === TcpState.SynSent || s === TcpState.SynReceived || s === TcpState.Established || s === TcpState.CloseWait;
  }
}
