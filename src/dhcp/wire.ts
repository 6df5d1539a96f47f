/**
 * BOOTP/DHCP message codec: the fixed BOOTP header (RFC 951 §3; RFC 2131 §2 Figure 1 and
 * Table 1), the magic cookie and the options area (RFC 2131 §3, RFC 2132 §2-§9), with long
 * options split into and read back from several instances (RFC 3396 §5-§7), plus small
 * helpers for option values: address lists, integers, and the domain search list (RFC 3397).
 *
 * Two levels, as every codec in skiff (ARCHITECTURE.md "Two-level codecs"), though this one is on
 * the control path: `parseDhcp` never throws and returns a plain `DhcpRepr` whose option data
 * are copies (a server may keep them); `emitDhcp` writes into a caller's buffer of at least
 * `dhcpLen(repr)` bytes and zero-fills every byte it does not set.
 *
 * Not supported: option overload (option 52, RFC 2132 §9.3). An overloaded `sname`/`file`
 * field is read as a string, and option 52 is returned as an ordinary entry; options carried
 * inside `sname`/`file` are not decoded. skiff's server never sets it.
 */

import { getMac, getU32, setMac, setU16, setU32 } from "../common/bytes.js";
import { blob, decodeLayout, encodeLayout, latin1Text, struct, u16be, u32be, u8 } from "../common/layout.js";
import { WireError, type Parsed } from "../common/wire-error.js";

/** Fixed BOOTP header up to and including `file` (RFC 2131 §2). */
export const BOOTP_FIXED_LEN = 236;
/** RFC 2131 §3: the first four octets of the options field. */
export const DHCP_MAGIC_COOKIE = 0x63825363;
/** Minimum BOOTP message (RFC 951 §3 with its 64-byte vendor area; RFC 1542 §2.1). */
export const BOOTP_MIN_LEN = 300;

const OPTIONS_START = BOOTP_FIXED_LEN + 4;
const SNAME_LEN = 64;
const FILE_LEN = 128;
const CHADDR_LEN = 16;

/** Flags bit 15 (RFC 2131 §2, Figure 2). */
const BROADCAST_FLAG = 0x8000;

/** Values of option 53 (RFC 2132 §9.6). */
export const DhcpMessageType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;

/** Option codes skiff uses (RFC 2132 unless noted). */
export const DhcpOption = {
  Pad: 0, // §3.1
  SubnetMask: 1, // §3.3
  Router: 3, // §3.5
  DnsServers: 6, // §3.8
  HostName: 12, // §3.14
  DomainName: 15, // §3.17
  BroadcastAddress: 28, // §5.3
  InterfaceMtu: 26, // §5.1
  RequestedIp: 50, // §9.1
  LeaseTime: 51, // §9.2
  Overload: 52, // §9.3 (not supported, see above)
  MessageType: 53, // §9.6
  ServerId: 54, // §9.7
  ParameterList: 55, // §9.8
  Message: 56, // §9.9
  MaxMessageSize: 57, // §9.10
  RenewalTime: 58, // §9.11
  RebindingTime: 59, // §9.12
  ClientId: 61, // §9.14
  DomainSearch: 119, // RFC 3397
  End: 255, // §3.2
} as const;

export interface DhcpOptionEntry {
  code: number;
  data: Uint8Array;
}

export interface DhcpRepr {
  /** 1 BOOTREQUEST, 2 BOOTREPLY. */
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  /** Transaction id, uint32. */
  xid: number;
  secs: number;
  /** Flags bit 15 (RFC 2131 §2); the other flag bits must be zero and are ignored. */
  broadcast: boolean;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The first 6 bytes of chaddr as a 48-bit number: the MAC when htype 1 / hlen 6. */
  chaddr: number;
  /** Server host name, NUL-terminated in 64 bytes; one char per byte (latin1). */
  sname: string;
  /** Boot file name, NUL-terminated in 128 bytes; one char per byte (latin1). */
  file: string;
  /**
   * Options in wire order (Pad and End not included). A long option split into several
   * instances (RFC 3396) appears once per instance; `getOption` concatenates them.
   * Empty when the magic cookie is absent (plain BOOTP).
   */
  options: DhcpOptionEntry[];
}

/** The fixed BOOTP header's fields as buffer-layout reads and writes them: the flags word and the raw fixed-size fields. */
type FixedFields = Omit<DhcpRepr, "broadcast" | "chaddr" | "sname" | "file" | "options"> & { flags: number; chaddr: Buffer; sname: Buffer; file: Buffer };

/** RFC 2131 §2 Figure 1: 236 bytes, network byte order. */
const FIXED = struct<FixedFields>([
  u8("op"), u8("htype"), u8("hlen"), u8("hops"),
  u32be("xid"),
  u16be("secs"), u16be("flags"),
  u32be("ciaddr"), u32be("yiaddr"), u32be("siaddr"), u32be("giaddr"),
  blob(CHADDR_LEN, "chaddr"),
  blob(SNAME_LEN, "sname"),
  blob(FILE_LEN, "file"),
]);

