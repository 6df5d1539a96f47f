/**
 * The soak test's download: 1 MiB of a fixed xorshift pattern, so both sides can build it and
 * compare hashes without sending it over a side channel.
 */
import { createHash } from "node:crypto";

export const BLOB_LEN = 1 << 20;

export function blobBytes(): Uint8Array {
  const b = new Uint8Array(BLOB_LEN);
  let x = 0x1234_5678;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export function blobSha256(): string {
  return createHash("sha256").update(blobBytes()).digest("hex");
}
