/**
 * ext4 disk images made on the host with e2fsprogs' `mkfs.ext4` (Debian package `e2fsprogs`),
 * so the guest needs no mkfs of its own and its first boot does no formatting:
 *
 * - the read-only system disk, populated from a directory (`mkfs.ext4 -d DIR`), with a fixed
 *   UUID and directory-hash seed derived from the image key and a fixed creation time
 *   (`E2FSPROGS_FAKE_TIME`), no journal and no reserved blocks;
 * - the persistent data disk (/var/lib/docker): a sparse file of the requested size, formatted
 *   once when the state directory has none (`mkfs.ext4 -F` of the sparse file with lazy inode
 *   table and journal initialisation: only the metadata blocks are written, so a 64 GiB disk
 *   starts at ~5 MB on the host).
 *
 * Files are created with O_EXCL|O_NOFOLLOW and mode 0600 (never through a planted link).
 */

import { execFileSync } from "node:child_process";
import { closeSync, constants, ftruncateSync, openSync, rmSync } from "node:fs";
import { VmSetupError } from "../vm/image.js";

function mkfs(args: string[], env: NodeJS.ProcessEnv = process.env): void {
  try {
    execFileSync("mkfs.ext4", args, { stdio: ["ignore", "pipe", "pipe"], env, encoding: "utf8" });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new VmSetupError("mkfs.ext4 not found: install the Debian package e2fsprogs");
    throw new VmSetupError(`mkfs.ext4 failed: ${(err.stderr ?? err.message).trim().split("\n").pop()}`);
  }
}

/** Create `path` (must not exist) as a sparse file of `sizeMiB` MiB, mode 0600. */
function createSparse(path: string, sizeMiB: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    ftruncateSync(fd, sizeMiB * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
}

/** A UUID-shaped string from 32 hex digits of `hex`. */
export function uuidFrom(hex: string): string {
  const h = hex.padEnd(32, "0").slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The read-only system disk holding `dir`'s tree (`seedHex`: the image key, for UUID and hash seed). */
export function makeSystemDisk(path: string, dir: string, sizeMiB: number, seedHex: string): void {
  createSparse(path, sizeMiB);
  const uuid = uuidFrom(seedHex);
  try {
    mkfs(["-F", "-q", "-L", "skiff-system", "-U", uuid, "-E", `hash_seed=${uuid},root_owner=0:0`, "-O", "^has_journal", "-m", "0", "-I", "256", "-d", dir, path], { ...process.env, E2FSPROGS_FAKE_TIME: "1" });
  } catch (e) {
    rmSync(path, { force: true });
    throw e;
  }
}

/** The persistent data disk: `sizeMiB` MiB sparse, ext4 with a journal. */
export function makeDataDisk(path: string, sizeMiB: number): void {
  createSparse(path, sizeMiB);
  try {
    // Inode tables and journal left unwritten (the guest mounts with noinit_itable): a 64 GiB
    // disk starts at ~5 MB on the host instead of ~520 MB.
    mkfs(["-F", "-q", "-L", "skiff-docker", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", path]);
  } catch (e) {
    rmSync(path, { force: true });
    throw e;
  }
}
