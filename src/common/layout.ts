/**
 * Declarative layouts of fixed control-plane structures (the vmnet handshake, the pcap file
 * header, the BOOTP fixed header) with `buffer-layout`: each structure is one table of named,
 * sized, ordered fields instead of a column of offsets. Never for per-packet headers: a
 * buffer-layout decode costs ~220 ns against ~8 ns for DataView or byte indexing (measured for
 * an IPv4 header), so Ethernet, IPv4, ICMP, UDP, TCP and pcap record headers stay hand-written.
 *
 * `decodeLayout` / `encodeLayout` take the codecs' `Uint8Array`s (viewed as a Buffer without a
 * copy). Fixed-size text fields (`latin1`) are NUL-padded Latin-1 strings.
 */

import BufferLayout from "buffer-layout";

export type Layout<T> = BufferLayout.Layout<T>;
export const { u8, u16, u32, u16be, u32be, blob, struct } = BufferLayout;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Decode `layout` at `off`; the caller has checked that `b` holds `layout.span` bytes from there. */
export function decodeLayout<T>(layout: Layout<T>, b: Uint8Array, off = 0): T {
  return layout.decode(asBuffer(b), off);
}

/** Encode `value` at `off` (the caller has checked the room); returns `layout.span`. */
export function encodeLayout<T>(layout: Layout<T>, value: T, b: Uint8Array, off = 0): number {
  layout.encode(value, asBuffer(b), off);
  return layout.span;
}

/** A fixed-size field holding Latin-1 text, NUL-padded: its text up to the first NUL. */
export function latin1Text(field: Uint8Array): string {
  let s = "";
  for (let i = 0; i < field.length && field[i] !== 0; i++) s += String.fromCharCode(field[i]);
  return s;
}

/** All of a fixed-size field as Latin-1 (NULs included), for opaque fields. */
export function latin1All(field: Uint8Array): string {
  let s = "";
  for (let i = 0; i < field.length; i++) s += String.fromCharCode(field[i]);
  return s;
}

/** `s` as a `len`-byte field: one byte per character (low 8 bits), cut at `len`, NUL-padded. */
export function latin1Field(s: string, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len && i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}