/** `s` as a fixed field of `len` bytes, NUL-terminated and zero-filled (one latin1 byte per character). */
function fieldBytes(len: number, s: string, name: string): Buffer {
  if (s.length >= len) throw new RangeError(`dhcp: ${name} longer than ${len - 1} bytes`);
  const b = Buffer.alloc(len);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0xff) throw new RangeError(`dhcp: ${name} has a character that is not one latin1 byte`);
    b[i] = c;
  }
  return b;
}

/**
 * Parse a DHCP message (the UDP payload). Errors: "truncated" (shorter than the fixed header)
 * and "bad option" (an option's length runs past the end). A missing End option is tolerated.
 */
export function parseDhcp(bytes: Uint8Array): Parsed<DhcpRepr> {
  const n = bytes.length;
  if (n < BOOTP_FIXED_LEN) return new WireError("dhcp", "truncated");
  const options: DhcpOptionEntry[] = [];
  if (n >= OPTIONS_START && getU32(bytes, BOOTP_FIXED_LEN) === DHCP_MAGIC_COOKIE) {
    // RFC 2132 §2: code, length, data; Pad (§3.1) and End (§3.2) are single octets.
    let i = OPTIONS_START;
    while (i < n) {
      const code = bytes[i];
      if (code === DhcpOption.End) break;
      if (code === DhcpOption.Pad) {
        i++;
        continue;
      }
      if (i + 1 >= n) return new WireError("dhcp", "bad option");
      const len = bytes[i + 1];
      if (i + 2 + len > n) return new WireError("dhcp", "bad option");
      options.push({ code, data: bytes.slice(i + 2, i + 2 + len) });
      i += 2 + len;
    }
  }
  const f = decodeLayout(FIXED, bytes);
  return {
    op: f.op,
    htype: f.htype,
    hlen: f.hlen,
    hops: f.hops,
    xid: f.xid,
    secs: f.secs,
    broadcast: (f.flags & BROADCAST_FLAG) !== 0,
    ciaddr: f.ciaddr,
    yiaddr: f.yiaddr,
    siaddr: f.siaddr,
    giaddr: f.giaddr,
    chaddr: getMac(f.chaddr, 0),
    sname: latin1Text(f.sname),
    file: latin1Text(f.file),
    options,
  };
}

/** Wire bytes of one option entry: split into instances of at most 255 bytes (RFC 3396 §7). */
function optionWireLen(dataLen: number): number {
  const instances = dataLen === 0 ? 1 : Math.ceil(dataLen / 255);
  return 2 * instances + dataLen;
}

/** Message length: fixed header, cookie, options, End, padded to the 300-byte BOOTP minimum. */
export function dhcpLen(repr: DhcpRepr): number {
  let len = OPTIONS_START + 1;
  for (const o of repr.options) len += optionWireLen(o.data.length);
  return Math.max(len, BOOTP_MIN_LEN);
}

/**
 * Write the message at `buf[off]`; returns `dhcpLen(repr)`. Options go out in list order, an
 * entry longer than 255 bytes as consecutive instances (RFC 3396 §7), then End and zero
 * padding. Throws RangeError for Pad/End codes in the list or over-long sname/file.
 */
export function emitDhcp(repr: DhcpRepr, buf: Uint8Array, off = 0): number {
  const total = dhcpLen(repr);
  const chaddr = Buffer.alloc(CHADDR_LEN);
  setMac(chaddr, 0, repr.chaddr);
  const fixed: FixedFields = {
    op: repr.op,
    htype: repr.htype,
    hlen: repr.hlen,
    hops: repr.hops,
    xid: repr.xid,
    secs: repr.secs,
    flags: repr.broadcast ? BROADCAST_FLAG : 0,
    ciaddr: repr.ciaddr,
    yiaddr: repr.yiaddr,
    siaddr: repr.siaddr,
    giaddr: repr.giaddr,
    chaddr,
    sname: fieldBytes(SNAME_LEN, repr.sname, "sname"),
    file: fieldBytes(FILE_LEN, repr.file, "file"),
  };
  encodeLayout(FIXED, fixed, buf, off);
  setU32(buf, off + BOOTP_FIXED_LEN, DHCP_MAGIC_COOKIE);
  let o = off + OPTIONS_START;
  for (const { code, data } of repr.options) {
    if (code === DhcpOption.Pad || code === DhcpOption.End) {
      throw new RangeError(`dhcp: option code ${code} cannot carry data`);
    }
    let pos = 0;
    do {
      const chunk = Math.min(255, data.length - pos);
      buf[o] = code;
      buf[o + 1] = chunk;
      buf.set(data.subarray(pos, pos + chunk), o + 2);
      o += 2 + chunk;
      pos += chunk;
    } while (pos < data.length);
  }
  buf[o++] = DhcpOption.End;
  buf.fill(0, o, off + total);
  return total;
}

/**
 * The data of option `code`, all its instances concatenated in order (RFC 3396 §6); undefined
 * when absent. A single instance is returned as is, not copied.
 */
