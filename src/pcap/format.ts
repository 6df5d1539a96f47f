/**
 * Classic libpcap capture file format: constants and the two fixed headers.
 *
 * Implements draft-ietf-opsawg-pcap ("PCAP Capture File Format"), section 4 (File Header)
 * and section 5 (Packet Record); pcap-savefile(5) describes the same layout. pcapng
 * (draft-ietf-opsawg-pcapng) is not read: its Section Header Block is recognised only so the
 * error can say how to convert it.
 *
 * A file is written in the byte order of the machine that wrote it; the magic number tells
 * which (section 4: "the Magic Number ... is used to detect the byte order"), and the same
 * order holds for every field of every record. The magic also selects the timestamp unit:
 * 0xa1b2c3d4 for microseconds, 0xa1b23c4d for nanoseconds.
 *
 * Header layout (24 bytes):            Record header layout (16 bytes):
 *    0  magic            u32              0  timestamp seconds          u32
 *    4  major version    u16              4  timestamp µs or ns         u32
 *    6  minor version    u16              8  captured packet length     u32
 *    8  reserved1 (thiszone, 0) u32      12  original packet length     u32
 *   12  reserved2 (sigfigs, 0)  u32
 *   16  snaplen          u32
 *   20  FCS len, P bit, link type u32
 *
 * The file header (one per file) is declared with buffer-layout (src/common/layout.ts), in both
 * byte orders. Record headers come once per packet, so they are read and written with the small
 * endian-aware helpers below, never a struct library (ARCHITECTURE.md "Hot path").
 */

import { getU32, setU32 } from "../common/bytes.js";
import { decodeLayout, encodeLayout, struct, u16, u16be, u32, u32be } from "../common/layout.js";
import { WireError, type Parsed } from "../common/wire-error.js";

export const PCAP_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

/** Section 4: magic for microsecond timestamps. */
export const PCAP_MAGIC_MICRO = 0xa1b2c3d4;
/** Section 4: magic for nanosecond timestamps. */
export const PCAP_MAGIC_NANO = 0xa1b23c4d;
/** pcapng Section Header Block type; a palindrome, so the same in both byte orders. */
export const PCAPNG_BLOCK_TYPE_SHB = 0x0a0d0d0a;

/** Section 4: the current version is 2.4. */
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;

/** LINKTYPE_ETHERNET: IEEE 802.3 Ethernet, no FCS (the only link type skiff writes). */
export const LINKTYPE_ETHERNET = 1;

/**
 * Largest record skiff writes or accepts: 256 KiB, libpcap's MAXIMUM_SNAPLEN. A captured
 * length above it marks a corrupt file (no Ethernet frame comes near it).
 */
export const PCAP_MAX_SNAPLEN = 262_144;

/** The file header, as read. */
export interface PcapFileHeader {
  /** Link type (low 16 bits of the last field, section 4 "LinkType"); 1 = Ethernet. */
  linkType: number;
  /** Snapshot length as recorded in the file (may be 0 or huge in odd files). */
  snaplen: number;
  /** True when record timestamps carry nanoseconds (magic 0xa1b23c4d). */
  nanosecond: boolean;
  version: { major: number; minor: number };
  /** Byte order of every field of the file. */
  littleEndian: boolean;
  /**
   * Bytes of frame check sequence at the end of each packet when the header's P bit is set
   * (section 4: "FCS len" counts 16-bit words); 0 otherwise.
   */
  fcsLen: number;
}

/** What the writer puts in a file header. */
export interface PcapHeaderRepr {
  linkType: number;
  snaplen: number;
  nanosecond: boolean;
}

/** One record header; `tsFrac` is in the file's unit (µs or ns). */
export interface PcapRecordRepr {
  tsSec: number;
  tsFrac: number;
  capturedLength: number;
  originalLength: number;
}

/** The file header's fields (section 4), as buffer-layout reads and writes them. */
interface HeaderFields {
  magic: number;
  major: number;
  minor: number;
  /** reserved1 (thiszone in old files): 0 */
  reserved1: number;
  /** reserved2 (sigfigs in old files): 0 */
  reserved2: number;
  snaplen: number;
  /** FCS len, P bit, link type. */
  linkField: number;
}

const headerLayout = (le: boolean) =>
  struct<HeaderFields>(
    le
      ? [u32("magic"), u16("major"), u16("minor"), u32("reserved1"), u32("reserved2"), u32("snaplen"), u32("linkField")]
      : [u32be("magic"), u16be("major"), u16be("minor"), u32be("reserved1"), u32be("reserved2"), u32be("snaplen"), u32be("linkField")],
  );
