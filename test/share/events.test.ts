/**
 * share/events.ts, the sans-I/O core of file events: the per-subscriber queue and its bound
 * (overflow → one RESCAN, counted, the dropped events' injections given up), the expected
 * injections (what the injector's lookup sees, which operation may use them up, TTL, bound,
 * coalescing, giving up), and echo suppression of the server's own operations (window, bound).
 * Time is passed explicitly.
 */
import { expect } from "chai";
import { EventKind, EventQueue, ROOT_KEY, Role, Seen, ShareEventCounters, ShareEvents, entryKey, type ShareEvent } from "../../src/share/events.js";

const b = (t: string): Uint8Array => new TextEncoder().encode(t);
const ev = (kind: ShareEvent["kind"], path: string, toPath?: string): ShareEvent => ({ kind, isDir: false, path: b(path), toPath: toPath === undefined ? undefined : b(toPath) });
const K = (name: string, dir = "1:2") => entryKey(dir, b(name));

describe("share/events: queue, expected injections, echo suppression", () => {
  it("a subscriber's queue is bounded: past maxQueued it holds one RESCAN, counted once, and reports what it dropped", () => {
    const counters = new ShareEventCounters();
    const q = new EventQueue(3, counters);
    for (let i = 0; i < 3; i++) expect(q.push(ev(EventKind.Create, `f${i}`))).to.deep.equal([]);
    const dropped = q.push(ev(EventKind.Create, "f3"));
    expect(dropped.map((e) => Buffer.from(e.path).toString())).to.deep.equal(["f0", "f1", "f2", "f3"]);
    expect(q.push(ev(EventKind.Delete, "f4")).length, "while overflowed, new events are dropped too").to.equal(1);
    expect(counters.overflows).to.equal(1);
    const taken = q.take();
    expect(taken.map((e) => e.kind)).to.deep.equal([EventKind.Rescan]);
    expect(q.push(ev(EventKind.Create, "again"))).to.deep.equal([]);
    expect(q.take().map((e) => Buffer.from(e.path).toString())).to.deep.equal(["again"]);
  });

  it("nothing is queued or expected while no agent is subscribed", () => {
    const e = new ShareEvents();
    e.publish(ev(EventKind.Create, "x"), K("x"), 0);
    expect(e.pendingSize).to.equal(0);
    expect(e.seen(K("x"), 0).seen).to.equal(Seen.Host);
    e.markOwn(K("x"), 0);
    expect(e.isEcho(K("x"), 1)).to.equal(false);
  });

  it("what the injector's lookup sees: a pending create or rename target is absent, a pending delete/rename source/modify/attrib present", () => {
    const e = new ShareEvents();
    const q = e.subscribe();
    e.publish({ kind: EventKind.Create, isDir: true, path: b("d") }, K("d"), 0);
    e.publish(ev(EventKind.Delete, "gone"), K("gone"), 0);
    e.publish(ev(EventKind.Rename, "old", "new"), K("old"), 0, K("new"));
    e.publish(ev(EventKind.Modify, "m"), K("m"), 0);
    expect(e.seen(K("d"), 1)).to.deep.equal({ seen: Seen.Absent, isDir: true });
    expect(e.seen(K("gone"), 1)).to.deep.equal({ seen: Seen.Present, isDir: false });
    expect(e.seen(K("old"), 1).seen).to.equal(Seen.Present);
    expect(e.seen(K("new"), 1).seen).to.equal(Seen.Absent);
    expect(e.seen(K("m"), 1).seen).to.equal(Seen.Present);
    expect(e.seen(K("other"), 1).seen).to.equal(Seen.Host);
    expect(q.take().length).to.equal(4);
  });

  it("only the matching operation uses an expectation up, once per subscriber; anything else is refused and counted", () => {
    const e = new ShareEvents();
    e.subscribe();
    e.subscribe();
    e.publish(ev(EventKind.Delete, "x"), K("x"), 0);
    expect(e.consume(K("x"), [Role.Create], 1), "a create cannot use a delete").to.equal(false);
    expect(e.consume(K("y"), [Role.Delete], 1), "nothing pending there").to.equal(false);
    expect(e.consume(K("x"), [Role.Delete], 1)).to.equal(true);
    expect(e.consume(K("x"), [Role.Delete], 1), "the second agent's").to.equal(true);
    expect(e.consume(K("x"), [Role.Delete], 1), "used up").to.equal(false);
    expect(e.counters.injected).to.equal(2);
    expect(e.counters.refused).to.equal(3);
    expect(e.pendingSize).to.equal(0);
  });

  it("expectations of one entry are used in order: delete then create of the same name", () => {
    const e = new ShareEvents();
    e.subscribe();
    e.publish(ev(EventKind.Delete, "x"), K("x"), 0);
    e.publish(ev(EventKind.Create, "x"), K("x"), 0);
    expect(e.seen(K("x"), 1).seen, "present until deleted").to.equal(Seen.Present);
    expect(e.consume(K("x"), [Role.Create], 1)).to.equal(false);
    expect(e.consume(K("x"), [Role.Delete], 1)).to.equal(true);
    expect(e.seen(K("x"), 1).seen, "then absent until created").to.equal(Seen.Absent);
    expect(e.consume(K("x"), [Role.Create], 1)).to.equal(true);
  });

  it("a rename needs both ends expected", () => {
    const e = new ShareEvents();
    e.subscribe();
    e.publish(ev(EventKind.Rename, "a", "b"), K("a"), 0, K("b"));
    expect(e.consumeRename(K("a"), K("c"), 1)).to.equal(false);
    expect(e.consumeRename(K("b"), K("a"), 1)).to.equal(false);
    expect(e.consumeRename(K("a"), K("b"), 1)).to.equal(true);
    expect(e.pendingSize).to.equal(0);
  });

  it("expectations expire after pendingTtlMs, and at most maxPending are kept (oldest dropped, counted)", () => {
    const e = new ShareEvents({ pendingTtlMs: 100, maxPending: 2 });
    e.subscribe();
    e.publish(ev(EventKind.Delete, "a"), K("a"), 0);
    expect(e.consume(K("a"), [Role.Delete], 101)).to.equal(false);
    expect(e.counters.expired).to.equal(1);
    e.publish(ev(EventKind.Delete, "a"), K("a"), 200);
    e.publish(ev(EventKind.Delete, "b"), K("b"), 200);
    e.publish(ev(EventKind.Delete, "c"), K("c"), 200);
    expect(e.pendingSize).to.equal(2);
    expect(e.consume(K("a"), [Role.Delete], 201), "the oldest was dropped").to.equal(false);
    expect(e.consume(K("c"), [Role.Delete], 201)).to.equal(true);
  });

  it("a modify still waiting for its injection covers the next modify of the same entry", () => {
    const e = new ShareEvents();
    const q = e.subscribe();
    for (let i = 0; i < 5; i++) e.publish(ev(EventKind.Modify, "m"), K("m"), i);
    expect(q.take().length).to.equal(1);
    expect(e.counters.coalesced).to.equal(4);
    expect(e.consume(K("m"), [Role.Modify], 10)).to.equal(true);
    e.publish(ev(EventKind.Modify, "m"), K("m"), 11);
    expect(q.take().length, "after the injection, a new modify is an event again").to.equal(1);
    e.publish(ev(EventKind.Create, "c"), K("c"), 20);
    e.publish(ev(EventKind.Create, "c"), K("c"), 21);
    expect(q.take().length, "creates too").to.equal(1);
  });

  it("giving an event up (the agent failed it) frees its entry for the events after it", () => {
    const e = new ShareEvents();
    const q = e.subscribe();
    e.publish(ev(EventKind.Create, "x"), K("x"), 0);
    e.publish(ev(EventKind.Modify, "x"), K("x"), 0);
    const [create] = q.take();
    expect(e.seen(K("x"), 1).seen).to.equal(Seen.Absent);
    e.giveUp(create);
    expect(e.counters.abandoned).to.equal(1);
    expect(e.seen(K("x"), 1).seen, "the modify is next").to.equal(Seen.Present);
    expect(e.consume(K("x"), [Role.Modify], 1)).to.equal(true);
  });

  it("an overflowing subscriber gives up the dropped events' injections; a rescan expects an attribute change of the root", () => {
    const e = new ShareEvents({ maxQueued: 2 });
    const q = e.subscribe();
    for (const n of ["a", "b", "c"]) e.publish(ev(EventKind.Delete, n), K(n), 0);
    expect(e.pendingSize, "nothing waits for injections that will not come").to.equal(0);
    expect(e.counters.overflows).to.equal(1);
    e.rescan(0);
    expect(q.take().map((x) => x.kind)).to.deep.equal([EventKind.Rescan]);
    expect(e.consume(ROOT_KEY, [Role.Attrib], 1)).to.equal(true);
  });

  it("echo suppression: host events on an entry the server just changed are dropped within echoWindowMs, counted", () => {
    const e = new ShareEvents({ echoWindowMs: 50 });
    e.subscribe();
    e.markOwn(K("x"), 100);
    expect(e.isEcho(K("x"), 120)).to.equal(true);
    expect(e.isEcho(K("y"), 120)).to.equal(false);
    expect(e.isEcho(K("x"), 151), "after the window").to.equal(false);
    expect(e.counters.suppressed).to.equal(1);
  });

  it("echo marks are bounded (oldest dropped)", () => {
    const e = new ShareEvents({ maxEchoEntries: 3 });
    e.subscribe();
    for (const n of ["a", "b", "c", "d"]) e.markOwn(K(n), 0);
    expect(e.echoSize).to.equal(3);
    expect(e.isEcho(K("a"), 1)).to.equal(false);
    expect(e.isEcho(K("d"), 1)).to.equal(true);
  });

  it("the last subscriber leaving clears every expectation", () => {
    const e = new ShareEvents();
    const q = e.subscribe();
    e.publish(ev(EventKind.Delete, "x"), K("x"), 0);
    e.unsubscribe(q);
    expect(e.pendingSize).to.equal(0);
    expect(e.active).to.equal(false);
  });
});