export function getOption(repr: DhcpRepr, code: number): Uint8Array | undefined {
  let first: Uint8Array | undefined;
  let total = 0;
  let count = 0;
  for (const o of repr.options) {
    if (o.code !== code) continue;
    first ??= o.data;
    total += o.data.length;
    count++;
  }
  if (count <= 1) return first;
  const out = new Uint8Array(total);
  let pos = 0;
  for (const o of repr.options) {
    if (o.code !== code) continue;
    out.set(o.data, pos);
    pos += o.data.length;
  }
  return out;
}

/** The DHCP message type (option 53, RFC 2132 §9.6), or undefined for plain BOOTP. */
export function messageType(repr: DhcpRepr): number | undefined {
  const d = getOption(repr, DhcpOption.MessageType);
  return d !== undefined && d.length >= 1 ? d[0] : undefined;
}

/** A list of IPv4 addresses, 4 bytes each (RFC 2132 §3.5 Router, §3.8 DNS, ...). */
export function ipListOption(ips: number[]): Uint8Array {
  const out = new Uint8Array(4 * ips.length);
  for (let i = 0; i < ips.length; i++) setU32(out, 4 * i, ips[i]);
  return out;
}

/** Addresses in an address-list option; trailing bytes short of a whole address are ignored. */
export function readIpList(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= data.length; i += 4) out.push(getU32(data, i));
  return out;
}

/** A 32-bit value (lease and renewal times, RFC 2132 §9.2/§9.11/§9.12; addresses). */
export function u32Option(v: number): Uint8Array {
  const out = new Uint8Array(4);
  setU32(out, 0, v);
  return out;
}

/** A 16-bit value (interface MTU, RFC 2132 §5.1; maximum message size, §9.10). */
export function u16Option(v: number): Uint8Array {
  const out = new Uint8Array(2);
  setU16(out, 0, v);
  return out;
}

const MAX_LABEL = 63;
/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire. */
const MAX_NAME_WIRE = 255;
const POINTER_LIMIT = 0x4000;

/**
 * Domain search list (RFC 3397 §2): names in DNS wire form (RFC 1035 §3.1), compressed with
 * pointers (RFC 1035 §4.1.4) whose offsets count from the start of the option data. A
 * trailing dot is accepted. Throws RangeError for an empty or over-long label or name.
 */
export function encodeDomainSearch(domains: string[]): Uint8Array {
  const out: number[] = [];
  /** Offset of every suffix already written, keyed by its dotted form (exact case, so names decode as given). */
  const suffixes = new Map<string, number>();
  for (const domain of domains) {
    const name = domain.endsWith(".") ? domain.slice(0, -1) : domain;
    const labels = name === "" ? [] : name.split(".");
    let wire = 1;
    for (const label of labels) {
      if (label.length === 0 || label.length > MAX_LABEL) throw new RangeError(`dhcp: bad label in ${JSON.stringify(domain)}`);
      wire += 1 + label.length;
    }
    if (wire > MAX_NAME_WIRE) throw new RangeError(`dhcp: domain name too long: ${domain}`);
    let k = 0;
    for (; k < labels.length; k++) {
      const suffix = labels.slice(k).join(".");
      const at = suffixes.get(suffix);
      if (at !== undefined) {
        out.push(0xc0 | (at >>> 8), at & 0xff);
        break;
      }
      if (out.length < POINTER_LIMIT) suffixes.set(suffix, out.length);
      const label = labels[k];
      out.push(label.length);
      for (let i = 0; i < label.length; i++) {
        const c = label.charCodeAt(i);
        if (c > 0xff) throw new RangeError(`dhcp: non-latin1 character in ${JSON.stringify(domain)}`);
        out.push(c);
      }
    }
    if (k === labels.length) out.push(0);
  }
  return Uint8Array.from(out);
}

/**
 * Decode a domain search list (RFC 3397 §2; the concatenated option data). Names are returned
 * without the trailing dot. Pointers must point backwards (which also rules out loops); label
 * type bits 01/10 (RFC 1035 §4.1.4 reserved) are an error.
 */
export function decodeDomainSearch(data: Uint8Array): string[] | WireError {
  const names: string[] = [];
  let i = 0;
  while (i < data.length) {
    let labels = "";
    let wire = 0;
    let p = i;
    let next = -1; // where the next name starts once a pointer has been followed
    for (;;) {
      if (p >= data.length) return new WireError("dhcp", "bad domain search");
      const len = data[p];
      if (len === 0) {
        if (next < 0) next = p + 1;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        if (p + 1 >= data.length) return new WireError("dhcp", "bad domain search");
        const target = ((len & 0x3f) << 8) | data[p + 1];
        if (target >= p) return new WireError("dhcp", "bad domain search");
        if (next < 0) next = p + 2;
        p = target;
        continue;
      }
      if (len > MAX_LABEL || p + 1 + len > data.length) return new WireError("dhcp", "bad domain search");
      wire += 1 + len;
      if (wire + 1 > MAX_NAME_WIRE) return new WireError("dhcp", "bad domain search");
      if (labels !== "") labels += ".";
      for (let k = p + 1; k <= p + len; k++) labels += String.fromCharCode(data[k]);
      p += 1 + len;
    }
    names.push(labels);
    i = next;
  }
  return names;
}
