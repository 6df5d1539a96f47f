/**
 * File events on the server's side, with the real pieces on temporary directories: the host
 * watcher (share/host-watch.ts, inotify through the addon) turning host changes at any depth into
 * events, echo suppression of the server's own operations for a guest, the injector's view and
 * no-op answers (share/inject.ts) — and that the injector can change nothing on the host —, and
 * the watcher's bounds and directory moves.
 */
import { expect } from "chai";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EventKind, type EventQueue, type ShareEvent } from "../../src/share/events.js";
import { HostWatcher } from "../../src/share/host-watch.js";
import { INJECTOR_UID } from "../../src/share/inject.js";
import { Errno } from "../../src/share/host-fs.js";
import type { Share } from "../../src/share/registry.js";
import { P9, s, type Qid } from "../../src/share/wire.js";
import { TestClient, errnoOf, registryWith, tempDir } from "./client.js";

const str = (e: ShareEvent) => `${Object.keys(EventKind).find((k) => EventKind[k as keyof typeof EventKind] === e.kind)} ${Buffer.from(e.path).toString()}${e.toPath ? ` ${Buffer.from(e.toPath).toString()}` : ""}${e.isDir ? " dir" : ""}`;

/** Events taken from `q` until `want` are all there (or `ms` passed). */
async function collect(q: EventQueue, want: string[], ms = 3000): Promise<string[]> {
  const got: string[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end && !want.every((w) => got.includes(w))) {
    await new Promise((r) => setTimeout(r, 10));
    got.push(...q.take().map(str));
  }
  return got;
}

