/** The micro-benchmarks' timer (bench/micro.ts, bench/isolation.ts): ns per call, median of 5 rounds. */

/** Run `fn` for about `ms` milliseconds after `warmup` calls; returns ns per call (median of 5). */
export function timeIt(fn: () => void, ms = 300, warmup = 2000): number {
  for (let i = 0; i < warmup; i++) fn();
  const results: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    const deadline = t0 + BigInt(ms * 1e6) / 5n;
    let t = t0;
    while (t < deadline) {
      for (let i = 0; i < 100; i++) fn();
      n += 100;
      t = process.hrtime.bigint();
    }
    results.push(Number(t - t0) / n);
  }
  results.sort((a, b) => a - b);
  return results[2];
}
