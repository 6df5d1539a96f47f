/**
 * Review attacks on the 9P server's resource bounds (src/share/session.ts, fids.ts, ops-io.ts):
 * a hostile guest must not get past maxInFlight by renegotiating with Tversion, nor make the
 * server buffer extended-attribute values without a bound.
 */
import { expect } from "chai";
import { chmodSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Errno } from "../../src/share/host-fs.js";
import { P9, encodeMessage, s } from "../../src/share/wire.js";
import { RequestBudget } from "../../src/share/session.js";
import { TestClient, errnoOf, registryWith, tempDir } from "./client.js";

describe("share/bounds: resource bounds hold against a hostile guest", () => {
  let dir: string;
  let c: TestClient;

  afterEach(() => {
    c.conn.close();
    c.registry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("Tversion does not reset the in-flight bound: reads still running keep the session busy", async () => {
    dir = tempDir();
    writeFileSync(join(dir, "f"), "x".repeat(1000));
    c = new TestClient(registryWith("w", dir), { maxInFlight: 2 });
    await c.version();
    await c.attach("w");
    expect((await c.walk(0, 1, "f")).type).to.equal(P9.Rwalk);
    expect((await c.call({ type: P9.Tlopen, fid: 1, flags: 0 })).type).to.equal(P9.Rlopen);
    const session = c.conn.session;
    // Straight into the session (the transport would stop reading while busy): two reads go to
    // the thread pool, then the guest renegotiates, hoping to start two more.
    session.handle(encodeMessage({ type: P9.Tread, tag: 10, fid: 1, offset: 0n, count: 1000 }));
    session.handle(encodeMessage({ type: P9.Tread, tag: 11, fid: 1, offset: 0n, count: 1000 }));
    expect(session.busy).to.equal(true);
    session.handle(encodeMessage({ type: P9.Tversion, tag: 0xffff, msize: 65536, version: s("9P2000.L") }));
    expect(session.inFlight, "reads of the old session still run on the thread pool").to.equal(2);
    expect(session.busy).to.equal(true);
    // When they finish the bound is free again (and their replies are dropped: new session).
    await new Promise<void>((resolve) => {
      const poll = (): void => void (session.inFlight === 0 ? resolve() : setImmediate(poll));
      poll();
    });
    expect(session.busy).to.equal(false);
    expect(c.replies.some((r) => r.tag === 10 || r.tag === 11)).to.equal(false);
  });

  it("xattrcreate buffers are bounded per connection (ENOSPC beyond maxXattrBytes), and freed on clunk", async () => {
    dir = tempDir();
    c = new TestClient(registryWith("w", dir));
    await c.version();
    await c.attach("w");
    const full = 65536n;
    let accepted = 0;
    let refused = 0;
    for (let fid = 1; fid <= 64; fid++) {
      expect((await c.walk(0, fid)).type).to.equal(P9.Rwalk);
      const r = await c.call({ type: P9.Txattrcreate, fid, name: s("user.big"), attr_size: full, flags: 0 });
      if (r.type === P9.Rxattrcreate) accepted++;
      else (expect(errnoOf(r)).to.equal(Errno.ENOSPC), refused++);
    }
    // Without a bound, 64 fids × 64 KiB were all buffered (and 16384 fids × 64 KiB = 1 GiB).
    expect(accepted * 65536).to.be.at.most(1 << 20);
    expect(refused).to.be.greaterThan(0);
    // Clunking an attribute fid (unfinished value: EINVAL) gives its bytes back.
    expect(errnoOf(await c.call({ type: P9.Tclunk, fid: 1 }))).to.equal(Errno.EINVAL);
    expect((await c.call({ type: P9.Txattrcreate, fid: 64, name: s("user.big"), attr_size: full, flags: 0 })).type).to.equal(P9.Rxattrcreate);
  });

  it("Tflush for a running request is backpressured: a flood of flushes is not read while they wait", async () => {
    dir = tempDir();
    writeFileSync(join(dir, "f"), "data");
    c = new TestClient(registryWith("w", dir), { maxInFlight: 4 });
    await c.version();
    await c.attach("w");
    await c.walk(0, 1, "f");
    await c.call({ type: P9.Tlopen, fid: 1, flags: 0 });
    // One read goes to the thread pool; 5000 Tflush for it arrive in the same burst. Each waiting
    // flush held memory (and a reply queued at the end) until the read finished: unbounded.
    c.transport.inbound.push(encodeMessage({ type: P9.Tread, tag: 7, fid: 1, offset: 0n, count: 4 }));
    for (let i = 0; i < 5000; i++) c.transport.inbound.push(encodeMessage({ type: P9.Tflush, tag: 100 + i, oldtag: 7 }));
    c.conn.pump();
    const consumed = 5001 - c.transport.inbound.length;
    expect(consumed, "messages read while the flushes wait").to.be.at.most(1 + 4);
    // Everything is answered in the end, the read first (flush(5)).
    await new Promise<void>((resolve) => {
      const poll = (): void => void (c.replies.filter((r) => r.type === P9.Rflush).length === 5000 ? resolve() : setImmediate(poll));
      poll();
    });
    expect(c.replies.findIndex((r) => r.tag === 7)).to.be.lessThan(c.replies.findIndex((r) => r.tag === 100));
  });

  it("64-bit setattr fields: a time before 1970 (two's complement) is set as such; a size past 2^53 is EFBIG", async () => {
    dir = tempDir();
    writeFileSync(join(dir, "f"), "data");
    c = new TestClient(registryWith("w", dir));
    await c.version();
    await c.attach("w");
    await c.walk(0, 1, "f");
    const u64 = (n: bigint) => BigInt.asUintN(64, n);
    // touch -d 1969-12-31 in the guest: the client sends tv_sec -86400 as a u64.
    const r = await c.call({ type: P9.Tsetattr, fid: 1, valid: 0x10 | 0x20 | 0x80 | 0x100, atime_sec: u64(-86400n), atime_nsec: 0n, mtime_sec: u64(-86400n), mtime_nsec: 0n });
    expect(r.type).to.equal(P9.Rsetattr);
    const st = statSync(join(dir, "f"), { bigint: true });
    expect(st.mtimeNs / 1_000_000_000n).to.equal(-86400n);
    expect(errnoOf(await c.call({ type: P9.Tsetattr, fid: 1, valid: 8, size: u64(-1n) }))).to.equal(Errno.EFBIG);
    expect(errnoOf(await c.call({ type: P9.Tsetattr, fid: 1, valid: 8, size: (1n << 53n) + 1n }))).to.equal(Errno.EFBIG);
    expect(statSync(join(dir, "f")).size).to.equal(4);
  });

  it("requests of a closed connection still count against the service's budget (reconnecting does not reset it)", async () => {
    dir = tempDir();
    writeFileSync(join(dir, "f"), "x".repeat(1000));
    const budget = new RequestBudget(2);
    const registry = registryWith("w", dir);
    const first = new TestClient(registry, { maxInFlight: 2, requestBudget: budget });
    await first.version();
    await first.attach("w");
    await first.walk(0, 1, "f");
    await first.call({ type: P9.Tlopen, fid: 1, flags: 0 });
    first.conn.session.handle(encodeMessage({ type: P9.Tread, tag: 10, fid: 1, offset: 0n, count: 1000 }));
    first.conn.session.handle(encodeMessage({ type: P9.Tread, tag: 11, fid: 1, offset: 0n, count: 1000 }));
    first.conn.close(); // the guest drops the connection with both reads on the thread pool
    c = new TestClient(registry, { maxInFlight: 2, requestBudget: budget });
    expect(c.conn.session.busy, "a new connection may not start more while they run").to.equal(true);
    await new Promise<void>((resolve) => {
      const poll = (): void => void (budget.used === 0 ? resolve() : setImmediate(poll));
      poll();
    });
    expect(c.conn.session.busy).to.equal(false);
    await c.version();
    expect((await c.attach("w")).type).to.equal(P9.Rattach);
  });

  it("writing or truncating a set-user-ID file drops the set-ID bits, also when skiff runs as root (CAP_FSETID keeps them)", async () => {
    dir = tempDir();
    const f = join(dir, "tool");
    writeFileSync(f, "#!/bin/sh\n");
    chmodSync(f, 0o6755); // a set-user-ID root program that happens to be in the shared directory
    const g = join(dir, "other");
    writeFileSync(g, "x");
    chmodSync(g, 0o4755);
    c = new TestClient(registryWith("w", dir));
    await c.version();
    await c.attach("w");
    await c.walk(0, 1, "tool");
    expect((await c.call({ type: P9.Tlopen, fid: 1, flags: 2 })).type).to.equal(P9.Rlopen);
    expect((await c.call({ type: P9.Twrite, fid: 1, offset: 0n, data: s("#!/bin/sh\nid\n") })).type).to.equal(P9.Rwrite);
    expect(statSync(f).mode & 0o7777, "a guest's code in a set-user-ID program").to.equal(0o755);
    await c.walk(0, 2, "other");
    expect((await c.call({ type: P9.Tsetattr, fid: 2, valid: 8, size: 0n })).type).to.equal(P9.Rsetattr);
    expect(statSync(g).mode & 0o7777).to.equal(0o755);
    // Opening for reading leaves them alone.
    chmodSync(f, 0o4755);
    await c.walk(0, 3, "tool");
    await c.call({ type: P9.Tlopen, fid: 3, flags: 0 });
    expect(statSync(f).mode & 0o7777).to.equal(0o4755);
  });
});
