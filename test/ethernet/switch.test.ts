/**
 * The learning switch, frame by frame with an explicit clock: learning, unicast to the learned
 * port only, flooding, no hair-pinning, a bounded and ageing table, closed ports forgotten,
 * and a port whose channel refuses frames not affecting the others.
 */
import { expect } from "chai";
import fc from "fast-check";
import { BaseFrameChannel } from "../../src/common/frame-channel.js";
import { EthernetSwitch, type SwitchPort } from "../../src/ethernet/switch.js";
import { emitEthernet } from "../../src/ethernet/ethernet.js";
import { MAC_BROADCAST } from "../../src/common/addr.js";

/** A link the test drives by hand: `inject` is a frame from the guest, `sent` what the switch sent it. */
class HandLink extends BaseFrameChannel {
  sent: Uint8Array[] = [];
  /** When set, the link's queue is full: every frame is dropped and counted. */
  refuse = false;
  constructor(name: string) {
    super(name, 1500);
  }
  inject(frame: Uint8Array): void {
    this.deliver(frame);
  }
  protected transmit(frame: Uint8Array): boolean {
    if (this.refuse) {
      this.stats.txDrops++;
      return false;
    }
    this.sent.push(Uint8Array.from(frame));
    this.stats.txFrames++;
    return true;
  }
  protected shutdown(): void {}
}

const MAC = (n: number): number => 0x5254_0000_0000 + n;

function frame(src: number, dst: number, tag = 0): Uint8Array {
  const f = new Uint8Array(60);
  emitEthernet({ dst, src, ethertype: 0x0800 }, f, 0);
  f[20] = tag;
  return f;
}

function setup(n: number, opts: ConstructorParameters<typeof EthernetSwitch>[0] = {}) {
  let t = 0;
  const sw = new EthernetSwitch({ now: () => t, ...opts });
  const links: HandLink[] = [];
  const ports: SwitchPort[] = [];
  for (let i = 0; i < n; i++) {
    const l = new HandLink(`l${i}`);
    links.push(l);
    ports.push(sw.addPort(l));
  }
  const clear = () => links.forEach((l) => (l.sent = []));
  return { sw, links, ports, clear, setTime: (v: number) => (t = v) };
}

