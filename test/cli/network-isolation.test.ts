/**
 * Issue 19, "addresses and isolation", on the assembled network (`Network`) with guests behind
 * the switch as `skiff serve` attaches them, and on a direct port as `skiff run` does: source
 * validation (a guest sends only from its leased or static address; the gateway's and the
 * alias's never; 0.0.0.0 only for DHCP; ARP with a spoofed sender is neither learned nor
 * answered) and each guest's share of the shared tables (host dials, DHCP leases).
 * Destinations are the host alias (the host's 127.0.0.1), so any dial stays on loopback.
 */
import { expect } from "chai";
import { pino } from "pino";
import { NetworkServices as Network } from "../../src/network/services.js";
import type { NetworkOptions } from "../../src/network/options.js";
import { attachSwitchDetailed, internalLink } from "../../src/stack/switched.js";
import { parseIpv4Address } from "../../src/common/addr.js";
import { TcpFlag } from "../../src/tcp/wire.js";
import { DhcpMessageType } from "../../src/dhcp/wire.js";
import { ArpOp } from "../../src/ethernet/arp.js";
import { RecordingChannel, GUEST_MAC, GUEST_IP, GW_IP, HOST_IP } from "../support/stack.js";
import { arpRequest, dhcpFrame, tcpSyn, udpFrame, describe as seen, type Seen } from "../support/frames.js";

const log = pino({ level: "silent" });
const ip = (s: string) => parseIpv4Address(s)!;
const A_MAC = 0x5254_0000_0a01;
const B_MAC = 0x5254_0000_0b01;
/** A closed port on the host's loopback (dials there are refused at once, or pending: both fine). */
const PORT = 9;

interface TestGuest {
  mac: number;
  ip: number;
  send(f: Uint8Array): void;
  got: Seen[];
}

function switched(opts: Partial<NetworkOptions> = {}) {
  const net = new Network({ mtu: 1500, log, ...opts });
  const { sw } = attachSwitchDetailed(net.stack);
  const guest = (mac: number): TestGuest => {
    // A synchronous link: a frame sent is switched, served and answered before `send` returns.
    const [g, s] = internalLink(`guest-${mac.toString(16)}`, 1500);
    sw.addPort(s);
    const got: Seen[] = [];
    g.setReceiver((f) => got.push(seen(f)));
    return { mac, ip: 0, send: (f) => g.send(f), got };
  };
  return { net, sw, guest };
}

/** DISCOVER then REQUEST: the guest's lease (its address set on the guest). */
function lease(g: TestGuest): number {
  g.got.length = 0;
  g.send(dhcpFrame(g.mac, "discover"));
  const offer = g.got.find((x) => x.kind === "dhcp" && x.type === DhcpMessageType.Offer);
  if (offer === undefined || offer.kind !== "dhcp") throw new Error("no OFFER");
  g.send(dhcpFrame(g.mac, "request", offer.yiaddr, GW_IP));
  const ack = g.got.find((x) => x.kind === "dhcp" && x.type === DhcpMessageType.Ack);
  if (ack === undefined) throw new Error("no ACK");
  g.ip = offer.yiaddr;
  return offer.yiaddr;
}

/** The serve topology with guests A and B, each with a DHCP lease. */
function twoLeased() {
  const s = switched();
  const a = s.guest(A_MAC);
  const b = s.guest(B_MAC);
  lease(a);
  lease(b);
  return { s, a, b };
}

const rsts = (g: TestGuest) => g.got.filter((x) => x.kind === "tcp" && (x.flags & TcpFlag.RST) !== 0).length;

