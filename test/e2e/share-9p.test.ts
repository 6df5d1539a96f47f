/**
 * End to end (issue 15): a real Linux 9p client (Debian's 6.1 kernel, `9p` + `9pnet_fd`, in a
 * QEMU TCG guest booted by `skiff vm run`) mounts a host directory served by skiff's gateway on
 * TCP 564 — with the exact acceptance form
 *   mount -t 9p -o trans=tcp,port=564,version=9p2000.L,aname=NAME 192.168.65.1 /mnt
 * — and works on it: ls, cat, write, chmod, mkdir, rename, symlink, hard link, rm, chown (remembered,
 * not applied), 64 MiB both ways with SHA-256 equal, a 20,000-entry directory (100,000 in test/share/server.test.ts), small-file churn.
 * The host then sees the results with skiff's user as owner and the modes the guest set. Then
 * statfs (df), mkfifo, truncate, a write beyond 4 GiB, reading a file removed while open, and
 * coherence: a host edit made while the guest waits is what the guest's next read returns.
 * Also `skiff vm run -v HOSTDIR:GUESTDIR[:ro]`: mounted before the command; each guest user
 * (the client attaches per user) is the owner of files nobody chowned, a chown is remembered and
 * then checked by the guest kernel against the real modes, and a :ro volume refuses writes.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { guestImageOrSkip, pinnedImageCache } from "../support/qemu.js";
import { vmRun } from "../../src/cli/vm.js";

const log = pino({ level: "silent" });
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** The value printed after `KEY=` on a line of the guest's output. */
function field(lines: string[], key: string): string {
  const l = lines.find((x) => x.startsWith(`${key}=`));
  if (l === undefined) throw new Error(`no ${key}= in the guest's output:\n${lines.join("\n")}`);
  return l.slice(key.length + 1).trim();
}

