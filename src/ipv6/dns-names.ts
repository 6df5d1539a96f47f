/**
 * Domain names in DNS wire format without compression (RFC 1035 §3.1), as the IPv6
 * configuration options carry them: the NDP DNS Search List option (RFC 8106 §5.2) and the
 * DHCPv6 Domain Search List option (RFC 3646 §4; RFC 8415 §10 "Representation and Use of
 * Domain Names"). Shared by `./ndp-options.ts` and `./dhcpv6.ts`.
 *
 * Names are returned without the trailing dot; only printable ASCII labels without dots are
 * accepted (labels are letters, digits and hyphens in practice, RFC 1035 §2.3.1), so a name
 * read back prints as it was sent. The root name cannot be written (in a padded list it would
 * read back as padding).
 */

/** Wire length of `names` (each: its labels with their length bytes, and the final zero). */
export function domainNamesLen(names: readonly string[]): number {
  let n = 0;
  for (const d of names) n += d.length + 2;
  return n;
}

/**
 * Read names from `b[start, end)`. With `zeroPadded`, a zero byte where a name would start
 * begins padding, and everything after it must be zero (RFC 8106 §5.2); without, the names must
 * fill the range exactly. Undefined when malformed: a label over 63 bytes or past the end (a
 * compression pointer is one), a name over 255 bytes, a character outside 0x21..0x7e or a dot,
 * non-zero padding.
 */
export function readDomainNames(b: Uint8Array, start: number, end: number, zeroPadded: boolean): string[] | undefined {
  const out: string[] = [];
  let i = start;
  while (i < end) {
    if (b[i] === 0) {
      if (!zeroPadded) return undefined;
      for (let j = i; j < end; j++) if (b[j] !== 0) return undefined;
      break;
    }
    const labels: string[] = [];
    let nameLen = 0;
    for (;;) {
      if (i >= end) return undefined;
      const l = b[i];
      if (l === 0) {
        i++;
        break;
      }
      if (l > 63 || i + 1 + l > end) return undefined;
      nameLen += l + 1;
      if (nameLen > 254) return undefined;
      let label = "";
      for (let j = i + 1; j <= i + l; j++) {
        const ch = b[j];
        if (ch <= 0x20 || ch >= 0x7f || ch === 0x2e) return undefined;
        label += String.fromCharCode(ch);
      }
      labels.push(label);
      i += 1 + l;
    }
    out.push(labels.join("."));
  }
  return out;
}

/**
 * Write `names` at `buf[at]`; returns the offset after them. Throws RangeError (a programmer
 * error) for a name that cannot be written (empty, over 253 characters, an empty or over-long
 * label, a character outside 0x21..0x7e).
 */
export function writeDomainNames(names: readonly string[], buf: Uint8Array, at: number): number {
  for (const name of names) {
    if (name.length < 1 || name.length > 253) throw new RangeError(`bad domain name "${name}"`);
    for (const label of name.split(".")) {
      if (label.length < 1 || label.length > 63 || !/^[\x21-\x2d\x2f-\x7e]+$/.test(label)) {
        throw new RangeError(`bad domain name "${name}"`);
      }
      buf[at++] = label.length;
      for (let k = 0; k < label.length; k++) buf[at++] = label.charCodeAt(k);
    }
    buf[at++] = 0;
  }
  return at;
}
