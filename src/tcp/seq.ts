/**
 * 32-bit sequence-number arithmetic: the only place in skiff where TCP sequence numbers (and
 * other modular uint32 counters such as tsVal/tsEcr) are added, subtracted or compared.
 *
 * Read first:
 *  - RFC 9293 §3.4 "Sequence Numbers" (modular arithmetic, the comparisons the state machine
 *    needs, the segment acceptance test);
 *  - RFC 1982 §3 "Serial Number Arithmetic" (the comparison rule and its undefined case);
 *  - RFC 7323 §2.3 (why a window never exceeds 2^30, so distances that matter stay far below 2^31).
 *
 * RFC 9293 §3.4: "the actual sequence number space is finite, though very large. This space
 * ranges from 0 to 2^32 - 1. Since the space is finite, all arithmetic dealing with sequence
 * numbers must be performed modulo 2^32."
 *
 * Values are plain JS numbers holding uint32 (`>>> 0`). Comparisons take the signed 32-bit
 * difference (`| 0`), as RFC 1982 §3.2 defines them for SERIAL_BITS = 32: a is below b when
 * b - a, taken modulo 2^32, lies in (0, 2^31). Two numbers exactly 2^31 apart are not ordered
 * by RFC 1982 ("undefined"); here `seqSub` returns -2^31 for them in both directions, so each
 * is "less than" the other: callers never compare numbers that far apart (a TCP window is at
 * most 2^30, RFC 7323 §2.3).
 */

/** 2^32, the size of the sequence space. */
export const SEQ_SPACE = 0x1_0000_0000;
/** Largest uint32 sequence number. */
export const SEQ_MAX = 0xffff_ffff;

/** `a + n` modulo 2^32 (`n` may be negative). */
export function seqAdd(a: number, n: number): number {
  // RFC 9293 §3.4: arithmetic modulo 2^32. `n` may be any safe integer: `>>> 0` reduces it.
  return (a + n) >>> 0;
}

/**
 * Signed distance `a - b` as an int32, `((a - b) | 0)`: in [-2^31, 2^31), positive when `a` is
 * after `b` (RFC 1982 §3.2). Exactly 2^31 apart gives -2^31 in both directions.
 */
export function seqSub(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a < b` in sequence space (RFC 1982 §3.2: `0 < (b - a) mod 2^32 < 2^31`). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** `a <= b` in sequence space. */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** `a > b` in sequence space. */
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** `a >= b` in sequence space. */
export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of `a` and `b` in sequence space. */
export function seqMax(a: number, b: number): number {
  return ((a - b) | 0) >= 0 ? a : b;
}

/** The earlier of `a` and `b` in sequence space. */
export function seqMin(a: number, b: number): number {
  return ((a - b) | 0) <= 0 ? a : b;
}

/**
 * `start <= x < end` in sequence space: the offset of `x` from `start` (unsigned, modulo 2^32) is
 * below the length of the range (unsigned). This is the form of the RFC 9293 §3.10.7.4
 * acceptance test "RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND"; a range whose ends are equal is
 * empty, and ranges up to 2^32 - 1 long are handled (no half-space limit, unlike `seqLt`).
 */
export function seqInRange(x: number, start: number, end: number): boolean {
  return ((x - start) >>> 0) < ((end - start) >>> 0);
}

/**
 * Unsigned length of the range [start, end) modulo 2^32, for ends known to be in order (a
 * window, a SACK block): `seqLen(a, a) === 0`.
 */
export function seqLen(start: number, end: number): number {
  return (end - start) >>> 0;
}
