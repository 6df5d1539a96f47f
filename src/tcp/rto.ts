/**
 * Retransmission timeout computation (RFC 6298): the smoothed round-trip time, its variation,
 * the RTO derived from them, and exponential backoff. Pure arithmetic on millisecond numbers
 * (fractional allowed); the engine measures samples and owns the timer.
 *
 * Read first:
 *  - RFC 6298 §2 "The Basic Algorithm" (2.1)-(2.5) and §5 "Managing the RTO Timer" (5.5)-(5.7);
 *  - RFC 6298 §3 "Taking RTT Samples" (Karn's algorithm: never sample a retransmitted segment,
 *    which is the engine's job) and RFC 7323 §4 (samples from timestamps).
 *
 * Deviation: RFC 6298 (2.4) says the RTO "SHOULD be rounded up to 1 second"; skiff's default
 * floor is `minRto` = 200 ms, as Linux does (TCP_RTO_MIN), because its peers are guests on the
 * same machine with sub-millisecond round trips.
 */

export interface RtoOptions {
  /** RTO before any measurement, ms. RFC 6298 (2.1): "the sender SHOULD set RTO <- 1 second". */
  initialRto: number;
  /** Lower bound of the RTO, ms (RFC 6298 (2.4); 200 in skiff's defaults, see above). */
  minRto: number;
  /** Upper bound of the RTO and of its backoff, ms. RFC 6298 (2.5): "provided it is at least 60 seconds". */
  maxRto: number;
  /** Clock granularity G of RFC 6298 (2.2)/(2.3), ms; 1 by default. */
  granularity?: number;
}

/** RFC 6298 (2.2)/(2.3): K = 4. */
const K = 4;
/** RFC 6298 (2.3): "alpha=1/8 and beta=1/4 (as suggested in [JK88])". */
const ALPHA = 1 / 8;
const BETA = 1 / 4;

/** RFC 6298 estimator of SRTT, RTTVAR and RTO, with the backoff count of (5.5). */
export class RttEstimator {
  private readonly initialRto: number;
  private readonly minRto: number;
  private readonly maxRto: number;
  private readonly g: number;
  private _srtt: number | undefined;
  private _rttvar: number | undefined;
  private _rto: number;
  private _backoffs = 0;

  /** Throws RangeError (a programmer error) unless 0 < minRto <= maxRto and initialRto > 0. */
  constructor(opts: RtoOptions) {
    const { initialRto, minRto, maxRto } = opts;
    const g = opts.granularity ?? 1;
    if (!(minRto > 0 && minRto <= maxRto && initialRto > 0 && g >= 0)) {
      throw new RangeError(`bad RTO options: initial ${initialRto}, min ${minRto}, max ${maxRto}, G ${g}`);
    }
    this.initialRto = initialRto;
    this.minRto = minRto;
    this.maxRto = maxRto;
    this.g = g;
    // RFC 6298 (2.1): "Until a round-trip time (RTT) measurement has been made ... the sender
    // SHOULD set RTO <- 1 second" (initialRto), within [minRto, maxRto].
    this._rto = this.clamp(initialRto);
  }

  /** Smoothed round-trip time SRTT, ms; undefined before the first sample. */
  get srtt(): number | undefined {
    return this._srtt;
  }

  /** Round-trip time variation RTTVAR, ms; undefined before the first sample. */
  get rttvar(): number | undefined {
    return this._rttvar;
  }

  /** The RTO from the estimator, without backoff ((2.1)-(2.4)), clamped to [minRto, maxRto]. */
  get rto(): number {
    return this._rto;
  }

  /** Consecutive backoffs since the last sample or `resetBackoff` ((5.5)). */
  get backoffs(): number {
    return this._backoffs;
  }

  /**
   * The timeout to arm now: rto * 2^backoffs, capped at maxRto. RFC 6298 (5.5): "The maximum
   * value discussed in (2.5) above may be used to provide an upper bound to this doubling".
   */
  timeout(): number {
    return Math.min(this._rto * 2 ** this._backoffs, this.maxRto);
  }

  /**
   * Take one RTT measurement `rtt` (ms, of a segment that was not retransmitted: RFC 6298 §3,
   * Karn). A negative or non-finite value (e.g. from a bogus timestamp echo) is ignored.
   * Clears the backoff: RFC 6298 §5, "once a new RTT measurement is obtained ... the
   * computations outlined in Section 2 are performed, including the computation of RTO, which
   * may result in 'collapsing' RTO back down after it has been subject to exponential back off".
   */
  sample(rtt: number): void {
    if (!(rtt >= 0 && rtt < Infinity)) return;
    const srtt = this._srtt;
    const rttvar = this._rttvar;
    if (srtt === undefined || rttvar === undefined) {
      // RFC 6298 (2.2): "When the first RTT measurement R is made, the host MUST set
      //   SRTT <- R
      //   RTTVAR <- R/2"
      this._srtt = rtt;
      this._rttvar = rtt / 2;
    } else {
      // RFC 6298 (2.3): "RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
      //                  SRTT <- (1 - alpha) * SRTT + alpha * R'
      // The value of SRTT used in the update to RTTVAR is its value before updating SRTT itself".
      this._rttvar = (1 - BETA) * rttvar + BETA * Math.abs(srtt - rtt);
      this._srtt = (1 - ALPHA) * srtt + ALPHA * rtt;
    }
    // RFC 6298 (2.2)/(2.3): "RTO <- SRTT + max (G, K*RTTVAR)"; (2.4) lower bound; (2.5) upper bound.
    this._rto = this.clamp(this._srtt + Math.max(this.g, K * this._rttvar));
    this._backoffs = 0;
  }

  /** The retransmission timer expired: RFC 6298 (5.5) "The host MUST set RTO <- RTO * 2 ("back off the timer")". */
  backoff(): void {
    // Counting stops mattering once the cap is reached; keep the count for the caller's retry limit.
    this._backoffs++;
  }

  /** Forget the backoff (e.g. new data was acknowledged without a usable sample). */
  resetBackoff(): void {
    this._backoffs = 0;
  }

  /**
   * Forget the measurements: the RTO returns to `initialRto`. RFC 6298 §5 (after (5.7)): "a TCP
   * implementation MAY clear SRTT and RTTVAR after backing off the timer multiple times as it
   * is likely that the current SRTT and RTTVAR are bogus"; the next sample is then taken per (2.2).
   */
  resetMeasurements(): void {
    this._srtt = undefined;
    this._rttvar = undefined;
    this._rto = this.clamp(this.initialRto);
  }

  private clamp(rto: number): number {
    // RFC 6298 (2.4) floor (minRto here) and (2.5) ceiling.
    return Math.min(Math.max(rto, this.minRto), this.maxRto);
  }
}
