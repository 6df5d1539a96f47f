/**
 * The network's clock as every layer sees it: milliseconds (fractional allowed) on one
 * monotonic clock, and one-shot callbacks on that clock. A network's `NetworkStack` owns the
 * one implementation that runs (`SharedTimers` in stack/timers.ts: one heap, one `setTimeout`,
 * `performance.now()` unless a test injects a clock), so per-connection and per-query time
 * limits in layers that may not import stack/ (dns/) take this interface and a test drives
 * them all by advancing the stack's clock and calling `stack.timers.run()`
 * (ARCHITECTURE.md "Rules of the data path": one driver, tests pass time explicitly).
 */

/** A pending one-shot callback. Cancelling twice, or after it fired, does nothing. */
export interface Timeout {
  cancel(): void;
}

export interface NetworkClock {
  /** Milliseconds on the network's clock. */
  now(): number;
  /** Call `fn` once, `ms` from now, unless cancelled first. */
  after(ms: number, fn: () => void): Timeout;
}

/**
 * Node's own timers on `performance.now()`: only for a component used without a network
 * (a standalone resolver in a test or a tool); a network passes its stack's timers.
 */
export const processClock: NetworkClock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};
