/**
 * The docker guest's file tree before it becomes the system disk: listing, size, fixed times,
 * and a digest of its contents.
 *
 * `mkfs.ext4 -d` (e2fsprogs 1.47.0) copies each inode's times from the source tree, ctime
 * included (the time of extraction: no user can set it), and reads directories in the host
 * file system's order, so the disk's bytes differ between builds. What the guest sees is made
 * reproducible instead: times the builder's own changes would give (directories, files it
 * writes, links it makes) are set to a fixed epoch, and `treeDigest` (paths in byte order, type,
 * mode, owner, mtime, size, SHA-256 of contents or link target) goes into the manifest, which
 * is then the same for the same inputs.
 */

import { createHash } from "node:crypto";
import { lstatSync, lutimesSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** Every path under `dir` (relative), directories before their contents, in byte order. */
export function treePaths(dir: string, rel = "", out: string[] = []): string[] {
  const names = readdirSync(join(dir, rel)).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    out.push(r);
    if (lstatSync(join(dir, r)).isDirectory()) treePaths(dir, r, out);
  }
  return out;
}

/** Regular files under `dir` (relative paths). */
export function treeFiles(dir: string): string[] {
  return treePaths(dir).filter((p) => lstatSync(join(dir, p)).isFile());
}

/** Total size of the regular files under `dir`. */
export function treeBytes(dir: string): number {
  return treeFiles(dir).reduce((n, f) => n + lstatSync(join(dir, f)).size, 0);
}

/** Set atime and mtime of every directory, and of `paths` (relative), to `epoch` seconds (links themselves, not followed). */
export function fixTimes(dir: string, paths: string[], epoch: number): void {
  lutimesSync(dir, epoch, epoch);
  for (const p of treePaths(dir)) if (lstatSync(join(dir, p)).isDirectory()) lutimesSync(join(dir, p), epoch, epoch);
  for (const p of paths) lutimesSync(join(dir, p), epoch, epoch);
}

/** SHA-256 over the tree's paths, types, modes, owners, mtimes, sizes and contents. */
export function treeDigest(dir: string): string {
  const h = createHash("sha256");
  for (const p of treePaths(dir)) {
    const full = join(dir, p);
    const st = lstatSync(full);
    const kind = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "f" : "o";
    const body = kind === "f" ? createHash("sha256").update(readFileSync(full)).digest("hex") : kind === "l" ? readlinkSync(full) : "";
    h.update(`${kind} ${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)} ${kind === "f" ? st.size : 0} ${body}\n`);
  }
  return h.digest("hex");
}
