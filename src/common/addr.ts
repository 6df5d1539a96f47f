/**
 * Address formatting and parsing for MAC (48-bit number) and IPv4 (uint32 number).
 * Inside the stack addresses are numbers; strings exist only at the edges (CLI, logs,
 * `pcap inspect`, configuration). CIDR parsing for configuration lives in `./cidr.ts`.
 */

export const MAC_BROADCAST = 0xffff_ffff_ffff;

export function formatMac(mac: number): string {
  const parts: string[] = [];
  for (let i = 5; i >= 0; i--) {
    const byte = Math.floor(mac / 2 ** (8 * i)) % 256;
    parts.push(byte.toString(16).padStart(2, "0"));
  }
  return parts.join(":");
}

/** Parse "aa:bb:cc:dd:ee:ff" (or with dashes); undefined if malformed. */
export function parseMac(s: string): number | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 6; i++) v = v * 256 + parseInt(m[i], 16);
  return v;
}

/** True for a multicast/broadcast MAC (I/G bit of the first octet). */
export function isMulticastMac(mac: number): boolean {
  return Math.floor(mac / 2 ** 40) % 2 === 1;
}

export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** Parse a dotted-quad IPv4 address; undefined if malformed. */
export function parseIpv4Address(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v >>> 0;
}
