/**
 * WireError: the value a codec's `parse` returns instead of throwing.
 *
 * Bad input is data, not an exception (ARCHITECTURE.md "Rules of the data path"): every
 * `parseX(bytes)` returns either a representation or a `WireError` naming the layer and the
 * reason, and the caller counts and drops it. Test with `instanceof WireError` or `isWireError`.
 */
export class WireError {
  constructor(
    /** Layer that failed: "eth", "arp", "ipv4", "icmp", "udp", "tcp", "dhcp", "dns", "pcap". */
    readonly layer: string,
    /** Short, stable reason, e.g. "truncated", "bad checksum", "bad version". */
    readonly reason: string,
  ) {}

  toString(): string {
    return `${this.layer}: ${this.reason}`;
  }
}

/** Result of a codec `parse`: the representation, or the reason it failed. */
export type Parsed<T> = T | WireError;

export function isWireError(x: unknown): x is WireError {
  return x instanceof WireError;
}