describe("network: isolation between guests (issue 19)", () => {
  let net: Network | undefined;
  afterEach(() => net?.close());

describe("source validation (anti-spoofing)", () => {
  it("drops and counts SYNs from 10.9.9.9, the gateway, the alias, 0.0.0.0 and unleased addresses; the lease works", () => {
    const s = switched();
    net = s.net;
    const a = s.guest(A_MAC);
    const mine = lease(a);
    const dials = () => s.net.tcpTranslator.counters.dials;
    const spoofs: Array<[string, number]> = [["10.9.9.9", ip("10.9.9.9")], ["gateway", GW_IP], ["alias", HOST_IP], ["0.0.0.0", 0], ["unleased", ip("192.168.65.200")]];
    for (const [i, [what, src]] of spoofs.entries()) {
      a.send(tcpSyn(A_MAC, src, 30000 + i, HOST_IP, PORT));
      expect(dials(), `SYN from ${what} dialled`).to.equal(0);
    }
    const drops = s.net.stack.counters.drops;
    expect(drops["src-not-bound"]).to.equal(2);
    expect(drops["src-gateway"]).to.equal(2);
    expect(drops["src-unspecified"]).to.equal(1);
    a.send(tcpSyn(A_MAC, mine, 31000, HOST_IP, PORT));
    expect(dials(), "SYN from the leased address").to.equal(1);
  });

  it("a guest cannot use another guest's address, with its own MAC or with the other's MAC", () => {
    const { s, a, b } = twoLeased();
    net = s.net;
    b.send(tcpSyn(B_MAC, a.ip, 32000, HOST_IP, PORT));
    b.send(udpFrame(B_MAC, a.ip, 32001, HOST_IP, PORT, Uint8Array.of(1)));
    // B forging A's MAC too: the lease was made through A's port, which is still attached.
    b.send(tcpSyn(A_MAC, a.ip, 32002, HOST_IP, PORT));
    expect(s.net.tcpTranslator.counters.dials).to.equal(0);
    expect(s.net.udp.counters.flowsOpened).to.equal(0);
    // The forged-MAC SYN is stopped by the switch already (A's MAC stays behind A's port).
    expect(s.net.stack.counters.drops["src-not-bound"]).to.equal(2);
    expect(s.sw.counters.dropped("held-source")).to.equal(1);
    b.send(tcpSyn(B_MAC, b.ip, 32003, HOST_IP, PORT));
    expect(s.net.tcpTranslator.counters.dials).to.equal(1);
  });

  it("ARP with a spoofed sender address is not learned (answered: it only tells the gateway's MAC); the gateway's address as sender is dropped", () => {
    const { s, a, b } = twoLeased();
    net = s.net;
    a.send(arpRequest(A_MAC, a.ip, GW_IP));
    expect(s.net.stack.neighbors.lookup(a.ip)?.mac).to.equal(A_MAC);
    b.send(arpRequest(B_MAC, a.ip, GW_IP));
    expect(s.net.stack.neighbors.lookup(a.ip)?.mac, "A's entry after B's spoof").to.equal(A_MAC);
    expect(s.net.stack.counters.arpSendersNotLearned).to.equal(1);
    b.got.length = 0;
    b.send(arpRequest(B_MAC, GW_IP, HOST_IP));
    expect(b.got.filter((x) => x.kind === "arp"), "reply to a sender claiming the gateway").to.have.length(0);
    expect(s.net.stack.counters.drops["arp-spoofed-sender"]).to.equal(1);
    b.send(arpRequest(B_MAC, b.ip, GW_IP));
    expect(b.got.filter((x) => x.kind === "arp")).to.have.length(1);
    expect(s.net.stack.neighbors.lookup(b.ip)?.mac).to.equal(B_MAC);
  });

  it("a guest's ARP claiming the gateway's (or another guest's) address never reaches the other guests; its own does (found by the soak)", () => {
    const { s, a, b } = twoLeased();
    net = s.net;
    const arpsTo = (g: TestGuest) => g.got.filter((x) => x.kind === "arp").length;
    a.got.length = 0;
    // B poisons A's cache: "the gateway is at B's MAC", a request and a gratuitous reply.
    b.send(arpRequest(B_MAC, GW_IP, a.ip));
    b.send(arpRequest(B_MAC, GW_IP, GW_IP, ArpOp.Reply));
    b.send(arpRequest(B_MAC, a.ip, GW_IP));
    expect(arpsTo(a), "spoofed ARP flooded to A").to.equal(0);
    expect(s.sw.counters.dropped("filtered")).to.equal(3);
    // An IPv4 packet from B with the gateway's address as source does not reach A either.
    b.send(udpFrame(B_MAC, GW_IP, 53, a.ip, 5000, Uint8Array.of(1), A_MAC));
    expect(a.got.filter((x) => x.kind === "udp"), "spoofed UDP to A").to.have.length(0);
    b.send(arpRequest(B_MAC, b.ip, a.ip));
    expect(arpsTo(a), "B's own ARP request for A").to.equal(1);
  });

  it("a guest sending from ever new MACs learns at most maxMacsPerPort of them; the other guests stay in the table", () => {
    const s = switched();
    net = s.net;
    const a = s.guest(A_MAC);
    lease(a);
    const b = s.guest(B_MAC);
    for (let i = 0; i < 2000; i++) b.send(dhcpFrame(0x0200_0000_0000 + i, "discover"));
    expect(s.sw.counters.dropped("port-mac-limit")).to.be.greaterThan(1000);
    expect(s.sw.lookup(A_MAC), "A's entry").to.not.equal(undefined);
    expect(s.sw.macCount).to.be.at.most(s.sw.maxMacsPerPort + 3);
  });

  it("skiff run's shape: a direct port with a static lease may send from that address only", () => {
    net = new Network({ mtu: 1500, log, staticLeases: [{ mac: GUEST_MAC, ip: GUEST_IP }] });
    const port = net.stack.attach(new RecordingChannel());
    net.stack.receive(port, tcpSyn(GUEST_MAC, ip("192.168.65.4"), 33000, HOST_IP, PORT));
    expect(net.tcpTranslator.counters.dials).to.equal(0);
    net.stack.receive(port, tcpSyn(GUEST_MAC, GUEST_IP, 33001, HOST_IP, PORT));
    expect(net.tcpTranslator.counters.dials).to.equal(1);
  });

  it("validateSources: false accepts any source (guests configured by hand)", () => {
    net = new Network({ mtu: 1500, log, validateSources: false });
    const port = net.stack.attach(new RecordingChannel());
    net.stack.receive(port, tcpSyn(GUEST_MAC, ip("192.168.65.77"), 34000, HOST_IP, PORT));
    expect(net.tcpTranslator.counters.dials).to.equal(1);
  });
});

describe("each guest's share of the shared tables", () => {
  it("a guest flooding SYNs takes at most its share of host dials; another guest still connects", () => {
    const { s, a, b } = twoLeased();
    net = s.net;
    for (let i = 0; i < 1100; i++) a.send(tcpSyn(A_MAC, a.ip, 10000 + i, HOST_IP, PORT));
    const c = s.net.tcpTranslator.counters;
    expect(c.dialsInFlight).to.be.at.most(64);
    b.got.length = 0;
    const before = c.dials;
    b.send(tcpSyn(B_MAC, b.ip, 40000, HOST_IP, PORT));
    expect(c.dials - before, "B's SYN dialled").to.equal(1);
    expect(rsts(b)).to.equal(0);
  });

  it("300 DHCP client MACs from one guest take 4 leases; another guest still gets one", () => {
    const s = switched();
    net = s.net;
    const a = s.guest(A_MAC);
    const b = s.guest(B_MAC);
    for (let i = 0; i < 300; i++) {
      const mac = 0x0200_0000_0000 + i * 7919;
      a.send(dhcpFrame(mac, "discover"));
      const offer = a.got.pop();
      if (offer?.kind === "dhcp" && offer.type === DhcpMessageType.Offer) a.send(dhcpFrame(mac, "request", offer.yiaddr, GW_IP));
    }
    expect(s.net.dhcp.leases().length).to.equal(4);
    expect(s.net.dhcp.counters.dropped("guest-lease-cap")).to.be.greaterThan(0);
    expect(() => lease(b)).to.not.throw();
    expect(b.ip).to.not.equal(0);
  });
});
});
