/** The 9P2000.L server over an in-memory transport on a temporary directory: every message type. */
import { expect } from "chai";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, openSync, closeSync, ftruncateSync, writeSync, readSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { Errno, fsAddon } from "../../src/share/host-fs.js";
import { FidBudget } from "../../src/share/fids.js";
import { P9, parseDirents, s, text, type P9Message, type Qid } from "../../src/share/wire.js";
import { TestClient, errnoOf, registryWith, tempDir } from "./client.js";

const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_TRUNC = 0o1000;
const XATTR_REPLACE = 2;

/** Whether `dir`'s file system takes user xattrs (where skiff remembers modes the host cannot hold). */
function xattrs(dir: string): boolean {
  const fd = openSync(dir, "r");
  try {
    return fsAddon().fsSetXattr(fd, s("user.probe"), s("1"), 0) === 0;
  } finally {
    closeSync(fd);
  }
}

describe("share/server: 9P2000.L operations on a host directory", () => {
  let dir: string;
  let c: TestClient;

  beforeEach(async () => {
    dir = tempDir();
    c = new TestClient(registryWith("work", dir));
    expect((await c.version()).msize).to.equal(65536);
    expect((await c.attach("work")).type).to.equal(P9.Rattach);
  });
  afterEach(() => {
    c.conn.close();
    c.registry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function listDir(fid: number, count = 8192): Promise<string[]> {
    const names: string[] = [];
    for (let off = 0n; ; ) {
      const r = await c.call({ type: P9.Treaddir, fid, offset: off, count });
      expect(r.type).to.equal(P9.Rreaddir);
      const ents = parseDirents(r.data as Uint8Array);
      if (!Array.isArray(ents)) throw new Error(String(ents));
      if (ents.length === 0) return names;
      for (const e of ents) names.push(text(e.name));
      off = ents[ents.length - 1].offset;
    }
  }

  it("negotiates msize down to the server's bound and refuses other versions", async () => {
    const small = new TestClient(registryWith("w", dir), { maxMsize: 16384 });
    const v = await small.version(1 << 20);
    expect(v.msize).to.equal(16384);
    expect(text(v.version)).to.equal("9P2000.L");
    const u = await small.call({ type: P9.Tversion, tag: 0xffff, msize: 8192, version: s("9P2000.u") });
    expect(text(u.version)).to.equal("unknown");
    expect(errnoOf(await small.attach("w"))).to.equal(Errno.EPROTO);
    small.registry.close();
  });

  it("attach: an unknown aname is ENOENT; Tauth is refused", async () => {
    expect(errnoOf(await c.attach("nope", 1))).to.equal(Errno.ENOENT);
    expect(errnoOf(await c.call({ type: P9.Tauth, afid: 5, uname: s("u"), aname: s("work"), n_uname: 0 }))).to.equal(Errno.EOPNOTSUPP);
  });

  it("lcreate, write, read back, getattr size and mode; the host sees the file owned by skiff's user", async () => {
    expect((await c.walk(0, 1)).type).to.equal(P9.Rwalk);
    const cr = await c.call({ type: P9.Tlcreate, fid: 1, name: s("hello.txt"), flags: O_RDWR, mode: 0o640, gid: 0 });
    expect(cr.type).to.equal(P9.Rlcreate);
    expect(cr.iounit).to.equal(65536 - 24);
    const w = await c.call({ type: P9.Twrite, fid: 1, offset: 0n, data: s("hello, world") });
    expect(w.count).to.equal(12);
    const st = statSync(join(dir, "hello.txt"));
    expect(st.mode & 0o777).to.equal(0o640);
    expect(st.uid).to.equal(process.getuid?.());
    expect(readFileSync(join(dir, "hello.txt"), "utf8")).to.equal("hello, world");
    const r = await c.call({ type: P9.Tread, fid: 1, offset: 7n, count: 100 });
    expect(text(r.data)).to.equal("world");
    const ga = await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x3fffn });
    expect(ga.size).to.equal(12n);
    expect((ga.mode as number) & 0o7777).to.equal(0o640);
    expect((ga.qid as Qid).path).to.equal(BigInt(st.ino));
    expect((await c.call({ type: P9.Tclunk, fid: 1 })).type).to.equal(P9.Rclunk);
    expect(errnoOf(await c.call({ type: P9.Tclunk, fid: 1 }))).to.equal(Errno.EBADF);
  });

  it("walk: names, partial walks, clone, unknown names and bad names", async () => {
    mkdirSync(join(dir, "a/b"), { recursive: true });
    writeFileSync(join(dir, "a/b/f"), "x");
    const w = await c.walk(0, 1, "a", "b", "f");
    expect((w.wqids as Qid[]).map((q) => q.type)).to.deep.equal([0x80, 0x80, 0]);
    const partial = await c.walk(0, 2, "a", "zz");
    expect((partial.wqids as Qid[]).length).to.equal(1);
    expect(errnoOf(await c.call({ type: P9.Tgetattr, fid: 2, request_mask: 1n }))).to.equal(Errno.EBADF); // not created
    expect(errnoOf(await c.walk(0, 2, "zz"))).to.equal(Errno.ENOENT);
    expect(errnoOf(await c.walk(0, 2, "a/b"))).to.equal(Errno.EINVAL);
    expect(errnoOf(await c.walk(0, 2, "."))).to.equal(Errno.EINVAL);
    expect(errnoOf(await c.walk(0, 1, "a"))).to.equal(Errno.EBADF); // newfid in use
    expect((await c.walk(1, 1)).type).to.equal(P9.Rwalk); // clone onto itself
    expect((await c.walk(0, 3, "a", "b", "..", "..")).type).to.equal(P9.Rwalk);
  });

  it("lopen + readdir with offsets lists every entry of a 100,000-entry directory exactly once", async function () {
    this.timeout(60_000);
    mkdirSync(join(dir, "many"));
    // names of 1 to 60 bytes, so entries straddle reply boundaries at every alignment
    execFileSync("sh", ["-c", "seq 1 100000 | awk '{ printf \"%s-%s\\n\", $1, substr(\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\", 1, $1 % 53) }' | xargs touch"], { cwd: join(dir, "many") });
    await c.walk(0, 1, "many");
    expect((await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDONLY })).type).to.equal(P9.Rlopen);
    const names = await listDir(1, 65000);
    const files = names.filter((n) => n !== "." && n !== "..");
    expect(files.length).to.equal(100_000);
    expect(new Set(files).size).to.equal(100_000);
    expect(names).to.include("..");
    // a small count still makes progress one entry at a time
    const small = await c.call({ type: P9.Treaddir, fid: 1, offset: 0n, count: 40 });
    expect((parseDirents(small.data as Uint8Array) as unknown[]).length).to.equal(1);
  });

  it("mkdir, symlink, readlink, link, mknod (fifo), renameat, unlinkat", async () => {
    const mk = await c.call({ type: P9.Tmkdir, dfid: 0, name: s("d"), mode: 0o750, gid: 0 });
    expect((mk.qid as Qid).type).to.equal(0x80);
    expect(statSync(join(dir, "d")).mode & 0o777).to.equal(0o750);
    expect(errnoOf(await c.call({ type: P9.Tmkdir, dfid: 0, name: s("d"), mode: 0o750, gid: 0 }))).to.equal(Errno.EEXIST);
    const sl = await c.call({ type: P9.Tsymlink, fid: 0, name: s("ln"), symtgt: s("../../etc/passwd"), gid: 0 });
    expect((sl.qid as Qid).type).to.equal(0x02);
    expect(readlinkSync(join(dir, "ln"))).to.equal("../../etc/passwd");
    await c.walk(0, 1, "ln");
    expect(text((await c.call({ type: P9.Treadlink, fid: 1 })).target)).to.equal("../../etc/passwd");
    writeFileSync(join(dir, "f"), "data");
    await c.walk(0, 2, "f");
    expect((await c.call({ type: P9.Tlink, dfid: 0, fid: 2, name: s("f2") })).type).to.equal(P9.Rlink);
    expect(statSync(join(dir, "f2")).nlink).to.equal(2);
    expect((await c.call({ type: P9.Tmknod, dfid: 0, name: s("fifo"), mode: 0o010644, major: 0, minor: 0, gid: 0 })).type).to.equal(P9.Rmknod);
    expect(lstatSync(join(dir, "fifo")).isFIFO()).to.equal(true);
    await c.walk(0, 3, "d");
    expect((await c.call({ type: P9.Trenameat, olddirfid: 0, oldname: s("f2"), newdirfid: 3, newname: s("g") })).type).to.equal(P9.Rrenameat);
    expect(existsSync(join(dir, "d/g"))).to.equal(true);
    expect(errnoOf(await c.call({ type: P9.Tunlinkat, dirfid: 0, name: s("d"), flags: 0x200 }))).to.equal(Errno.ENOTEMPTY);
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 3, name: s("g"), flags: 0 })).type).to.equal(P9.Runlinkat);
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 0, name: s("d"), flags: 0x200 })).type).to.equal(P9.Runlinkat);
    expect(existsSync(join(dir, "d"))).to.equal(false);
  });

  it("Trename moves a fid's file and Tremove unlinks it (and clunks the fid)", async () => {
    writeFileSync(join(dir, "old"), "1");
    mkdirSync(join(dir, "sub"));
    await c.walk(0, 1, "old");
    await c.walk(0, 2, "sub");
    expect((await c.call({ type: P9.Trename, fid: 1, dfid: 2, name: s("new") })).type).to.equal(P9.Rrename);
    expect(readFileSync(join(dir, "sub/new"), "utf8")).to.equal("1");
    expect((await c.call({ type: P9.Tremove, fid: 1 })).type).to.equal(P9.Rremove);
    expect(existsSync(join(dir, "sub/new"))).to.equal(false);
    expect(errnoOf(await c.call({ type: P9.Tclunk, fid: 1 }))).to.equal(Errno.EBADF);
  });

  it("mknod of a device: a plain empty host file, reported to the guest as the device (type and number) and removable", async function () {
    if (!xattrs(dir)) {
      console.log(`      (skipped: ${dir}'s file system has no user xattrs)`);
      return this.skip();
    }
    expect((await c.call({ type: P9.Tmknod, dfid: 0, name: s("null"), mode: 0o020640, major: 1, minor: 3, gid: 0 })).type).to.equal(P9.Rmknod);
    expect((await c.call({ type: P9.Tmknod, dfid: 0, name: s("loop"), mode: 0o060600, major: 7, minor: 300, gid: 0 })).type).to.equal(P9.Rmknod);
    const host = lstatSync(join(dir, "null"));
    expect(host.isFile(), "the host holds a regular file").to.equal(true);
    expect(host.size).to.equal(0);
    expect(host.mode & 0o7777).to.equal(0o640);
    await c.walk(0, 1, "null");
    const ga = await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn });
    expect(ga.mode).to.equal(0o020640);
    expect(ga.rdev).to.equal(0x103n);
    await c.walk(0, 2, "loop");
    const gb = await c.call({ type: P9.Tgetattr, fid: 2, request_mask: 0x7ffn });
    expect(gb.mode).to.equal(0o060600);
    expect(gb.rdev, "glibc's makedev(7, 300)").to.equal(0x10072cn);
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 0, name: s("null"), flags: 0 })).type).to.equal(P9.Runlinkat);
    expect(existsSync(join(dir, "null"))).to.equal(false);
  });

  it("setattr: chmod is real, chown is remembered and reported but the host owner stays, truncate, times", async () => {
    writeFileSync(join(dir, "f"), "0123456789");
    await c.walk(0, 1, "f");
    expect((await c.call({ type: P9.Tsetattr, fid: 1, valid: 1, mode: 0o600 })).type).to.equal(P9.Rsetattr);
    expect(statSync(join(dir, "f")).mode & 0o7777).to.equal(0o600);
    expect((await c.call({ type: P9.Tsetattr, fid: 1, valid: 2 | 4, uid: 1234, gid: 5678 })).type).to.equal(P9.Rsetattr);
    const ga = await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn });
    expect([ga.uid, ga.gid]).to.deep.equal([1234, 5678]);
    expect(statSync(join(dir, "f")).uid).to.equal(process.getuid?.());
    await c.call({ type: P9.Tsetattr, fid: 1, valid: 8, size: 4n });
    expect(readFileSync(join(dir, "f"), "utf8")).to.equal("0123");
    await c.call({ type: P9.Tsetattr, fid: 1, valid: 0x10 | 0x20 | 0x80 | 0x100, atime_sec: 1000n, atime_nsec: 5n, mtime_sec: 2000n, mtime_nsec: 7n });
    const st = statSync(join(dir, "f"), { bigint: true });
    expect(st.mtimeNs).to.equal(2000n * 1_000_000_000n + 7n);
    expect(st.atimeNs).to.equal(1000n * 1_000_000_000n + 5n);
    // set-id bits are not put on host files, but remembered and reported back (osxfs-style)
    await c.call({ type: P9.Tsetattr, fid: 1, valid: 1, mode: 0o6755 });
    expect(statSync(join(dir, "f")).mode & 0o7777).to.equal(0o755);
    if (xattrs(dir)) {
      expect((await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn })).mode).to.equal(0o106755);
      // opening for writing drops them, as the kernel does for a writer
      await c.walk(0, 9, "f");
      await c.call({ type: P9.Tlopen, fid: 9, flags: O_WRONLY });
      expect((await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn })).mode).to.equal(0o100755);
      await c.call({ type: P9.Tsetattr, fid: 1, valid: 1, mode: 0o4700 });
      await c.call({ type: P9.Tsetattr, fid: 1, valid: 1, mode: 0o700 });
      expect((await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn })).mode, "a chmod without them clears them").to.equal(0o100700);
    }
    // a file with nothing remembered reports the attaching user
    writeFileSync(join(dir, "plain"), "");
    await c.walk(0, 2, "plain");
    expect((await c.call({ type: P9.Tgetattr, fid: 2, request_mask: 0x7ffn })).uid).to.equal(0);
  });

  it("xattrs: user.* set, read, listed and removed; user.skiff.* and other namespaces hidden", async function () {
    writeFileSync(join(dir, "f"), "");
    await c.walk(0, 1, "f");
    await c.walk(1, 2);
    expect((await c.call({ type: P9.Txattrcreate, fid: 2, name: s("user.color"), attr_size: 3n, flags: 0 })).type).to.equal(P9.Rxattrcreate);
    await c.call({ type: P9.Twrite, fid: 2, offset: 0n, data: s("red") });
    const cl = await c.call({ type: P9.Tclunk, fid: 2 });
    if (errnoOf(cl) === Errno.EOPNOTSUPP) {
      console.log(`      (skipped: ${dir}'s file system has no user xattrs)`);
      return this.skip();
    }
    expect(cl.type).to.equal(P9.Rclunk);
    const xw = await c.call({ type: P9.Txattrwalk, fid: 1, newfid: 3, name: s("user.color") });
    expect(xw.size).to.equal(3n);
    expect(text((await c.call({ type: P9.Tread, fid: 3, offset: 0n, count: 100 })).data)).to.equal("red");
    await c.call({ type: P9.Tclunk, fid: 3 });
    await c.call({ type: P9.Tsetattr, fid: 1, valid: 2, uid: 42 }); // puts user.skiff.owner on the file
    const list = await c.call({ type: P9.Txattrwalk, fid: 1, newfid: 3, name: new Uint8Array(0) });
    const names = text((await c.call({ type: P9.Tread, fid: 3, offset: 0n, count: 1000 })).data).split("\0").filter(Boolean);
    expect(list.type).to.equal(P9.Rxattrwalk);
    expect(names).to.deep.equal(["user.color"]);
    await c.call({ type: P9.Tclunk, fid: 3 });
    expect(errnoOf(await c.call({ type: P9.Txattrwalk, fid: 1, newfid: 3, name: s("user.skiff.owner") }))).to.equal(Errno.ENODATA);
    expect(errnoOf(await c.call({ type: P9.Txattrwalk, fid: 1, newfid: 3, name: s("security.capability") }))).to.equal(Errno.ENODATA);
    await c.walk(1, 4);
    expect(errnoOf(await c.call({ type: P9.Txattrcreate, fid: 4, name: s("user.skiff.owner"), attr_size: 1n, flags: 0 }))).to.equal(Errno.EOPNOTSUPP);
    expect(errnoOf(await c.call({ type: P9.Txattrcreate, fid: 4, name: s("trusted.x"), attr_size: 1n, flags: 0 }))).to.equal(Errno.EOPNOTSUPP);
    // removexattr(2) reaches the server as an empty xattrcreate with XATTR_REPLACE (Linux's VFS)
    await c.call({ type: P9.Txattrcreate, fid: 4, name: s("user.color"), attr_size: 0n, flags: XATTR_REPLACE });
    expect((await c.call({ type: P9.Tclunk, fid: 4 })).type).to.equal(P9.Rclunk);
    expect(errnoOf(await c.call({ type: P9.Txattrwalk, fid: 1, newfid: 3, name: s("user.color") }))).to.equal(Errno.ENODATA);
  });

  it("xattrs: an empty value is a value (setxattr size 0 without XATTR_REPLACE); removing a missing name is ENODATA", async function () {
    writeFileSync(join(dir, "f"), "");
    await c.walk(0, 1, "f");
    await c.walk(1, 2);
    await c.call({ type: P9.Txattrcreate, fid: 2, name: s("user.empty"), attr_size: 0n, flags: 0 });
    const cl = await c.call({ type: P9.Tclunk, fid: 2 });
    if (errnoOf(cl) === Errno.EOPNOTSUPP) {
      console.log(`      (skipped: ${dir}'s file system has no user xattrs)`);
      return this.skip();
    }
    expect(cl.type).to.equal(P9.Rclunk);
    const xw = await c.call({ type: P9.Txattrwalk, fid: 1, newfid: 3, name: s("user.empty") });
    expect(xw.type, "the empty value is there").to.equal(P9.Rxattrwalk);
    expect(xw.size).to.equal(0n);
    await c.call({ type: P9.Tclunk, fid: 3 });
    await c.walk(1, 4);
    await c.call({ type: P9.Txattrcreate, fid: 4, name: s("user.missing"), attr_size: 0n, flags: XATTR_REPLACE });
    expect(errnoOf(await c.call({ type: P9.Tclunk, fid: 4 })), "removexattr of a missing name").to.equal(Errno.ENODATA);
  });

  it("statfs, fsync, lock/getlock between two opens of one file", async () => {
    const sf = await c.call({ type: P9.Tstatfs, fid: 0 });
    expect(sf.type).to.equal(P9.Rstatfs);
    expect(sf.namelen).to.equal(255);
    writeFileSync(join(dir, "f"), "abc");
    await c.walk(0, 1, "f");
    await c.walk(0, 2, "f");
    await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDWR });
    await c.call({ type: P9.Tlopen, fid: 2, flags: O_RDWR });
    expect((await c.call({ type: P9.Tfsync, fid: 1, datasync: 0 })).type).to.equal(P9.Rfsync);
    const lock = (fid: number, locktype: number): Promise<P9Message> =>
      c.call({ type: P9.Tlock, fid, locktype, flags: 0, start: 0n, length: 0n, proc_id: fid, client_id: s("vm") });
    expect((await lock(1, 1)).status).to.equal(0);
    expect((await lock(2, 1)).status).to.equal(1); // blocked
    const gl = await c.call({ type: P9.Tgetlock, fid: 2, locktype: 1, start: 0n, length: 0n, proc_id: 2, client_id: s("vm") });
    expect(gl.locktype).to.equal(1);
    expect((await lock(1, 2)).status).to.equal(0);
    expect((await lock(2, 1)).status).to.equal(0);
    expect(errnoOf(await c.call({ type: P9.Tlock, fid: 0, locktype: 1, flags: 0, start: 0n, length: 0n, proc_id: 1, client_id: s("") }))).to.equal(Errno.EBADF);
  });

  it("reads and writes beyond 4 GiB (sparse file)", async () => {
    const p = join(dir, "big");
    const fd = openSync(p, "w+");
    ftruncateSync(fd, 5 * 2 ** 30);
    closeSync(fd);
    await c.walk(0, 1, "big");
    await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDWR });
    const off = 4n * 2n ** 30n + 12345n;
    expect((await c.call({ type: P9.Twrite, fid: 1, offset: off, data: s("far") })).count).to.equal(3);
    const b = Buffer.alloc(3);
    const h = openSync(p, "r");
    readSync(h, b, 0, 3, Number(off));
    closeSync(h);
    expect(b.toString()).to.equal("far");
    expect(text((await c.call({ type: P9.Tread, fid: 1, offset: off, count: 3 })).data)).to.equal("far");
  });

  it("an unlinked file stays usable through its open fid", async () => {
    writeFileSync(join(dir, "tmp"), "still here");
    await c.walk(0, 1, "tmp");
    await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDWR });
    await c.call({ type: P9.Tunlinkat, dirfid: 0, name: s("tmp"), flags: 0 });
    expect(existsSync(join(dir, "tmp"))).to.equal(false);
    expect(text((await c.call({ type: P9.Tread, fid: 1, offset: 0n, count: 100 })).data)).to.equal("still here");
    await c.call({ type: P9.Twrite, fid: 1, offset: 10n, data: s("!") });
    expect((await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn })).size).to.equal(11n);
    expect((await c.call({ type: P9.Tgetattr, fid: 1, request_mask: 0x7ffn })).nlink).to.equal(0n);
  });

  it("coherence: a host edit is seen by the next read, a guest write by the host at once", async () => {
    writeFileSync(join(dir, "f"), "one");
    await c.walk(0, 1, "f");
    await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDWR });
    expect(text((await c.call({ type: P9.Tread, fid: 1, offset: 0n, count: 10 })).data)).to.equal("one");
    writeFileSync(join(dir, "f"), "two!");
    expect(text((await c.call({ type: P9.Tread, fid: 1, offset: 0n, count: 10 })).data)).to.equal("two!");
    await c.call({ type: P9.Twrite, fid: 1, offset: 0n, data: s("T") });
    expect(readFileSync(join(dir, "f"), "utf8")).to.equal("Two!");
    const h = openSync(join(dir, "f"), "r+");
    writeSync(h, "X", 3);
    closeSync(h);
    expect(text((await c.call({ type: P9.Tread, fid: 1, offset: 0n, count: 10 })).data)).to.equal("TwoX");
  });

  it("read-only shares answer EROFS to every change and still serve reads", async () => {
    writeFileSync(join(dir, "f"), "ro");
    const ro = new TestClient(registryWith("ro", dir, true));
    await ro.version();
    await ro.attach("ro");
    await ro.walk(0, 1, "f");
    await ro.walk(0, 2, "f");
    const E = Errno.EROFS;
    expect(errnoOf(await ro.call({ type: P9.Tlopen, fid: 2, flags: O_WRONLY }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tlopen, fid: 2, flags: O_RDONLY | O_TRUNC }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tsetattr, fid: 1, valid: 1, mode: 0o777 }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tmkdir, dfid: 0, name: s("d"), mode: 0o777, gid: 0 }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tsymlink, fid: 0, name: s("l"), symtgt: s("f"), gid: 0 }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tmknod, dfid: 0, name: s("p"), mode: 0o010644, major: 0, minor: 0, gid: 0 }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tlink, dfid: 0, fid: 1, name: s("h") }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Trenameat, olddirfid: 0, oldname: s("f"), newdirfid: 0, newname: s("g") }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Tunlinkat, dirfid: 0, name: s("f"), flags: 0 }))).to.equal(E);
    expect(errnoOf(await ro.call({ type: P9.Txattrcreate, fid: 1, name: s("user.a"), attr_size: 1n, flags: 0 }))).to.equal(E);
    await ro.walk(0, 3);
    expect(errnoOf(await ro.call({ type: P9.Tlcreate, fid: 3, name: s("n"), flags: O_RDWR, mode: 0o644, gid: 0 }))).to.equal(E);
    await ro.walk(0, 4, "f");
    expect(errnoOf(await ro.call({ type: P9.Tremove, fid: 4 }))).to.equal(E);
    expect((await ro.call({ type: P9.Tlopen, fid: 2, flags: O_RDONLY })).type).to.equal(P9.Rlopen);
    expect(text((await ro.call({ type: P9.Tread, fid: 2, offset: 0n, count: 10 })).data)).to.equal("ro");
    expect(readFileSync(join(dir, "f"), "utf8")).to.equal("ro");
    ro.registry.close();
  });

  it("flush: a Tflush for a running read is answered after the read's reply; for an idle tag at once", async () => {
    writeFileSync(join(dir, "f"), "abc");
    await c.walk(0, 1, "f");
    await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDONLY });
    const before = c.replies.length;
    const read = c.call({ type: P9.Tread, tag: 500, fid: 1, offset: 0n, count: 3 });
    const flush = c.call({ type: P9.Tflush, tag: 501, oldtag: 500 });
    await Promise.all([read, flush]);
    expect(c.replies.slice(before).map((m) => m.type)).to.deep.equal([P9.Rread, P9.Rflush]);
    expect((await c.call({ type: P9.Tflush, oldtag: 999 })).type).to.equal(P9.Rflush);
  });

  it("whenDrained: called only once the running read has been answered", async () => {
    writeFileSync(join(dir, "f"), "abc");
    await c.walk(0, 1, "f");
    await c.call({ type: P9.Tlopen, fid: 1, flags: O_RDONLY });
    const read = c.call({ type: P9.Tread, fid: 1, offset: 0n, count: 3 });
    let drainedAfter = -1;
    c.conn.whenDrained(() => (drainedAfter = c.replies.length));
    expect(drainedAfter).to.equal(-1);
    await read;
    expect(drainedAfter).to.equal(c.replies.length);
  });

  it("no descriptor leaks: after creates, walks, opens, renames, xattrs and the connection's end, /proc/self/fd is back where it was", async () => {
    const fds = (): number => readdirSync("/proc/self/fd").length;
    const before = fds();
    const b = new TestClient(registryWith("w", dir));
    await b.version();
    await b.attach("w");
    mkdirSync(join(dir, "sub"));
    for (let i = 0; i < 20; i++) {
      await b.walk(0, 1, "sub");
      await b.call({ type: P9.Tlcreate, fid: 1, name: s(`f${i}`), flags: O_RDWR, mode: 0o644, gid: 7 });
      await b.call({ type: P9.Twrite, fid: 1, offset: 0n, data: s("x") });
      await b.walk(0, 2, "sub", `f${i}`);
      await b.call({ type: P9.Trename, fid: 2, dfid: 0, name: s(`g${i}`) });
      await b.call({ type: P9.Txattrwalk, fid: 2, newfid: 3, name: new Uint8Array(0) });
      await b.walk(0, 4, "..", `g${i}`);
      await b.call({ type: P9.Tlopen, fid: 4, flags: O_RDONLY });
      for (const fid of [1, 2, 3, 4]) expect((await b.call({ type: P9.Tclunk, fid })).type).to.equal(P9.Rclunk);
    }
    await b.walk(0, 5, "g0");
    await b.call({ type: P9.Tlopen, fid: 5, flags: O_RDONLY });
    expect(fds()).to.be.greaterThan(before);
    b.conn.close();
    b.registry.close();
    expect(fds()).to.equal(before);
  });

  it("bounds: the fid budget shared by connections", async () => {
    const budget = new FidBudget(3);
    const r = registryWith("w", dir);
    const x = new TestClient(r, { fidBudget: budget });
    const y = new TestClient(r, { fidBudget: budget });
    await x.version();
    await y.version();
    await x.attach("w");
    await y.attach("w");
    expect((await x.walk(0, 1)).type).to.equal(P9.Rwalk);
    expect(errnoOf(await y.walk(0, 1))).to.equal(Errno.EMFILE);
    await x.call({ type: P9.Tclunk, fid: 1 });
    expect((await y.walk(0, 1)).type).to.equal(P9.Rwalk);
    x.conn.close();
    expect(budget.used).to.equal(2);
    r.close();
  });

  it("bounds: fids beyond maxFids get EMFILE; a size field above msize closes the connection", async () => {
    const b = new TestClient(registryWith("w", dir), { maxFids: 3 });
    await b.version(8192);
    await b.attach("w");
    expect((await b.walk(0, 1)).type).to.equal(P9.Rwalk);
    expect((await b.walk(0, 2)).type).to.equal(P9.Rwalk);
    expect(errnoOf(await b.walk(0, 3))).to.equal(Errno.EMFILE);
    const big = new Uint8Array(7);
    new DataView(big.buffer).setUint32(0, 8193, true);
    b.sendRaw(big);
    expect(b.transport.closed).to.equal(true);
    expect(b.conn.closeReason).to.match(/size 8193/);
    b.registry.close();
  });

  it("backpressure: no more requests are read while replies wait for room", async () => {
    const b = new TestClient(registryWith("w", dir));
    await b.version();
    await b.attach("w");
    b.transport.room = 0;
    for (let i = 0; i < 5; i++) b.sendRaw(new Uint8Array(Buffer.from("0b000000" + "18" + "0100" + "00000000", "hex")).slice(0, 11)); // malformed getattr
    expect(b.conn.queuedBytes).to.be.greaterThan(0);
    expect(b.transport.inbound.length).to.equal(4); // only the first was read
    b.transport.room = Infinity;
    b.conn.flush();
    expect(b.transport.inbound.length).to.equal(0);
    b.registry.close();
  });
});
