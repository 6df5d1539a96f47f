/**
 * Congestion control, pluggable: the engine owns the loss detection and recovery state machine
 * and calls a `CongestionControl` at four points (new data acknowledged, entering and leaving
 * fast recovery, retransmission timeout); the algorithm owns cwnd and ssthresh.
 *
 * Read first:
 *  - RFC 5681 §3.1 (slow start and congestion avoidance, equations (2)-(4), the loss window)
 *    and §3.2 (fast retransmit / fast recovery, steps 1-6);
 *  - RFC 6582 §3.2 (NewReno: recover, full and partial acknowledgments);
 *  - RFC 3465 (Appropriate Byte Counting, with the limit L = 2*SMSS in slow start);
 *  - RFC 6928 and RFC 3390 (the initial window);
 *  - RFC 6675 §5 (SACK-based loss recovery: cwnd = ssthresh and the "pipe" estimate).
 *
 * Windows are in bytes. `now` (ms) is passed for algorithms that need time (CUBIC); NewReno
 * ignores it.
 */

export interface CongestionControl {
  readonly name: string;
  /** Congestion window, bytes. The engine may adjust it during recovery (see `NewReno`). */
  cwnd: number;
  /** Slow start threshold, bytes. */
  ssthresh: number;
  /** New data acknowledged (not during fast recovery): slow start or congestion avoidance growth. */
  onAck(ackedBytes: number, mss: number, now: number): void;
  /**
   * Entering fast recovery (RFC 5681 §3.2 step 2 / RFC 6675 §5 step 4):
   * ssthresh = max(FlightSize / 2, 2*SMSS); cwnd set per the algorithm.
   */
  onEnterRecovery(flightSize: number, mss: number, now: number): void;
  /**
   * Full ACK leaving recovery (RFC 6582 §3.2 step 3): cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS)
   * or ssthresh.
   */
  onExitRecovery(flightSize: number, mss: number, now: number): void;
  /**
   * Retransmission timeout (RFC 5681 §3.1 eq. (4) and the "loss window"):
   * ssthresh = max(FlightSize / 2, 2*SMSS); cwnd = 1 SMSS.
   */
  onRetransmitTimeout(flightSize: number, mss: number, now: number): void;
}

/** Makes the congestion control of a new connection, given its SMSS. */
export type CongestionControlFactory = (mss: number) => CongestionControl;

/**
 * Initial ssthresh: RFC 5681 §3.1, "The initial value of ssthresh SHOULD be set arbitrarily
 * high (e.g., to the size of the largest possible advertised window)": 65535 << 14 (RFC 7323 §2.3).
 */
export const INITIAL_SSTHRESH = 0xffff * (1 << 14);

/**
 * Initial congestion window in bytes for `segments` segments of `mss` bytes.
 *  - Default, 10 segments: RFC 6928 §2, "min (10*MSS, max (2*MSS, 14600))".
 *  - 4 segments or fewer: RFC 3390 §1 / RFC 5681 §3.1 eq. (3), "min (4*MSS, max (2*MSS, 4380 bytes))",
 *    with at most `segments` segments.
 *  - Other counts scale RFC 6928's byte cap with the count: min(n*MSS, max(2*MSS, n*1460)).
 */
export function initialWindow(mss: number, segments = 10): number {
  const n = Math.max(1, Math.floor(segments));
  const cap = n <= 4 ? 4380 : n * 1460;
  return Math.min(n * mss, Math.max(2 * mss, cap));
}

/** RFC 5681 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS), in whole bytes. */
export function lossSsthresh(flightSize: number, mss: number): number {
  return Math.max(Math.floor(flightSize / 2), 2 * mss);
}

/**
 * NewReno (RFC 5681 §3 with RFC 6582), with Appropriate Byte Counting (RFC 3465).
 *
 * Division of labour with the engine: this class sets cwnd and ssthresh at the four events of
 * `CongestionControl`. The engine keeps `recover`, counts duplicate ACKs and, in recovery
 * without SACK, applies NewReno's window arithmetic directly to `cwnd` (helpers below):
 *  - on entering recovery `onEnterRecovery` leaves cwnd = ssthresh (RFC 6675 §5 step 4, the
 *    SACK case, where the "pipe" estimate stands in for inflation); for dupACK-based recovery the
 *    engine then adds 3*SMSS (RFC 5681 §3.2 step 3, `inflateOnEnter`);
 *  - each further duplicate ACK inflates cwnd by SMSS (RFC 5681 §3.2 step 4, `inflateForDupAck`);
 *  - a partial ACK deflates it (RFC 6582 §3.2 step 3, `deflateForPartialAck`).
 */
