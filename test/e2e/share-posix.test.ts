/**
 * End to end (issue 15, Tests): the guest kernel's 9p client on skiff's share, checked the way a
 * file system is checked, and compared with its peers on the same guest kernel under TCG.
 *  - Conformance: test/guest/posix-check.c (written for skiff from the POSIX and Linux man-page
 *    text: open, create/unlink, mkdir, rmdir, rename with its error cases, link, symlink,
 *    truncate, chmod, chown, utimensat, user xattrs, fcntl and flock locks, a 100,000-entry
 *    readdir with telldir/seekdir, unlinked-but-open files, O_APPEND, O_EXCL, permissions as
 *    owner, special files) run over skiff's share, QEMU's virtio-9p and diod over QEMU's user
 *    network (test/support/share-backends.ts): skiff must pass at least as many checks as the
 *    better of the two. The three counts and every failing check are printed.
 *  - Data integrity: test/guest/fsx.c (random reads, writes, truncates, mmap reads and writes
 *    checked against a model in memory) over skiff's share, 20,000 operations with the client's
 *    default cache mode (no writable shared mappings there) and 5,000 with cache=mmap.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestImageOrSkip, pinnedImageCache } from "../support/qemu.js";
import { backendMissing, compileGuestProgram, compilerMissing, runOnBackend, SHARE_BACKENDS, type ShareBackend } from "../support/share-backends.js";
import type { GuestImage } from "../../src/vm/image.js";

const BIG = 100_000;

describe("e2e: the share under a POSIX conformance run (vs virtio-9p and diod) and an fsx-style integrity run", function () {
  this.timeout(1_800_000);
  let image: GuestImage;
  let cacheDir: string;
  let base: string;
  let bin: string;

  before(function () {
    const noCc = compilerMissing();
    if (noCc) {
      console.log(`      (skipped: the guest programs cannot be compiled: ${noCc})`);
      this.skip();
    }
    image = guestImageOrSkip(this);
    cacheDir = pinnedImageCache(image);
    base = mkdtempSync(join(tmpdir(), "skiff-share-posix-"));
    bin = join(base, "bin");
    mkdirSync(bin);
    compileGuestProgram("posix-check", bin);
    compileGuestProgram("fsx", bin);
  });
  after(() => {
    if (base) rmSync(base, { recursive: true, force: true });
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  });

  /** A share directory for `name` holding the guest programs (and, if asked, the big directory). */
  function shareDir(name: string, big: boolean): string {
    const dir = join(base, name);
    mkdirSync(join(dir, ".bin"), { recursive: true });
    for (const p of ["posix-check", "fsx"]) copyFileSync(join(bin, p), join(dir, ".bin", p));
    if (big) {
      mkdirSync(join(dir, "big"));
      execFileSync("sh", ["-c", `seq -f entry-%g 1 ${BIG} | xargs touch`], { cwd: join(dir, "big") });
    }
    return dir;
  }

  const INSTALL = "cp /mnt/.bin/posix-check /mnt/.bin/fsx /tmp/ && chmod +x /tmp/posix-check /tmp/fsx";

  it(`posix-check: skiff passes at least as many checks as the better of virtio-9p and diod (with a ${BIG.toLocaleString("en")}-entry readdir)`, async () => {
    const results = new Map<ShareBackend, { pass: number; fail: number; failures: string[] }>();
    for (const backend of SHARE_BACKENDS) {
      const missing = backendMissing(backend);
      if (missing) {
        console.log(`      (${backend} not measured: ${missing})`);
        continue;
      }
      const r = await runOnBackend({
        backend, dir: shareDir(`posix-${backend}`, true), image, cacheDir, consoleLog: join(base, `posix-${backend}.console.log`),
        script: `${INSTALL}\n/tmp/posix-check /mnt /mnt/big ${BIG}\n`,
      });
      const total = r.lines.map((l) => /^TOTAL pass=(\d+) fail=(\d+)/.exec(l)).find((m) => m !== null);
      expect(total, `${backend}: posix-check did not finish (status ${r.status}):\n${r.lines.slice(-30).join("\n")}`).to.not.equal(undefined);
      results.set(backend, { pass: Number(total![1]), fail: Number(total![2]), failures: r.lines.filter((l) => l.startsWith("FAIL ")) });
    }
    for (const [b, r] of results) {
      console.log(`      ${b}: ${r.pass} of ${r.pass + r.fail} checks pass`);
      for (const f of r.failures) console.log(`        ${f}`);
    }
    const skiff = results.get("skiff")!;
    const peers = [...results.entries()].filter(([b]) => b !== "skiff").map(([, r]) => r);
    for (const p of peers) expect(p.pass + p.fail, "every backend ran every check").to.equal(skiff.pass + skiff.fail);
    const best = Math.max(0, ...peers.map((p) => p.pass));
    expect(skiff.pass, `skiff passes ${skiff.pass}, the better peer ${best}`).to.be.at.least(best);
    expect(skiff.pass, "the run is not trivial").to.be.greaterThan(150);
  });

  it("fsx: 20,000 random operations (default cache) and 5,000 with cache=mmap (writable mappings) over the share, every read checked", async () => {
    const seed = process.env.SKIFF_FSX_SEED ?? String(Date.now() % 1_000_000);
    const dir = shareDir("fsx", false);
    const script = [
      INSTALL,
      `/tmp/fsx /mnt/fsx.data 20000 ${seed}; echo FSX_STATUS=$?`,
      "mkdir -p /mm && mount -t 9p -o trans=tcp,port=564,version=9p2000.L,aname=share,msize=1048576,cache=mmap 192.168.65.1 /mm",
      `/tmp/fsx /mm/fsx-mmap.data 5000 ${seed}; echo FSX_MMAP_STATUS=$?`,
    ].join("\n");
    const r = await runOnBackend({ backend: "skiff", dir, image, cacheDir, consoleLog: join(base, "fsx.console.log"), script });
    const out = r.lines.join("\n");
    console.log(`      seed ${seed} (SKIFF_FSX_SEED=${seed} repeats it)`);
    for (const l of r.lines.filter((x) => x.startsWith("FSX "))) console.log(`      ${l}`);
    expect(out, out).to.include("FSX_STATUS=0");
    expect(out, out).to.include("FSX_MMAP_STATUS=0");
    expect(r.lines.filter((l) => l.startsWith("FSX OK")), out).to.have.length(2);
    expect(out, "with cache=mmap the writable mappings were exercised").to.match(/FSX OK ops=5000 .* mapwrite=[1-9]/);
  });
});