describe("ethernet/switch", () => {
  it("learns source MACs per port", () => {
    const { sw, links, ports } = setup(3);
    links[0].inject(frame(MAC(1), MAC_BROADCAST));
    links[2].inject(frame(MAC(3), MAC_BROADCAST));
    expect(sw.lookup(MAC(1))).to.equal(ports[0]);
    expect(sw.lookup(MAC(3))).to.equal(ports[2]);
    expect(sw.lookup(MAC(2))).to.equal(undefined);
    expect(sw.counters.learned).to.equal(2);
  });

  it("floods broadcast, multicast and unknown unicast to every other port, never back", () => {
    const { sw, links, clear } = setup(4);
    for (const dst of [MAC_BROADCAST, 0x0100_5e00_0001, MAC(9)]) {
      clear();
      links[1].inject(frame(MAC(2), dst));
      expect(links.map((l) => l.sent.length)).to.deep.equal([1, 0, 1, 1]);
    }
    expect(sw.counters.flooded).to.equal(3);
  });

  it("sends unicast to a learned MAC out of that port only", () => {
    const { sw, links, ports, clear } = setup(4);
    links[3].inject(frame(MAC(4), MAC_BROADCAST));
    clear();
    const f = frame(MAC(1), MAC(4), 42);
    links[0].inject(f);
    expect(links.map((l) => l.sent.length)).to.deep.equal([0, 0, 0, 1]);
    expect(links[3].sent[0]).to.deep.equal(f);
    expect(sw.counters.unicast).to.equal(1);
    expect(ports[3].counters.txFrames).to.equal(1);
    expect(ports[0].counters.rxFrames).to.equal(1);
  });

  it("filters a frame whose destination is behind its own ingress port (no hair-pinning)", () => {
    const { sw, links, clear } = setup(3);
    links[0].inject(frame(MAC(1), MAC_BROADCAST));
    links[0].inject(frame(MAC(5), MAC_BROADCAST)); // a second MAC behind the same port
    clear();
    links[0].inject(frame(MAC(1), MAC(5)));
    expect(links.map((l) => l.sent.length)).to.deep.equal([0, 0, 0]);
    expect(sw.counters.dropped("same-port")).to.equal(1);
  });

  it("moves an address that appears on another port", () => {
    const { sw, links, ports } = setup(2);
    links[0].inject(frame(MAC(1), MAC_BROADCAST));
    links[1].inject(frame(MAC(1), MAC_BROADCAST));
    expect(sw.lookup(MAC(1))).to.equal(ports[1]);
    expect(sw.counters.moves).to.equal(1);
  });

  it("drops group source addresses and runt frames, counted", () => {
    const { sw, links } = setup(2);
    links[0].inject(frame(MAC_BROADCAST, MAC(2)));
    links[0].inject(new Uint8Array(13));
    expect(links[1].sent.length).to.equal(0);
    expect(sw.counters.dropped("group-source")).to.equal(1);
    expect(sw.counters.dropped("malformed")).to.equal(1);
    expect(sw.macCount).to.equal(0);
  });

  it("ages entries out: a stale destination is flooded again and expire() sweeps", () => {
    const { sw, links, setTime, clear } = setup(3, { agingMs: 1000 });
    links[2].inject(frame(MAC(3), MAC_BROADCAST));
    setTime(999);
    clear();
    links[0].inject(frame(MAC(1), MAC(3)));
    expect(links.map((l) => l.sent.length)).to.deep.equal([0, 0, 1]);
    setTime(1000);
    clear();
    links[0].inject(frame(MAC(1), MAC(3)));
    expect(links.map((l) => l.sent.length)).to.deep.equal([0, 1, 1]);
    expect(sw.counters.expired).to.equal(1);
    // MAC(1) was refreshed at t=1000; it expires at 2000.
    expect(sw.expire(1999)).to.equal(0);
    expect(sw.expire(2000)).to.equal(1);
    expect(sw.macCount).to.equal(0);
  });

  it("keeps the table bounded, evicting the entry learned first", () => {
    const { sw, links, ports } = setup(2, { maxMacs: 4 });
    for (let i = 1; i <= 10; i++) links[i % 2].inject(frame(MAC(i), MAC_BROADCAST));
    expect(sw.macCount).to.equal(4);
    expect(sw.counters.evictions).to.equal(6);
    expect(sw.lookup(MAC(6))).to.equal(undefined);
    expect(sw.lookup(MAC(10))).to.equal(ports[0]);
  });

  it("stays within the bound and never throws for any sequence of frames and times", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            port: fc.nat(2),
            src: fc.nat(40),
            dst: fc.oneof(fc.nat(40), fc.constant(-1)),
            dt: fc.nat(500),
            len: fc.oneof(fc.constant(60), fc.nat(20)),
          }),
          { maxLength: 200 },
        ),
        (steps) => {
          let t = 0;
          const sw = new EthernetSwitch({ maxMacs: 8, agingMs: 1000, now: () => t });
          const links = [0, 1, 2].map((i) => new HandLink(`l${i}`));
          links.forEach((l) => sw.addPort(l));
          for (const s of steps) {
            t += s.dt;
            const f = frame(MAC(s.src), s.dst < 0 ? MAC_BROADCAST : MAC(s.dst)).subarray(0, s.len);
            const before = links.map((l) => l.sent.length);
            links[s.port].inject(f);
            // Never back out of the ingress port.
            expect(links[s.port].sent.length).to.equal(before[s.port]);
            expect(sw.macCount).to.be.at.most(8);
          }
        },
      ),
    );
  });

  it("forgets a port that closes, and the MACs behind it", () => {
    const { sw, links, ports, clear } = setup(3);
    links[1].inject(frame(MAC(2), MAC_BROADCAST));
    links[1].close();
    expect(sw.ports).to.not.include(ports[1]);
    expect(sw.lookup(MAC(2))).to.equal(undefined);
    clear();
    links[0].inject(frame(MAC(1), MAC_BROADCAST));
    expect(links.map((l) => l.sent.length)).to.deep.equal([0, 0, 1]);
    expect(ports[1].counters.txDrops).to.equal(0);
  });

  it("a port whose channel refuses frames does not affect delivery to the others", () => {
    const { links, ports, clear } = setup(3);
    links[1].inject(frame(MAC(2), MAC_BROADCAST));
    links[2].inject(frame(MAC(3), MAC_BROADCAST));
    clear();
    links[1].refuse = true;
    for (let i = 0; i < 100; i++) {
      links[0].inject(frame(MAC(1), MAC_BROADCAST, i));
      links[0].inject(frame(MAC(1), MAC(2), i));
      links[0].inject(frame(MAC(1), MAC(3), i));
    }
    expect(links[2].sent.length).to.equal(200);
    expect(links[2].sent[199][20]).to.equal(99);
    expect(links[1].sent.length).to.equal(0);
    expect(ports[1].counters.txDrops).to.equal(200);
    expect(ports[1].counters.txFrames).to.equal(1); // link 2's broadcast, before the queue filled
    expect(ports[2].counters.txDrops).to.equal(0);
    expect(ports[2].counters.txFrames).to.equal(201); // plus link 1's broadcast
  });

  it("pins static MACs: never aged, not moved by a spoofed source", () => {
    let t = 0;
    const sw = new EthernetSwitch({ now: () => t, agingMs: 10 });
    const a = new HandLink("gw");
    const b = new HandLink("guest");
    const pa = sw.addPort(a, { staticMacs: [MAC(100)] });
    sw.addPort(b);
    t = 1_000_000;
    expect(sw.lookup(MAC(100))).to.equal(pa);
    b.inject(frame(MAC(100), MAC_BROADCAST));
    expect(sw.lookup(MAC(100))).to.equal(pa);
    expect(a.sent.length).to.equal(0);
    expect(sw.counters.dropped("spoofed-source")).to.equal(1);
    b.inject(frame(MAC(1), MAC(100)));
    expect(a.sent.length).to.equal(1);
  });

  it("lets ports leave while a frame is being flooded", () => {
    const { links, clear } = setup(3);
    // Closing link 2 from inside link 1's send must not skip or break the flood.
    const orig = links[1].send.bind(links[1]);
    links[1].send = (f: Uint8Array) => {
      links[2].close();
      return orig(f);
    };
    clear();
    links[0].inject(frame(MAC(1), MAC_BROADCAST));
    expect(links[1].sent.length).to.equal(1);
  });
});