export class NewReno implements CongestionControl {
  readonly name = "newreno";
  cwnd: number;
  ssthresh = INITIAL_SSTHRESH;
  /** RFC 3465 §2.1 "bytes_acked" in congestion avoidance. */
  private bytesAcked = 0;

  /** `initialSegments`: the initial window in segments (`initialWindow`), 10 by default. */
  constructor(mss: number, initialSegments = 10) {
    this.cwnd = initialWindow(mss, initialSegments);
  }

  onAck(ackedBytes: number, mss: number, _now: number): void {
    if (!(ackedBytes > 0)) return;
    let acked = ackedBytes;
    if (this.cwnd < this.ssthresh) {
      // RFC 5681 §3.1: "The slow start algorithm is used when cwnd < ssthresh"; eq. (2)
      // "cwnd += min (N, SMSS)", with RFC 3465 §2.2 allowing a limit "L = 2*SMSS bytes".
      // Growth stops at ssthresh; the rest of this ACK counts toward congestion avoidance.
      const grow = Math.min(acked, 2 * mss, this.ssthresh - this.cwnd);
      this.cwnd += grow;
      acked = this.cwnd < this.ssthresh ? 0 : acked - grow;
      if (acked === 0) return;
    }
    // Congestion avoidance, RFC 5681 §3.1: "the RECOMMENDED way to increase cwnd during
    // congestion avoidance is to count the number of bytes that have been acknowledged by ACKs
    // for new data ... When the number of bytes acknowledged reaches cwnd, then cwnd can be
    // incremented by up to SMSS bytes" (RFC 3465 §2.1).
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += mss;
    }
  }

  onEnterRecovery(flightSize: number, mss: number, _now: number): void {
    // RFC 5681 §3.2 step 2: "ssthresh = max (FlightSize / 2, 2*SMSS)" (eq. 4);
    // RFC 6675 §5 step 4: "cwnd = ssthresh". The engine adds 3*SMSS for dupACK-based recovery.
    this.ssthresh = lossSsthresh(flightSize, mss);
    this.cwnd = this.ssthresh;
    this.bytesAcked = 0;
  }

  onExitRecovery(flightSize: number, mss: number, _now: number): void {
    // RFC 6582 §3.2 step 3, full acknowledgment: "Set cwnd to either (1) min (ssthresh,
    // max(FlightSize, SMSS) + SMSS) or (2) ssthresh"; option (1) avoids a burst when little
    // data is outstanding.
    this.cwnd = Math.min(this.ssthresh, Math.max(flightSize, mss) + mss);
    this.bytesAcked = 0;
  }

  onRetransmitTimeout(flightSize: number, mss: number, _now: number): void {
    // RFC 5681 §3.1: "the value of ssthresh MUST be set to no more than the value given in
    // equation (4)" and "upon a timeout ... cwnd MUST be set to no more than the loss window,
    // LW, which equals 1 full-sized segment". RFC 5681 asks for the ssthresh reduction only
    // when "the given segment has not yet been resent by way of the retransmission timer": the
    // engine passes the FlightSize of the first timeout for later backoffs of the same data.
    this.ssthresh = lossSsthresh(flightSize, mss);
    this.cwnd = mss;
    this.bytesAcked = 0;
  }
}

/** RFC 5681 §3.2 step 3 (no SACK): after `onEnterRecovery`, "cwnd = ssthresh + 3*SMSS". */
export function inflateOnEnter(cc: CongestionControl, mss: number): void {
  cc.cwnd = cc.ssthresh + 3 * mss;
}

/** RFC 5681 §3.2 step 4 (no SACK): "For each additional duplicate ACK received ... cwnd is incremented by SMSS". */
export function inflateForDupAck(cc: CongestionControl, mss: number): void {
  cc.cwnd += mss;
}

/**
 * RFC 6582 §3.2 step 3, partial acknowledgment (no SACK): "Deflate the congestion window by the
 * amount of new data acknowledged by the Cumulative Acknowledgment field. If the partial ACK
 * acknowledges at least one SMSS of new data, then add back SMSS bytes". cwnd stays at least one SMSS.
 */
export function deflateForPartialAck(cc: CongestionControl, ackedBytes: number, mss: number): void {
  cc.cwnd = Math.max(mss, cc.cwnd - ackedBytes + (ackedBytes >= mss ? mss : 0));
}