describe("e2e: host-directory sharing — the guest kernel's 9p client over skiff's TCP", function () {
  this.timeout(600_000);
  let cacheDir: string;
  let dir: string;

  before(function () {
    cacheDir = pinnedImageCache(guestImageOrSkip(this));
    dir = mkdtempSync(join(tmpdir(), "skiff-share-e2e-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  });

  it("mount with the acceptance form; file operations, 64 MiB both ways, 20,000 entries; the host sees owner and modes", async () => {
    const share = join(dir, "work");
    mkdirSync(join(share, "many"), { recursive: true });
    writeFileSync(join(share, "hello.txt"), "hello from the host\n");
    writeFileSync(join(share, "todelete"), "x");
    const hostBig = randomBytes(64 << 20);
    writeFileSync(join(share, "hostbig.bin"), hostBig);
    execFileSync("sh", ["-c", "seq -f entry-%g 1 20000 | xargs touch"], { cwd: join(share, "many") });
    const script = [
      "set -e",
      "ms() { awk '{ printf \"%d\", $1 * 1000 }' /proc/uptime; }",
      "echo MOUNTED=yes",
      "echo LS=$(ls /mnt | tr '\\n' ,)",
      "echo CAT=$(cat /mnt/hello.txt)",
      "echo 'written by the guest' > /mnt/guest.txt",
      "chmod 640 /mnt/guest.txt",
      "mkdir -m 750 /mnt/gdir",
      "mv /mnt/guest.txt /mnt/gdir/moved.txt",
      "ln -s gdir/moved.txt /mnt/sym",
      "ln /mnt/gdir/moved.txt /mnt/hard",
      "rm /mnt/todelete",
      "echo VIA_SYMLINK=$(cat /mnt/sym)",
      "echo NLINK=$(stat -c %h /mnt/hard)",
      "chown 1234:5678 /mnt/hard",
      "echo OWNER=$(stat -c %u:%g /mnt/hard)",
      "t0=$(ms)",
      "dd if=/dev/urandom of=/tmp/g.bin bs=1M count=64 2>/dev/null",
      "t1=$(ms)",
      "cp /tmp/g.bin /mnt/guestbig.bin",
      "t2=$(ms)",
      "echo GUEST_SHA=$(sha256sum /tmp/g.bin | cut -d' ' -f1)",
      "rm /tmp/g.bin",
      "t3=$(ms)",
      "dd if=/mnt/hostbig.bin of=/dev/null bs=1M 2>/dev/null",
      "t4=$(ms)",
      "echo HOST_SHA=$(sha256sum /mnt/hostbig.bin | cut -d' ' -f1)",
      "echo WRITE_MS=$(( t2 - t1 ))",
      "echo READ_MS=$(( t4 - t3 ))",
      "t9=$(ms); echo MANY=$(ls /mnt/many | grep -c entry-); t10=$(ms); echo LS_MS=$(( t10 - t9 ))",
      "mkdir /mnt/churn",
      "t5=$(ms)",
      "i=0; while [ $i -lt 1000 ]; do : > /mnt/churn/f$i; stat -c %s /mnt/churn/f$i >/dev/null; rm /mnt/churn/f$i; i=$((i+1)); done",
      "t6=$(ms)",
      "echo CHURN_MS=$(( t6 - t5 ))",
      "mkdir /tmp/churn; t7=$(ms)",
      "i=0; while [ $i -lt 1000 ]; do : > /tmp/churn/f$i; stat -c %s /tmp/churn/f$i >/dev/null; rm /tmp/churn/f$i; i=$((i+1)); done",
      "t8=$(ms); echo CHURN_TMPFS_MS=$(( t8 - t7 ))",
      "rmdir /mnt/churn",
      "umount /mnt",
      "echo DONE=yes",
    ].join("\n");
    // The steps after the mount travel in the share itself (the kernel command line is too short).
    const command = `mkdir -p /mnt && mount -t 9p -o trans=tcp,port=564,version=9p2000.L,aname=work 192.168.65.1 /mnt && cp /mnt/.steps.sh /tmp/ && sh /tmp/.steps.sh`;
    writeFileSync(join(share, ".steps.sh"), script);
    const lines: string[] = [];
    const status = await vmRun({
      cpus: 1, memoryMiB: 512, mtu: 65520, accel: "tcg", cacheDir, command: ["sh", "-c", command],
      shares: [{ name: "work", path: share }], consoleLog: join(dir, "share.console.log"), output: (l) => lines.push(l), log,
    });
    const out = lines.join("\n");
    expect(status, out).to.equal(0);
    expect(field(lines, "MOUNTED")).to.equal("yes");
    expect(field(lines, "LS").split(",")).to.include.members(["hello.txt", "hostbig.bin", "many", "todelete"]);
    expect(field(lines, "CAT")).to.equal("hello from the host");
    expect(field(lines, "VIA_SYMLINK")).to.equal("written by the guest");
    expect(field(lines, "NLINK")).to.equal("2");
    expect(field(lines, "OWNER")).to.equal("1234:5678");
    expect(field(lines, "HOST_SHA")).to.equal(sha(hostBig));
    expect(field(lines, "MANY")).to.equal("20000");
    expect(field(lines, "DONE")).to.equal("yes");
    // what the host sees
    const moved = join(share, "gdir", "moved.txt");
    expect(readFileSync(moved, "utf8")).to.equal("written by the guest\n");
    expect(statSync(moved).mode & 0o777).to.equal(0o640);
    expect(statSync(join(share, "gdir")).mode & 0o777).to.equal(0o750);
    expect(statSync(moved).uid, "the host owner is skiff's user, whatever chown said").to.equal(process.getuid?.());
    expect(statSync(moved).nlink).to.equal(2);
    expect(readlinkSync(join(share, "sym"))).to.equal("gdir/moved.txt");
    expect(lstatSync(join(share, "sym")).isSymbolicLink()).to.equal(true);
    expect(existsSync(join(share, "todelete"))).to.equal(false);
    expect(existsSync(join(share, "churn"))).to.equal(false);
    expect(sha(readFileSync(join(share, "guestbig.bin")))).to.equal(field(lines, "GUEST_SHA"));
    const w = Number(field(lines, "WRITE_MS"));
    const r = Number(field(lines, "READ_MS"));
    const churn = Number(field(lines, "CHURN_MS"));
    const local = Number(field(lines, "CHURN_TMPFS_MS"));
    console.log(`      ls of 20,000 entries: ${field(lines, "LS_MS")} ms`);
    console.log(`      64 MiB guest→host ${(64_000 / w).toFixed(0)} MiB/s, host→guest ${(64_000 / r).toFixed(0)} MiB/s (msize 128 KiB, the client's default); 1,000 create+stat+unlink (a shell loop forking stat and rm): ${((1000 * 1000) / churn).toFixed(0)} files/s on the share, ${((1000 * 1000) / local).toFixed(0)} on the guest's tmpfs (TCG)`);
  });

  it("statfs, mkfifo, truncate, a write beyond 4 GiB, an unlinked open file, and a host edit seen by the guest's next read", async () => {
    const share = join(dir, "more");
    mkdirSync(share);
    writeFileSync(join(share, "co.txt"), "v1");
    writeFileSync(join(share, "keep.txt"), "kept after rm");
    const script = [
      "mkdir -p /m",
      "mount -t 9p -o trans=tcp,port=564,version=9p2000.L,aname=more 192.168.65.1 /m",
      "df /m | tail -1 | awk '{ print \"DF_BLOCKS=\" $2 }'",
      "mkfifo /m/fifo && echo FIFO=$(stat -c %F /m/fifo | tr ' ' _)",
      "echo 0123456789 > /m/t.txt && truncate -s 4 /m/t.txt && echo TRUNC=$(cat /m/t.txt)",
      "echo far | dd of=/m/big bs=1 seek=5368709120 2>/dev/null && echo BIGSIZE=$(stat -c %s /m/big)",
      "echo FAR=$(dd if=/m/big bs=1 skip=5368709120 count=3 2>/dev/null)",
      "exec 3< /m/keep.txt; rm /m/keep.txt; echo GONE=$([ -e /m/keep.txt ] && echo no || echo yes); echo UNLINKED_READ=$(cat <&3); exec 3<&-",
      "echo CO1=$(cat /m/co.txt)",
      "touch /m/waiting",
      "i=0; while [ \"$(cat /m/co.txt)\" != v2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
      "echo CO2=$(cat /m/co.txt)",
      "sync",
      "umount /m",
    ].join("\n");
    const lines: string[] = [];
    const watcher = setInterval(() => {
      if (existsSync(join(share, "waiting"))) {
        writeFileSync(join(share, "co.txt"), "v2");
        clearInterval(watcher);
      }
    }, 50);
    try {
      const status = await vmRun({
        cpus: 1, memoryMiB: 256, mtu: 1500, accel: "tcg", cacheDir, command: ["sh", "-c", script],
        shares: [{ name: "more", path: share }], consoleLog: join(dir, "more.console.log"), output: (l) => lines.push(l), log,
      });
      expect(status, lines.join("\n")).to.equal(0);
    } finally {
      clearInterval(watcher);
    }
    expect(Number(field(lines, "DF_BLOCKS"))).to.be.greaterThan(0);
    expect(field(lines, "FIFO")).to.equal("fifo");
    expect(lstatSync(join(share, "fifo")).isFIFO()).to.equal(true);
    expect(field(lines, "TRUNC")).to.equal("0123");
    expect(field(lines, "BIGSIZE")).to.equal(String(5 * 2 ** 30 + 4));
    expect(statSync(join(share, "big")).size).to.equal(5 * 2 ** 30 + 4);
    expect(field(lines, "FAR")).to.equal("far");
    expect(field(lines, "GONE")).to.equal("yes");
    expect(field(lines, "UNLINKED_READ")).to.equal("kept after rm");
    expect(field(lines, "CO1")).to.equal("v1");
    expect(field(lines, "CO2")).to.equal("v2");
  });

  it("skiff vm run -v HOSTDIR:GUESTDIR and :ro: mounted before CMD; every guest user is the owner until a chown, which is remembered (osxfs); ro gets EROFS", async () => {
    const rw = join(dir, "rw");
    const ro = join(dir, "ro");
    mkdirSync(rw);
    mkdirSync(ro);
    writeFileSync(join(rw, "hostfile"), "host\n", { mode: 0o644 });
    writeFileSync(join(ro, "data.txt"), "read me");
    const script = [
      "echo 'u:x:1000:1000::/tmp:/bin/sh' >> /etc/passwd; echo 'u:x:1000:' >> /etc/group",
      "grep ' /work ' /proc/mounts; grep ' /data ' /proc/mounts",
      "mkdir /work/sub",
      "su u -c 'echo U_SEES=$(stat -c %u /work/hostfile); echo more >> /work/hostfile && echo U_APPEND=ok; echo mine > /work/sub/f && echo U_CREATE=ok'",
      "chown 1234:1234 /work/hostfile",
      "su u -c 'echo U_SEES_AFTER=$(stat -c %u:%g /work/hostfile); echo again >> /work/hostfile 2>/dev/null && echo U_AFTER_CHOWN=ok || echo U_AFTER_CHOWN=denied'",
      "echo ROOT_SEES=$(stat -c %u:%g /work/hostfile),$(stat -c %u:%g /work/sub/f)",
      "cat /data/data.txt; echo",
      "if { echo x > /data/new; } 2>/tmp/err; then echo WROTE=yes; else echo WROTE=no; cat /tmp/err; fi",
    ].join("\n");
    const lines: string[] = [];
    const status = await vmRun({
      cpus: 1, memoryMiB: 256, mtu: 1500, accel: "tcg", cacheDir, command: ["sh", "-c", script],
      volumes: [`${rw}:/work`, `${ro}:/data:ro`], consoleLog: join(dir, "volumes.console.log"), output: (l) => lines.push(l), log,
    });
    const out = lines.join("\n");
    expect(status, out).to.equal(0);
    expect(out).to.match(/ \/work 9p rw,/);
    expect(out).to.match(/ \/data 9p ro,/);
    expect(field(lines, "U_SEES"), "user 1000 is the owner of a file nobody chowned").to.equal("1000");
    expect(field(lines, "U_APPEND")).to.equal("ok");
    expect(field(lines, "U_CREATE")).to.equal("ok");
    expect(field(lines, "U_SEES_AFTER"), "a chown is remembered and reported to everyone").to.equal("1234:1234");
    expect(field(lines, "U_AFTER_CHOWN"), "modes are real: 0644 of owner 1234 keeps user 1000 out").to.equal("denied");
    expect(field(lines, "ROOT_SEES")).to.equal("1234:1234,1000:1000");
    expect(readFileSync(join(rw, "hostfile"), "utf8")).to.equal("host\nmore\n");
    expect(statSync(join(rw, "hostfile")).uid, "the host owner never changes").to.equal(process.getuid?.());
    expect(statSync(join(rw, "sub", "f")).uid, "files the guest creates belong to skiff's user").to.equal(process.getuid?.());
    expect(out).to.include("read me");
    expect(field(lines, "WROTE"), out).to.equal("no");
    expect(out).to.match(/Read-only file system/);
    expect(existsSync(join(ro, "new"))).to.equal(false);
  });
});
