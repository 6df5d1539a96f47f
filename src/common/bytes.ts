/**
 * Big-endian field access on plain byte arrays: the hot path's only way to read and write
 * header fields (ARCHITECTURE.md: byte indexing, no struct libraries, no per-call DataView).
 * Callers check lengths first; these helpers do not.
 */

export function getU16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function getU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function setU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function setU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** 48-bit MAC address stored in a JS number (exact: below 2^53). */
export function getMac(b: Uint8Array, o: number): number {
  return ((b[o] << 8) | b[o + 1]) * 0x1_0000_0000 + getU32(b, o + 2);
}

export function setMac(b: Uint8Array, o: number, mac: number): void {
  const hi = Math.floor(mac / 0x1_0000_0000);
  b[o] = hi >>> 8;
  b[o + 1] = hi;
  setU32(b, o + 2, mac >>> 0);
}

/** Copy `src` into `dst` at `o` unless it is already there (a payload emitted in place). */
export function placeBytes(dst: Uint8Array, o: number, src: Uint8Array): void {
  if (src.buffer === dst.buffer && src.byteOffset === dst.byteOffset + o) return;
  dst.set(src, o);
}

/** Compare two byte arrays by content. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
