/**
 * Helpers of the file-event end-to-end tests: lines of output (a guest console, a watcher) with
 * the time each arrived and a way to wait for one, and a suite's guest image and temporary
 * directory.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestImageOrSkip, pinnedImageCache } from "./qemu.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** In a describe(): the guest image (its pinned cache directory) and a temporary directory, removed after the suite. */
export function guestSuite(prefix: string): { cacheDir: string; dir: string } {
  const s = { cacheDir: "", dir: "" };
  before(function () {
    s.cacheDir = pinnedImageCache(guestImageOrSkip(this));
    s.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => {
    if (s.dir) rmSync(s.dir, { recursive: true, force: true });
    if (s.cacheDir) rmSync(s.cacheDir, { recursive: true, force: true });
  });
  return s;
}
/** Lines seen so far, with the time each arrived, and a way to wait for one. */
export class Lines {
  readonly seen: { line: string; at: number }[] = [];
  private waiters: { re: RegExp; after: number; resolve: (at: number) => void }[] = [];
  push(line: string): void {
    const at = performance.now();
    this.seen.push({ line, at });
    this.waiters = this.waiters.filter((w) => {
      if (w.re.test(line) && at >= w.after) return void w.resolve(at);
      return true;
    });
  }
  /** The time a line matching `re` arrived at or after `after` (waits up to `ms`). */
  wait(re: RegExp, after: number, ms: number): Promise<number> {
    const hit = this.seen.find((l) => l.at >= after && re.test(l.line));
    if (hit) return Promise.resolve(hit.at);
    return new Promise((resolve, reject) => {
      const w = { re, after, resolve: (at: number) => (clearTimeout(t), resolve(at)) };
      const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; lines:\n${this.seen.map((l) => l.line).join("\n")}`)), ms);
      this.waiters.push(w);
    });
  }
  count(re: RegExp): number {
    return this.seen.filter((l) => re.test(l.line)).length;
  }
}

/**
 * The host's side of a host → guest test: once the guest's watcher prints WATCHING, run `steps`
 * (the host's changes and the waits for the guest's lines), then create `doneFile` (the guest
 * script's signal to end). Resolves with the failure, if any (thrown once the VM has ended).
 */
export async function afterWatching(lines: Lines, doneFile: string, steps: () => Promise<void>): Promise<unknown> {
  await lines.wait(/^WATCHING/, 0, 300_000);
  await sleep(500);
  try {
    await steps();
    return undefined;
  } catch (e) {
    return e;
  } finally {
    writeFileSync(doneFile, "");
  }
}
