/**
 * Containment attacks against the 9P server: nothing outside a share's root can be read,
 * written, created, linked or followed, whatever the guest sends. Each test plants a secret
 * next to (outside) the share and checks that it is neither readable nor changed.
 */
import { expect } from "chai";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Errno, fsAddon } from "../../src/share/host-fs.js";
import { P9, s, text, type P9Message, type Qid } from "../../src/share/wire.js";
import { TestClient, errnoOf, registryWith, tempDir } from "./client.js";

const O_RDONLY = 0, O_RDWR = 2;

for (const openat2 of [true, false]) describe(`share/containment: a guest cannot reach outside the share's root (${openat2 ? "openat2 RESOLVE_BENEATH" : "openat O_NOFOLLOW fallback"})`, () => {
  let top: string;
  let root: string;
  let outside: string;
  let secret: string;
  let c: TestClient;

  let was = true;
  before(() => (was = fsAddon().fsUseOpenat2(openat2)));
  after(() => fsAddon().fsUseOpenat2(was));

  beforeEach(async () => {
    top = tempDir("skiff-contain-");
    root = join(top, "share");
    outside = join(top, "outside");
    mkdirSync(root);
    mkdirSync(outside);
    secret = join(outside, "secret");
    writeFileSync(secret, "TOP SECRET", { mode: 0o644 });
    c = new TestClient(registryWith("s", root));
    await c.version();
    await c.attach("s");
  });
  afterEach(() => {
    c.conn.close();
    c.registry.close();
    rmSync(top, { recursive: true, force: true });
  });

  function secretUntouched(): void {
    expect(readFileSync(secret, "utf8")).to.equal("TOP SECRET");
    expect(statSync(secret).nlink).to.equal(1);
    expect(statSync(secret).mode & 0o7777).to.equal(0o644);
    expect(readdirSync(outside)).to.deep.equal(["secret"]);
  }

  /** Try to read `fid` as a file; returns the bytes read or the errno. */
  async function tryRead(fid: number): Promise<string | number> {
    const o = await c.call({ type: P9.Tlopen, fid, flags: O_RDONLY });
    if (o.type !== P9.Rlopen) return errnoOf(o);
    const r = await c.call({ type: P9.Tread, fid, offset: 0n, count: 100 });
    return r.type === P9.Rread ? text(r.data) : errnoOf(r);
  }

  it("'..' at the root stays at the root; '../outside/secret' is not found", async () => {
    const rootQid = ((await c.walk(0, 9)).wqids as Qid[]).length;
    expect(rootQid).to.equal(0);
    const up = await c.walk(0, 1, "..");
    expect((up.wqids as Qid[])[0].path).to.equal(BigInt(statSync(root).ino));
    expect(errnoOf(await c.walk(0, 2, "..", "outside"))).to.equal(-1); // partial: ".." walked, "outside" not
    expect((await c.walk(0, 2, "..", "outside")).wqids as Qid[]).to.have.length(1);
    expect(errnoOf(await c.walk(0, 3, "..", "..", "..", "etc", "passwd"))).to.equal(-1);
    expect(((await c.walk(0, 3, "..", "..", "..", "etc", "passwd")).wqids as Qid[]).length).to.equal(3);
    secretUntouched();
  });

  it("an absolute symlink pointing out is never followed: no walk through it, no open, no read", async () => {
    symlinkSync(outside, join(root, "abs"));
    symlinkSync(secret, join(root, "abs-file"));
    const w = await c.walk(0, 1, "abs");
    expect((w.wqids as Qid[])[0].type).to.equal(0x02);
    expect(((await c.walk(0, 2, "abs", "secret")).wqids as Qid[]).length).to.equal(1); // stops at the link
    await c.walk(0, 3, "abs-file");
    expect(await tryRead(3)).to.equal(Errno.ELOOP);
    await c.walk(0, 4, "abs");
    expect(await tryRead(4)).to.equal(Errno.ELOOP);
    const ga = await c.call({ type: P9.Tgetattr, fid: 3, request_mask: 0x7ffn });
    expect((ga.mode as number) & 0o170000).to.equal(0o120000); // the link itself
    expect(errnoOf(await c.call({ type: P9.Tlcreate, fid: 1, name: s("planted"), flags: O_RDWR, mode: 0o644, gid: 0 }))).to.be.oneOf([Errno.ENOTDIR, Errno.EBADF]);
    expect(errnoOf(await c.call({ type: P9.Tmkdir, dfid: 1, name: s("planted"), mode: 0o755, gid: 0 }))).to.equal(Errno.ENOTDIR);
    secretUntouched();
  });

  it("a relative symlink pointing out (../outside) is never followed", async () => {
    symlinkSync("../outside", join(root, "rel"));
    symlinkSync("../outside/secret", join(root, "rel-file"));
    expect(((await c.walk(0, 1, "rel", "secret")).wqids as Qid[]).length).to.equal(1);
    await c.walk(0, 2, "rel-file");
    expect(await tryRead(2)).to.equal(Errno.ELOOP);
    secretUntouched();
  });

  it("a name that is a symlink to / cannot be walked through, opened or listed", async () => {
    symlinkSync("/", join(root, "slash"));
    expect(((await c.walk(0, 1, "slash", "etc", "passwd")).wqids as Qid[]).length).to.equal(1);
    await c.walk(0, 2, "slash");
    expect(await tryRead(2)).to.equal(Errno.ELOOP);
    expect(errnoOf(await c.call({ type: P9.Treaddir, fid: 2, offset: 0n, count: 1000 }))).to.equal(Errno.EBADF);
  });

  it("symlinks the guest creates pointing out are stored as text and never followed by the server", async () => {
    const r = await c.call({ type: P9.Tsymlink, fid: 0, name: s("evil"), symtgt: s(secret), gid: 0 });
    expect(r.type).to.equal(P9.Rsymlink);
    await c.walk(0, 1, "evil");
    expect(await tryRead(1)).to.equal(Errno.ELOOP);
    await c.walk(0, 2, "evil");
    expect(errnoOf(await c.call({ type: P9.Tsetattr, fid: 2, valid: 1, mode: 0o777 }))).to.equal(Errno.EOPNOTSUPP);
    expect(errnoOf(await c.call({ type: P9.Tsetattr, fid: 2, valid: 8, size: 0n }))).to.equal(Errno.EINVAL);
    await c.call({ type: P9.Tsetattr, fid: 2, valid: 0x20 | 0x100, mtime_sec: 1n, mtime_nsec: 0n }); // the link's own time
    expect(statSync(secret).mtimeMs).to.be.greaterThan(1000);
    secretUntouched();
  });

  it("a symlink swapped in between the walk and the open: the open reaches the walked file, not the link", async () => {
    writeFileSync(join(root, "f"), "inside");
    await c.walk(0, 1, "f");
    renameSync(join(root, "f"), join(root, "f.orig"));
    symlinkSync(secret, join(root, "f"));
    expect(await tryRead(1)).to.equal("inside");
    const w = await c.call({ type: P9.Twrite, fid: 1, offset: 0n, data: s("X") });
    expect(errnoOf(w)).to.equal(Errno.EBADF); // opened read-only: no write
    await c.walk(0, 2, "f"); // walking again finds the link itself
    expect(await tryRead(2)).to.equal(Errno.ELOOP);
    secretUntouched();
  });

  it("a directory swapped for a symlink after the walk: creating in the held fid stays inside", async () => {
    mkdirSync(join(root, "d"));
    await c.walk(0, 1, "d");
    renameSync(join(root, "d"), join(root, "d.orig"));
    symlinkSync(outside, join(root, "d"));
    expect((await c.call({ type: P9.Tlcreate, fid: 1, name: s("new"), flags: O_RDWR, mode: 0o644, gid: 0 })).type).to.equal(P9.Rlcreate);
    expect(existsSync(join(root, "d.orig", "new"))).to.equal(true);
    await c.walk(0, 2, "d");
    expect(errnoOf(await c.call({ type: P9.Tmkdir, dfid: 2, name: s("x"), mode: 0o755, gid: 0 }))).to.equal(Errno.ENOTDIR);
    secretUntouched();
  });

  it("a directory moved out of the share by the host: '..' from it is refused", async () => {
    mkdirSync(join(root, "d"));
    await c.walk(0, 1, "d");
    renameSync(join(root, "d"), join(outside, "d"));
    expect(errnoOf(await c.walk(1, 2, ".."))).to.equal(Errno.ENOENT);
    unlinkSync(secret);
    writeFileSync(secret, "TOP SECRET", { mode: 0o644 });
    rmSync(join(outside, "d"), { recursive: true });
    secretUntouched();
  });

  it("hard links: the guest cannot link a symlink to an outside file, nor name an outside target", async () => {
    symlinkSync(secret, join(root, "s"));
    await c.walk(0, 1, "s");
    expect(errnoOf(await c.call({ type: P9.Tlink, dfid: 0, fid: 1, name: s("hard") }))).to.equal(Errno.EOPNOTSUPP);
    expect(existsSync(join(root, "hard"))).to.equal(false);
    writeFileSync(join(root, "in"), "x");
    await c.walk(0, 2, "in");
    for (const bad of ["../outside/hard", "/tmp/hard", ".."]) {
      expect(errnoOf(await c.call({ type: P9.Tlink, dfid: 0, fid: 2, name: s(bad) }))).to.equal(Errno.EINVAL);
    }
    secretUntouched();
  });

  it("names with '/', NUL, '.', '..' or over 255 bytes are refused by every operation that takes one", async () => {
    writeFileSync(join(root, "in"), "x");
    await c.walk(0, 1, "in");
    const bad: Uint8Array[] = [s("../outside/secret"), s("/etc/passwd"), s("a/b"), new Uint8Array([0x61, 0, 0x62]), s(".."), s("."), s(""), s("x".repeat(256))];
    for (const name of bad) {
      const want = name.length > 255 ? Errno.ENAMETOOLONG : Errno.EINVAL;
      const calls: Omit<P9Message, "tag">[] = [
        { type: P9.Twalk, fid: 0, newfid: 5, wnames: [name] },
        { type: P9.Tmkdir, dfid: 0, name, mode: 0o755, gid: 0 },
        { type: P9.Tsymlink, fid: 0, name, symtgt: s("x"), gid: 0 },
        { type: P9.Tmknod, dfid: 0, name, mode: 0o010644, major: 0, minor: 0, gid: 0 },
        { type: P9.Tlink, dfid: 0, fid: 1, name },
        { type: P9.Trenameat, olddirfid: 0, oldname: s("in"), newdirfid: 0, newname: name },
        { type: P9.Trenameat, olddirfid: 0, oldname: name, newdirfid: 0, newname: s("x") },
        { type: P9.Tunlinkat, dirfid: 0, name, flags: 0 },
        { type: P9.Trename, fid: 1, dfid: 0, name },
      ];
      if (name.length === 2 && name[0] === 0x2e) calls.shift(); // ".." is a legal walk (stays inside)
      for (const m of calls) expect(errnoOf(await c.call(m)), `${m.type} ${JSON.stringify(text(name))}`).to.equal(want);
      await c.walk(0, 6);
      const cr = await c.call({ type: P9.Tlcreate, fid: 6, name, flags: O_RDWR, mode: 0o644, gid: 0 });
      expect(errnoOf(cr)).to.equal(want);
      await c.call({ type: P9.Tclunk, fid: 6 });
    }
    expect(readdirSync(root)).to.deep.equal(["in"]);
    secretUntouched();
  });

  it("a guest-created symlink swapped under rename/unlink names only entries of the held directory", async () => {
    mkdirSync(join(root, "d"));
    writeFileSync(join(root, "d", "victim"), "v");
    await c.walk(0, 1, "d");
    renameSync(join(root, "d"), join(root, "d.orig"));
    symlinkSync(outside, join(root, "d"));
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 1, name: s("victim"), flags: 0 })).type).to.equal(P9.Runlinkat);
    expect(existsSync(join(root, "d.orig", "victim"))).to.equal(false);
    expect(errnoOf(await c.call({ type: P9.Tunlinkat, dirfid: 1, name: s("secret"), flags: 0 }))).to.equal(Errno.ENOENT);
    expect(errnoOf(await c.call({ type: P9.Trenameat, olddirfid: 1, oldname: s("secret"), newdirfid: 0, newname: s("stolen") }))).to.equal(Errno.ENOENT);
    secretUntouched();
  });
});
