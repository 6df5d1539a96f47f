/**
 * fast-check arbitraries shared by the codec property tests.
 */
import fc from "fast-check";

export const mac = () => fc.integer({ min: 0, max: 0xffff_ffff_ffff });
export const ipv4 = () => fc.integer({ min: 0, max: 0xffff_ffff });
export const u8 = () => fc.integer({ min: 0, max: 0xff });
export const u16 = () => fc.integer({ min: 0, max: 0xffff });
export const u32 = () => fc.integer({ min: 0, max: 0xffff_ffff });
export const bytes = (maxLength = 64) => fc.uint8Array({ maxLength });

/**
 * Ways to damage a valid encoding: truncate it, flip bits in it, or append junk.
 * Used to show that `parse` returns a value (a representation or a WireError) and never throws.
 */
export function damaged(valid: Uint8Array, seed: number): Uint8Array {
  const r = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % Math.max(1, n);
  };
  const out = Uint8Array.from(valid);
  switch (r(3)) {
    case 0:
      return out.subarray(0, r(out.length + 1));
    case 1: {
      const flips = 1 + r(4);
      for (let i = 0; i < flips && out.length > 0; i++) out[r(out.length)] ^= 1 << r(8);
      return out;
    }
    default: {
      const junk = new Uint8Array(r(16));
      for (let i = 0; i < junk.length; i++) junk[i] = r(256);
      const joined = new Uint8Array(out.length + junk.length);
      joined.set(out);
      joined.set(junk, out.length);
      return joined;
    }
  }
}

/** `len` pseudo-random bytes from a 32-bit xorshift seeded with `seed` (0 counts as 1): a byte stream that is the same on every run. */
export function xorshiftBytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
