/**
 * TCP engine configuration: every bound and timer of a connection, with defaults suited to a
 * gateway that terminates guests' flows on the same machine (short TIME-WAIT, no idle timeout,
 * Nagle off, SACK, window scaling and timestamps on).
 */

import { NewReno, type CongestionControlFactory } from "./congestion.js";
import { DEFAULT_TLP_CONFIG, type TlpConfig } from "./tlp.js";

export interface KeepaliveConfig {
  /** Idle time before the first probe (RFC 1122 §4.2.3.6: at least two hours by default). */
  idleMs: number;
  intervalMs: number;
  /** Unanswered probes before the connection is reset. */
  probes: number;
}

export interface TcpConfig {
  /** MSS to advertise: the largest segment payload we accept (MTU - 40 for IPv4). */
  mss: number;
  /** Receive buffer: the window offered to the peer is its free space. */
  recvBufferSize: number;
  /** Send buffer: `write` accepts data up to this many unacknowledged bytes. */
  sendBufferSize: number;
  windowScaling: boolean;
  sack: boolean;
  timestamps: boolean;
  /** Nagle's algorithm (RFC 9293 §3.7.4); off by default. */
  nagle: boolean;
  /** Delayed ACK bound (RFC 9293 §3.8.6.3: under 0.5 s); 0 acknowledges every segment at once. */
  delayedAckMs: number;
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
  /** Retransmissions of data (or FIN) before the connection is reset with a timeout. */
  maxRetransmits: number;
  /** Retransmissions of SYN or SYN-ACK before giving up. */
  maxSynRetransmits: number;
  /** TIME-WAIT duration (2*MSL in RFC 9293; skiff is a gateway, so short). */
  timeWaitMs: number;
  /** Time allowed in FIN-WAIT-2 without the peer's FIN; null waits forever (half-close is legitimate). */
  finWait2TimeoutMs: number | null;
  keepalive: KeepaliveConfig | null;
  /** Out-of-order bytes and ranges held per connection (counted drops beyond). */
  maxReassemblyBytes: number;
  maxReassemblySegments: number;
  congestionControl: CongestionControlFactory;
  initialCwndSegments: number;
  /** Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2) when RACK is off. */
  dupThresh: number;
  /** RACK time-based loss detection (RFC 8985 §6) when SACK is negotiated; on by default. */
  rack: boolean;
  /** Tail loss probes (RFC 8985 §7), with `rack`; on by default. */
  tlp: boolean;
  /** Proportional Rate Reduction (RFC 6937) for cwnd in RACK's recoveries; on by default. */
  prr: boolean;
  /** Probe timing (tlp.ts): WCDelAckT, the PTO's floor, probes per episode. */
  tlpTiming: TlpConfig;
  /** Challenge ACKs per second per connection (RFC 5961 §7). */
  challengeAckLimit: number;
}

export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = Object.freeze({
  mss: 1460,
  recvBufferSize: 1 << 20,
  sendBufferSize: 1 << 20,
  windowScaling: true,
  sack: true,
  timestamps: true,
  nagle: false,
  delayedAckMs: 40,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 60_000,
  maxRetransmits: 12,
  maxSynRetransmits: 5,
  timeWaitMs: 2000,
  finWait2TimeoutMs: null,
  keepalive: null,
  maxReassemblyBytes: 1 << 20,
  maxReassemblySegments: 64,
  congestionControl: (mss: number) => new NewReno(mss),
  initialCwndSegments: 10,
  dupThresh: 3,
  rack: true,
  tlp: true,
  prr: true,
  tlpTiming: DEFAULT_TLP_CONFIG,
  challengeAckLimit: 10,
});

export function tcpConfig(overrides: Partial<TcpConfig> = {}): TcpConfig {
  const c = { ...DEFAULT_TCP_CONFIG, ...overrides };
  if (!(c.mss >= 64 && c.mss <= 65495)) throw new RangeError(`tcp mss ${c.mss} outside 64..65495`);
  if (!(c.recvBufferSize >= c.mss)) throw new RangeError("tcp recvBufferSize must be at least one MSS");
  if (!(c.sendBufferSize >= 1)) throw new RangeError("tcp sendBufferSize must be positive");
  if (!(c.minRtoMs > 0 && c.minRtoMs <= c.maxRtoMs)) throw new RangeError("tcp minRtoMs must be in (0, maxRtoMs]");
  if (!(c.dupThresh >= 1)) throw new RangeError("tcp dupThresh must be at least 1");
  const t = c.tlpTiming;
  if (!(t.minPtoMs > 0 && t.maxAckDelayMs >= 0 && t.maxProbes >= 1)) throw new RangeError("tcp tlpTiming needs minPtoMs > 0, maxAckDelayMs >= 0, maxProbes >= 1");
  return c;
}

/** Window scale shift needed to offer `bufferSize` bytes (RFC 7323 §2.3: at most 14). */
export function windowScaleFor(bufferSize: number): number {
  let shift = 0;
  while (shift < 14 && bufferSize > 0xffff << shift) shift++;
  return shift;
}
