/**
 * share/event-service.ts, the gateway's file-event service, over a stand-in TCP flow: the
 * subscription (the share's name), the READY frame and event frames (encode/decode round trip),
 * the agent's acknowledgements (a failure gives the injection up), pinning on demand (a guest
 * user's walk to a directory asks the agent to pin it and is answered once the agent has
 * acknowledged, or after pinWaitMs), hostile input (an unknown
 * share, an endless name), the bound on connections, and the host watcher's lifetime (one per
 * watched share, closed with its last subscriber).
 */
import { expect } from "chai";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EventService, FRAME_READY, decodeFrames, encodeFrames, type EventFlow } from "../../src/share/event-service.js";
import { EventKind, Seen } from "../../src/share/events.js";
import { TcpEvent } from "../../src/stack/tcp.js";
import { ShareRegistry } from "../../src/share/registry.js";
import { INJECTOR_UID, pathInShare } from "../../src/share/inject.js";
import { openSync, closeSync, constants as fsc } from "node:fs";
import { P9, type Qid } from "../../src/share/wire.js";
import { TestClient, registryWith, tempDir } from "./client.js";

class FakeFlow implements EventFlow {
  onEvents: EventFlow["onEvents"];
  inbound: Uint8Array[] = [];
  sent: number[] = [];
  accepted = false;
  refused = false;
  finished = false;
  accept(): void {
    this.accepted = true;
  }
  refuse(): void {
    this.refused = true;
  }
  read(max?: number): Uint8Array {
    const head = this.inbound.shift();
    if (head === undefined) return new Uint8Array(0);
    if (max !== undefined && head.length > max) {
      this.inbound.unshift(head.subarray(max));
      return head.subarray(0, max);
    }
    return head;
  }
  write(data: Uint8Array): number {
    this.sent.push(...data);
    return data.length;
  }
  shutdownWrite(): void {
    this.finished = true;
  }
  /** The peer sends `bytes`. */
  send(bytes: Uint8Array | string): void {
    this.inbound.push(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
    this.onEvents?.(this as never, TcpEvent.Readable);
  }
  frames() {
    return decodeFrames(Uint8Array.from(this.sent)).events;
  }
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe("share/event-service: the file-event channel to guest agents", () => {
  let root: string;
  let svc: EventService;
  const registry = () => registryWith("s", root);
  let reg: ReturnType<typeof registry>;

  beforeEach(() => {
    root = tempDir("skiff-evsvc-");
    mkdirSync(join(root, "a", "b"), { recursive: true });
    reg = registry();
    svc = new EventService(reg, { maxSubscribers: 2 });
  });
  afterEach(() => {
    svc.close();
    reg.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("frames round-trip (kinds, directory flag, both paths)", () => {
    const enc = (t: string) => new TextEncoder().encode(t);
    const bytes = encodeFrames([
      { kind: EventKind.Rename, isDir: true, path: enc("a/b"), toPath: enc("c/d é") },
      { kind: EventKind.Modify, isDir: false, path: enc("f") },
    ]);
    const { events, used } = decodeFrames(bytes);
    expect(used).to.equal(bytes.length);
    expect(events).to.deep.equal([
      { kind: EventKind.Rename, isDir: true, path: "a/b", toPath: "c/d é" },
      { kind: EventKind.Modify, isDir: false, path: "f", toPath: "" },
    ]);
    expect(decodeFrames(bytes.subarray(0, bytes.length - 1)).events.length, "a partial frame waits").to.equal(1);
  });

  it("an agent subscribes by name, gets READY, then the host's changes as frames; a failed replay gives the injection up", async () => {
    const f = new FakeFlow();
    svc.serve(f);
    expect(f.accepted).to.equal(true);
    f.send("s\n");
    expect(f.frames().map((e) => e.kind)).to.deep.equal([FRAME_READY]);
    const share = reg.lookup("s")!;
    expect(svc.watcherOf(share)).to.not.equal(undefined);
    writeFileSync(join(root, "a", "b", "new"), "");
    await until(() => f.frames().length >= 2);
    expect(f.frames()[1]).to.deep.equal({ kind: EventKind.Create, isDir: false, path: "a/b/new", toPath: "" });
    const pendingBefore = share.events.pendingSize;
    expect(pendingBefore).to.be.greaterThan(0);
    f.send(Uint8Array.of(1)); // the agent could not replay it
    expect(svc.counters.failedInjections).to.equal(1);
    expect(share.events.pendingSize).to.equal(pendingBefore - 1);
  });

  it("an unknown share or an endless name ends the connection; past maxSubscribers connections are refused", () => {
    const unknown = new FakeFlow();
    svc.serve(unknown);
    unknown.send("nope\n");
    expect(unknown.finished).to.equal(true);
    const endless = new FakeFlow();
    svc.serve(endless);
    endless.send("x".repeat(200));
    expect(endless.finished).to.equal(true);
    const a = new FakeFlow();
    const b = new FakeFlow();
    const c = new FakeFlow();
    svc.serve(a);
    svc.serve(b);
    svc.serve(c);
    expect([a.accepted, b.accepted, c.refused]).to.deep.equal([true, true, true]);
    expect(svc.counters.refused).to.equal(1);
  });

  it("the host tree is watched while an agent is subscribed: one watcher per share, closed with the last subscriber (expectations cleared)", async () => {
    const share = reg.lookup("s")!;
    const a = new FakeFlow();
    const b = new FakeFlow();
    svc.serve(a);
    svc.serve(b);
    a.send("s\n");
    b.send("s\n");
    const w = svc.watcherOf(share);
    expect(w?.watches).to.equal(3);
    writeFileSync(join(root, "a", "x"), "");
    await until(() => a.frames().length >= 2 && b.frames().length >= 2);
    a.onEvents?.(a as never, TcpEvent.Closed);
    expect(svc.watcherOf(share), "still watched for b").to.equal(w);
    b.onEvents?.(b as never, TcpEvent.PeerFin);
    expect(b.finished).to.equal(true);
    expect(svc.watcherOf(share)).to.equal(undefined);
    expect(share.events.pendingSize).to.equal(0);
    expect(share.events.seen("anything", 0).seen).to.equal(Seen.Host);
  });

  it("pinning on demand: a guest user's walk to a directory asks the agent (PIN_WALK) and is answered only once the agent acknowledges; files, the injector and a silent agent (pinWaitMs) do not hold it", async () => {
    const r = new ShareRegistry({ pinWaitMs: 1000 });
    r.add({ name: "s", path: root, readOnly: false });
    writeFileSync(join(root, "a", "f"), "");
    const s2 = new EventService(r);
    const c = new TestClient(r);
    try {
      const agent = new FakeFlow();
      s2.serve(agent);
      agent.send("s\n");
      await c.version();
      await c.attach("s", 0, 1000);
      await c.attach("s", 100, INJECTOR_UID);
      let answered = false;
      const walk = c.walk(0, 1, "a", "b").then((m) => ((answered = true), m));
      await until(() => agent.frames().length >= 2);
      expect(agent.frames()[1]).to.deep.equal({ kind: EventKind.PinWalk, isDir: true, path: "a/b", toPath: "" });
      await new Promise((res) => setTimeout(res, 50));
      expect(answered, "the walk waits for the agent").to.equal(false);
      agent.send(Uint8Array.of(0)); // READY needs no acknowledgement: this one is the PIN_WALK's
      expect(((await walk).wqids as Qid[]).length).to.equal(2);
      const events = r.lookup("s")!.events.counters;
      expect((await c.walk(0, 2, "a", "f")).type, "a file").to.equal(P9.Rwalk);
      expect((await c.walk(100, 101, "a")).type, "the injector").to.equal(P9.Rwalk);
      expect([events.pinRequests, events.pinWaitTimeouts], "neither asked nor waited").to.deep.equal([1, 0]);
      expect(agent.frames().length, "nothing sent").to.equal(2);
      const t1 = performance.now();
      expect((await c.walk(0, 3, "a")).type).to.equal(P9.Rwalk);
      expect(performance.now() - t1, "a silent agent holds the walk for pinWaitMs only").to.be.greaterThanOrEqual(900);
      expect([events.pinRequests, events.pinWaitTimeouts]).to.deep.equal([2, 1]);
    } finally {
      c.conn.close();
      s2.close();
      r.close();
    }
  });

  it("a walk to a directory the host watcher has not seen yet (made a moment ago) still asks the agent, naming it by the descriptor's path", async () => {
    const r = new ShareRegistry({ pinWaitMs: 1000 });
    const share = r.add({ name: "s", path: root, readOnly: false });
    const s2 = new EventService(r);
    try {
      const agent = new FakeFlow();
      s2.serve(agent);
      agent.send("s\n");
      await until(() => agent.frames().length >= 1);
      // Made now, read by nobody yet: the watcher's IN_CREATE is still queued (no turn has passed).
      mkdirSync(join(root, "a", "fresh", "deep"), { recursive: true });
      const fd = openSync(join(root, "a", "fresh", "deep"), fsc.O_RDONLY | fsc.O_DIRECTORY);
      try {
        expect(Buffer.from(pathInShare(share, fd)!).toString()).to.equal("a/fresh/deep");
        let settled = false;
        expect(share.events.pinWalked("no-such-key", () => (settled = true), () => pathInShare(share, fd))).to.equal(true);
        await until(() => agent.frames().length >= 2);
        expect(agent.frames()[1]).to.deep.equal({ kind: EventKind.PinWalk, isDir: true, path: "a/fresh/deep", toPath: "" });
        agent.send(Uint8Array.of(0));
        await until(() => settled);
      } finally {
        closeSync(fd);
      }
      const rootFd = openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY);
      expect(pathInShare(share, rootFd), "the root is not below itself").to.equal(undefined);
      closeSync(rootFd);
      const outside = openSync("/tmp", fsc.O_RDONLY | fsc.O_DIRECTORY);
      expect(pathInShare(share, outside)).to.equal(undefined);
      closeSync(outside);
    } finally {
      s2.close();
      r.close();
    }
  });
});