const HEADER_LE = headerLayout(true);
const HEADER_BE = headerLayout(false);

/** Little-endian u32 read. */
export function getU32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** Little-endian u32 write. */
export function setU32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** u32 in the file's byte order. */
export function getU32x(b: Uint8Array, o: number, littleEndian: boolean): number {
  return littleEndian ? getU32le(b, o) : getU32(b, o);
}

function setU32x(b: Uint8Array, o: number, v: number, littleEndian: boolean): void {
  if (littleEndian) setU32le(b, o, v);
  else setU32(b, o, v);
}

/**
 * Parse the 24-byte file header. Never throws. Errors (layer "pcap"): "truncated header",
 * a pcapng hint, "not a pcap file (magic 0x…)", "unsupported version X.Y".
 */
export function parsePcapHeader(bytes: Uint8Array): Parsed<PcapFileHeader> {
  if (bytes.length >= 4 && getU32(bytes, 0) === PCAPNG_BLOCK_TYPE_SHB) {
    return new WireError("pcap", "pcapng is not supported; convert with editcap -F pcap");
  }
  if (bytes.length < PCAP_HEADER_LEN) return new WireError("pcap", "truncated header");
  // Section 4: the magic, read big-endian, is one of the two values when the file is
  // big-endian, and one of their byte swaps when it is little-endian.
  const be = getU32(bytes, 0);
  const le = getU32le(bytes, 0);
  let littleEndian: boolean;
  let nanosecond: boolean;
  if (be === PCAP_MAGIC_MICRO || be === PCAP_MAGIC_NANO) {
    littleEndian = false;
    nanosecond = be === PCAP_MAGIC_NANO;
  } else if (le === PCAP_MAGIC_MICRO || le === PCAP_MAGIC_NANO) {
    littleEndian = true;
    nanosecond = le === PCAP_MAGIC_NANO;
  } else {
    return new WireError("pcap", `not a pcap file (magic 0x${be.toString(16).padStart(8, "0")})`);
  }
  const { major, minor, snaplen, linkField } = decodeLayout(littleEndian ? HEADER_LE : HEADER_BE, bytes);
  // Section 4: major 2, minor 4. 2.3 differs only in a libpcap bug fixed long ago (the record
  // layout is the same), so it is accepted; anything else is refused.
  if (major !== PCAP_VERSION_MAJOR || (minor !== 4 && minor !== 3)) {
    return new WireError("pcap", `unsupported version ${major}.${minor}`);
  }
  // Section 4: bits 0-15 LinkType; bit 26 P ("FCS len present"); bits 28-31 FCS len in
  // 16-bit words (libpcap's LT_FCS_LENGTH_PRESENT / LT_FCS_LENGTH).
  const fcsLen = linkField & 0x0400_0000 ? (linkField >>> 28) * 2 : 0;
  return {
    linkType: linkField & 0xffff,
    snaplen,
    nanosecond,
    version: { major, minor },
    littleEndian,
    fcsLen,
  };
}

/** Write the 24-byte file header (version 2.4, reserved fields 0); returns bytes written. */
export function emitPcapHeader(
  repr: PcapHeaderRepr,
  buf: Uint8Array,
  off = 0,
  littleEndian = true,
): number {
  const fields: HeaderFields = {
    magic: repr.nanosecond ? PCAP_MAGIC_NANO : PCAP_MAGIC_MICRO,
    major: PCAP_VERSION_MAJOR,
    minor: PCAP_VERSION_MINOR,
    reserved1: 0,
    reserved2: 0,
    snaplen: repr.snaplen,
    linkField: repr.linkType & 0xffff,
  };
  return encodeLayout(littleEndian ? HEADER_LE : HEADER_BE, fields, buf, off);
}

/** Section 5: write one 16-byte record header; returns bytes written. */
export function emitPcapRecordHeader(
  repr: PcapRecordRepr,
  buf: Uint8Array,
  off = 0,
  littleEndian = true,
): number {
  setU32x(buf, off, repr.tsSec, littleEndian);
  setU32x(buf, off + 4, repr.tsFrac, littleEndian);
  setU32x(buf, off + 8, repr.capturedLength, littleEndian);
  setU32x(buf, off + 12, repr.originalLength, littleEndian);
  return PCAP_RECORD_HEADER_LEN;
}
