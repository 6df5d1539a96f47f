/**
 * One clock and one timer driver per network (issue 14): the TCP layer, socket translation's
 * idle flows, the forwards' UDP client mappings and the neighbour resolver all schedule on the
 * stack's `SharedTimers`, on the stack's clock, so a test that owns the clock drives them all
 * by calling `stack.timers.run()`. The UDP forward expires idle clients by that clock (it kept a
 * `setInterval` sweep on `Date.now()` before), and ARP resolution waits for the neighbour
 * table's callback instead of polling every 10 ms.
 */
import { expect } from "chai";
import { createSocket } from "node:dgram";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { IdleTable, type IdleEntry } from "../../src/stack/idle-table.js";
import { NeighborResolver } from "../../src/forward/neighbor.js";
import { UdpForward } from "../../src/forward/udp-forward.js";
import { RecordingChannel, GUEST_IP, GUEST_MAC } from "../support/stack.js";
import { describe as describeFrame } from "../support/frames.js";

class Entry implements IdleEntry {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  lastActive = 0;
  constructor(readonly key: number) {}
}

function manualStack() {
  let t = 1000;
  // IPv6 off: its router-advertisement timer would be one more item on the heap these tests count.
  const stack = new NetworkStack({ now: () => t, ipv6: false });
  const link = new RecordingChannel();
  const port = stack.attach(link);
  return { stack, link, port, advance: (ms: number) => (t += ms) };
}

describe("stack/timers: one driver and one clock for the network", () => {
  it("two owners' deadlines share the stack's one heap and each owner gets its own items back", () => {
    const { stack, advance } = manualStack();
    try {
      const endedA: number[] = [];
      const endedB: number[] = [];
      const a = new IdleTable<Entry>(stack.timers, 100, 10, (e) => endedA.push(e.key));
      const b = new IdleTable<Entry>(stack.timers, 300, 10, (e) => endedB.push(e.key));
      a.add(new Entry(1), stack.now());
      b.add(new Entry(2), stack.now());
      expect(stack.timers.pending).to.equal(2);
      advance(150);
      stack.timers.run();
      expect([endedA, endedB]).to.deep.equal([[1], []]);
      advance(200);
      stack.timers.run();
      expect([endedA, endedB]).to.deep.equal([[1], [2]]);
      expect(stack.timers.pending).to.equal(0);
    } finally {
      stack.close();
    }
  });

  it("the TCP layer schedules on the stack's driver unless given a host of its own", () => {
    const { stack } = manualStack();
    const layer = new TcpLayer(stack);
    try {
      // An active open toward a known guest: its SYN retransmission deadline is on the stack's heap.
      stack.neighbors.learn(GUEST_IP, GUEST_MAC, stack.attached[0]);
      const before = stack.timers.pending;
      layer.connect(GUEST_IP, 80);
      expect(stack.timers.pending).to.equal(before + 1);
    } finally {
      layer.close();
      stack.close();
    }
  });

  it("ARP resolution: one request at once, answered by the table's callback without polling; retries and the limit on the stack's clock", async () => {
    const { stack, link, port, advance } = manualStack();
    try {
      const r = new NeighborResolver(stack, 1000, 200);
      const arps = () => link.sent.filter((f) => describeFrame(f).kind === "arp").length;
      const found = r.resolve(GUEST_IP);
      expect(arps()).to.equal(1);
      stack.neighbors.learn(GUEST_IP, GUEST_MAC, port);
      expect(await found).to.equal(true);
      const other = GUEST_IP + 1;
      const missing = r.resolve(other);
      expect(arps()).to.equal(2);
      advance(200);
      stack.timers.run();
      expect(arps()).to.equal(3);
      advance(800);
      stack.timers.run();
      expect(await missing).to.equal(false);
      expect(stack.timers.pending).to.equal(0);
    } finally {
      stack.close();
    }
  });

  it("a UDP forward's client mapping expires by the stack's clock and timer (no interval sweep)", async () => {
    const { stack, port, advance } = manualStack();
    stack.neighbors.learn(GUEST_IP, GUEST_MAC, port);
    const resolver = new NeighborResolver(stack);
    const f = await UdpForward.listen(stack, resolver, { proto: "udp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: "192.168.65.3", guestPort: 53 }, GUEST_IP, { idleMs: 5000 });
    const client = createSocket("udp4");
    try {
      await new Promise<void>((resolve) => client.send("hi", f.hostPort, "127.0.0.1", () => resolve()));
      for (let i = 0; i < 50 && f.clientCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(f.clientCount).to.equal(1);
      advance(4999);
      stack.timers.run();
      expect(f.clientCount).to.equal(1);
      advance(1);
      stack.timers.run();
      expect(f.clientCount).to.equal(0);
      expect(f.counters).to.deep.include({ clientsOpened: 1, clientsExpired: 1, open: 0 });
    } finally {
      client.close();
      f.destroy();
      stack.close();
    }
  });
});
