/** Polling wait for integration tests (real I/O only; sans-I/O tests pass time explicitly). */
export async function until(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function collectFrames(ch: { setReceiver(r: (f: Uint8Array) => void): void }): Uint8Array[] {
  const got: Uint8Array[] = [];
  ch.setReceiver((f) => got.push(Uint8Array.from(f)));
  return got;
}
