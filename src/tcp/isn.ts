/**
 * Initial sequence numbers (RFC 6528): a clock plus a keyed hash of the connection's 4-tuple,
 * so a blind attacker cannot guess the ISN of a connection and consecutive incarnations of the
 * same 4-tuple still get increasing sequence numbers.
 *
 * Read first:
 *  - RFC 6528 §3 "Proposed Initial Sequence Number (ISN) Generation Algorithm";
 *  - RFC 9293 §3.4.1 "Initial Sequence Number Selection" (which requires RFC 6528's algorithm:
 *    "TCP implementations MUST use the above type of "clock" for clock-driven selection of
 *    initial sequence numbers", and "SHOULD generate their Initial Sequence Numbers with the
 *    expression ... ISN = M + F(localip, localport, remoteip, remoteport, secretkey)").
 *
 * No clock is read here: the caller passes `nowMs` (the stack's monotonic time). Hashing uses
 * node:crypto; it runs once per connection, never per packet.
 */

import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { setU16, setU32 } from "../common/bytes.js";

/** RFC 6528 §3: "M is the 4 microsecond timer": 250 ticks per millisecond. */
export const ISN_TICKS_PER_MS = 250;

/** RFC 6528 §3 ISN generator, keyed by a secret chosen once (per process by default). */
export class IsnGenerator {
  private readonly secret: Uint8Array;
  /** Reused input block: the 4-tuple (12 bytes). */
  private readonly tuple = new Uint8Array(12);

  /**
   * `secret`: the key of F. RFC 6528 §3: "secretkey is a secret key that is not known to the
   * attacker"; by default 16 random bytes from node:crypto. The bytes are copied.
   */
  constructor(secret?: Uint8Array) {
    this.secret = secret === undefined ? new Uint8Array(randomBytes(16)) : Uint8Array.from(secret);
  }

  /**
   * ISN for a connection with the given addresses (uint32) and ports at time `nowMs`:
   * RFC 6528 §3, "ISN = M + F(localip, localport, remoteip, remoteport, secretkey)", with
   * M = floor(nowMs * 250) (a 4 µs clock) and F the first 32 bits of SHA-256 over the tuple and
   * the key ("F() MUST NOT be computable from the outside"; RFC 6528 suggests MD5, any
   * cryptographic hash will do). The result is a uint32.
   */
  next(localIp: number, localPort: number, remoteIp: number, remotePort: number, nowMs: number): number {
    const t = this.tuple;
    setU32(t, 0, localIp >>> 0);
    setU16(t, 4, localPort & 0xffff);
    setU32(t, 6, remoteIp >>> 0);
    setU16(t, 10, remotePort & 0xffff);
    const digest = createHash("sha256").update(t).update(this.secret).digest();
    const f = digest.readUInt32BE(0);
    // M modulo 2^32: exact for any nowMs up to 2^53 / 250 ms (about 1,140 years).
    const m = Math.floor(nowMs * ISN_TICKS_PER_MS) % 0x1_0000_0000;
    return (m + f) >>> 0;
  }
}

/** Random bytes drawn 4 KiB at a time: one crypto call per 1,024 values instead of one each. */
const POOL = new Uint8Array(4096);
let poolAt = POOL.length;

/**
 * A uint32 from node:crypto's generator (e.g. a connection's timestamp offset, RFC 7323 §5.4),
 * served from a pool refilled with `randomFillSync`.
 */
export function randomU32(): number {
  if (poolAt + 4 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const v = ((POOL[poolAt] << 24) | (POOL[poolAt + 1] << 16) | (POOL[poolAt + 2] << 8) | POOL[poolAt + 3]) >>> 0;
  poolAt += 4;
  return v;
}