describe("share/events on the server: host watcher, echo suppression, the injector", () => {
  let root: string;
  let outside: string;
  let c: TestClient;
  let share: Share;
  let q: EventQueue;
  let w: HostWatcher;
  const O_RDWR = 2;

  beforeEach(async () => {
    const top = tempDir("skiff-events-");
    root = join(top, "share");
    outside = join(top, "outside");
    mkdirSync(join(root, "a", "b", "c"), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(root, "a", "b", "c", "f"), "host data");
    c = new TestClient(registryWith("s", root));
    share = c.registry.lookup("s")!;
    q = share.events.subscribe();
    w = new HostWatcher(share, share.events);
    await c.version();
    await c.attach("s", 0, 0);
    await c.attach("s", 100, INJECTOR_UID);
  });
  afterEach(() => {
    w.close();
    c.conn.close();
    c.registry.close();
    rmSync(join(root, ".."), { recursive: true, force: true });
  });

  it("host changes at depth 3 become events with their paths: create, modify, attrib, rename, delete, mkdir", async () => {
    const d = join(root, "a", "b", "c");
    writeFileSync(join(d, "n"), "");
    appendFileSync(join(d, "f"), "+");
    chmodSync(join(d, "f"), 0o600);
    renameSync(join(d, "n"), join(root, "a", "m"));
    rmSync(join(root, "a", "m"));
    mkdirSync(join(d, "dd"));
    const want = ["Create a/b/c/n", "Modify a/b/c/f", "Attrib a/b/c/f", "Rename a/b/c/n a/m", "Delete a/m", "Create a/b/c/dd dir"];
    expect(await collect(q, want)).to.include.members(want);
  });

  it("a directory the host creates is watched at once, and what appeared in it before its watch is announced", async () => {
    mkdirSync(join(root, "a", "n1", "n2", "n3"), { recursive: true });
    writeFileSync(join(root, "a", "n1", "n2", "n3", "deep"), "");
    const want = ["Create a/n1 dir", "Create a/n1/n2 dir", "Create a/n1/n2/n3 dir", "Create a/n1/n2/n3/deep"];
    expect(await collect(q, want)).to.include.members(want);
    writeFileSync(join(root, "a", "n1", "n2", "n3", "later"), "");
    expect(await collect(q, ["Create a/n1/n2/n3/later"])).to.include("Create a/n1/n2/n3/later");
  });

  it("a directory moved out of the share is a delete and is no longer watched; one moved in is a create", async () => {
    renameSync(join(root, "a", "b"), join(outside, "b"));
    expect(await collect(q, ["Delete a/b dir"])).to.include("Delete a/b dir");
    writeFileSync(join(outside, "b", "c", "outside-file"), "");
    mkdirSync(join(outside, "in"));
    renameSync(join(outside, "in"), join(root, "in"));
    const got = await collect(q, ["Create in dir"]);
    expect(got).to.include("Create in dir");
    expect(got.filter((e) => e.includes("outside-file"))).to.deep.equal([]);
  });

  it("the server's own operations for a guest are not sent back as events (echo suppression), a host change right after is; a guest's mkdir asks the agents to pin it", async () => {
    const walk = await c.walk(0, 1, "a", "b", "c");
    expect(walk.type).to.equal(P9.Rwalk);
    expect((await c.call({ type: P9.Tmkdir, dfid: 1, name: s("gd"), mode: 0o755, gid: 0 })).type).to.equal(P9.Rmkdir);
    await c.walk(1, 2);
    expect((await c.call({ type: P9.Tlcreate, fid: 2, name: s("gf"), flags: O_RDWR, mode: 0o644, gid: 0 })).type).to.equal(P9.Rlcreate);
    expect((await c.call({ type: P9.Twrite, fid: 2, offset: 0n, data: s("guest") })).type).to.equal(P9.Rwrite);
    await c.walk(1, 3, "f");
    expect((await c.call({ type: P9.Tsetattr, fid: 3, valid: 1, mode: 0o640, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n })).type).to.equal(P9.Rsetattr);
    expect((await c.call({ type: P9.Trenameat, olddirfid: 1, oldname: s("gf"), newdirfid: 1, newname: s("gf2") })).type).to.equal(P9.Rrenameat);
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 1, name: s("gf2"), flags: 0 })).type).to.equal(P9.Runlinkat);
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 1, name: s("gd"), flags: 0x200 })).type).to.equal(P9.Runlinkat);
    writeFileSync(join(root, "a", "b", "c", "host-after"), "");
    const got = await collect(q, ["Create a/b/c/host-after"]);
    expect(got, "only the pin requests of the guest's walk and directory, its unpin, then the host's change").to.deep.equal(["PinWalk a/b/c dir", "Pin a/b/c/gd dir", "Unpin a/b/c/gd dir", "Create a/b/c/host-after"]);
    expect(share.events.counters.suppressed).to.be.greaterThanOrEqual(7);
  });

  it("the injector changes nothing on the host: without a pending event every change is EPERM", async () => {
    await c.walk(100, 101, "a", "b", "c");
    await c.walk(101, 102, "f");
    expect(errnoOf(await c.call({ type: P9.Tmkdir, dfid: 101, name: s("x"), mode: 0o755, gid: 0 }))).to.equal(Errno.EPERM);
    expect(errnoOf(await c.call({ type: P9.Tmknod, dfid: 101, name: s("x"), mode: 0o100644, major: 0, minor: 0, gid: 0 }))).to.equal(Errno.EPERM);
    expect(errnoOf(await c.call({ type: P9.Tunlinkat, dirfid: 101, name: s("f"), flags: 0 }))).to.equal(Errno.EPERM);
    expect(errnoOf(await c.call({ type: P9.Trenameat, olddirfid: 101, oldname: s("f"), newdirfid: 101, newname: s("g") }))).to.equal(Errno.EPERM);
    expect(errnoOf(await c.call({ type: P9.Tsetattr, fid: 102, valid: 8, mode: 0, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n }))).to.equal(Errno.EPERM);
    expect(errnoOf(await c.call({ type: P9.Tlopen, fid: 102, flags: O_RDWR }))).to.equal(Errno.EPERM);
    await c.walk(101, 103);
    expect(errnoOf(await c.call({ type: P9.Tlcreate, fid: 103, name: s("y"), flags: O_RDWR, mode: 0o644, gid: 0 }))).to.equal(Errno.EPERM);
    expect(errnoOf(await c.call({ type: P9.Tlink, dfid: 101, fid: 102, name: s("h") }))).to.equal(Errno.EPERM);
    expect(readFileSync(join(root, "a", "b", "c", "f"), "utf8")).to.equal("host data");
    expect(existsSync(join(root, "a", "b", "c", "x")) || existsSync(join(root, "a", "b", "c", "g")) || existsSync(join(root, "a", "b", "c", "y"))).to.equal(false);
  });

  it("host delete: the injector still finds the name (a phantom with attributes), and its unlink is answered once as a no-op", async () => {
    rmSync(join(root, "a", "b", "c", "f"));
    expect(await collect(q, ["Delete a/b/c/f"])).to.include("Delete a/b/c/f");
    await c.walk(100, 101, "a", "b", "c");
    expect(((await c.walk(0, 5, "a", "b", "c", "f")).wqids as Qid[]).length, "other users see it gone").to.equal(3);
    const walked = await c.walk(101, 102, "f");
    expect(walked.type).to.equal(P9.Rwalk);
    const qid = (walked.wqids as Qid[])[0];
    expect(qid.path >> 63n, "a phantom's qid path").to.equal(1n);
    const attr = await c.call({ type: P9.Tgetattr, fid: 102, request_mask: 0x7ffn });
    expect(attr.type).to.equal(P9.Rgetattr);
    expect((attr.mode as number) & 0o170000).to.equal(0o100000);
    expect(errnoOf(await c.call({ type: P9.Tlopen, fid: 102, flags: 0 })), "nothing else works on a phantom").to.equal(Errno.ENOENT);
    expect((await c.call({ type: P9.Tunlinkat, dirfid: 101, name: s("f"), flags: 0 })).type).to.equal(P9.Runlinkat);
    expect(errnoOf(await c.call({ type: P9.Tunlinkat, dirfid: 101, name: s("f"), flags: 0 })), "used up").to.equal(Errno.EPERM);
    expect((await c.call({ type: P9.Tclunk, fid: 102 })).type).to.equal(P9.Rclunk);
  });

  it("host create, rename and modify: the injector's lookups and no-op answers; the host files are untouched", async () => {
    const d = join(root, "a", "b", "c");
    writeFileSync(join(d, "n"), "host");
    expect(await collect(q, ["Create a/b/c/n", "Modify a/b/c/n"])).to.include.members(["Create a/b/c/n", "Modify a/b/c/n"]);
    await c.walk(100, 101, "a", "b", "c");
    expect(errnoOf(await c.walk(101, 102, "n")), "absent for the injector until created").to.equal(Errno.ENOENT);
    expect((await c.walk(0, 6, "a", "b", "c", "n")).type, "present for everyone else").to.equal(P9.Rwalk);
    expect((await c.call({ type: P9.Tmknod, dfid: 101, name: s("n"), mode: 0o100644, major: 0, minor: 0, gid: 0 })).type).to.equal(P9.Rmknod);
    expect((await c.walk(101, 102, "n")).type, "then present").to.equal(P9.Rwalk);
    const touchMtime = { type: P9.Tsetattr, fid: 102, valid: 0x20, mode: 0, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n };
    expect((await c.call(touchMtime)).type, "the write's modify").to.equal(P9.Rsetattr);
    expect(errnoOf(await c.call(touchMtime)), "used up").to.equal(Errno.EPERM);
    appendFileSync(join(d, "n"), "+more");
    expect(await collect(q, ["Modify a/b/c/n"])).to.include("Modify a/b/c/n");
    expect((await c.call(touchMtime)).type).to.equal(P9.Rsetattr);
    renameSync(join(d, "n"), join(d, "n2"));
    expect(await collect(q, ["Rename a/b/c/n a/b/c/n2"])).to.include("Rename a/b/c/n a/b/c/n2");
    expect(errnoOf(await c.walk(101, 103, "n2")), "the target is absent for the injector").to.equal(Errno.ENOENT);
    expect((await c.call({ type: P9.Trenameat, olddirfid: 101, oldname: s("n"), newdirfid: 101, newname: s("n2") })).type).to.equal(P9.Rrenameat);
    expect(readFileSync(join(d, "n2"), "utf8")).to.equal("host+more");
    expect(share.events.counters.injected).to.equal(4);
  });

  it("bounded: past maxWatches directories are not watched, counted, and one RESCAN is queued", async () => {
    w.close();
    q.take();
    for (let i = 0; i < 5; i++) mkdirSync(join(root, `many${i}`));
    w = new HostWatcher(share, share.events, { maxWatches: 3 });
    expect(w.watches).to.equal(3);
    expect(w.counters.refused).to.be.greaterThan(0);
    expect(q.take().map((e) => e.kind)).to.deep.equal([EventKind.Rescan]);
  });
});
