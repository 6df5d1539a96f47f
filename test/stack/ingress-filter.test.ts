/**
 * The switch's ingress filter, `NetworkStack.mayForward` (source validation between guests,
 * src/stack/guests.ts): review attacks that wrap a spoofed ARP or IPv4 packet in VLAN tags.
 * Linux treats a frame whose 802.1Q/802.1ad tags all carry VLAN 0 (priority tags) as untagged
 * (net/core/dev.c), so such a frame poisons a neighbour's ARP cache like a bare one. And IPv6,
 * which has no bindings: a guest must not act as the other guests' router (rogue Router
 * Advertisements, Redirects, DHCPv6 server replies; RFC 6105, RFC 7113), nor send from an address
 * outside link-local and the guest prefix, or from the gateway's. And a guest must not
 * take another's MAC address in the switch (its frames from the gateway would go to the thief).
 */
import { expect } from "chai";
import { NetworkStack } from "../../src/stack/stack.js";
import { Guest, type SourceBindings } from "../../src/stack/guests.js";
import { EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp } from "../../src/ethernet/arp.js";
import { arpRequest, udpFrame } from "../support/frames.js";
import { attachSwitchDetailed, internalLink } from "../../src/stack/switched.js";
import { GUEST_IP, GUEST_MAC, GW_IP } from "../support/stack.js";

const OTHER_IP = GUEST_IP + 1;

/** Insert `tags` (EtherType, TCI) after the MAC addresses of `frame`. */
function tagged(frame: Uint8Array, ...tags: [number, number][]): Uint8Array {
  const out = new Uint8Array(frame.length + 4 * tags.length);
  out.set(frame.subarray(0, 12));
  tags.forEach(([type, tci], i) => {
    const o = 12 + 4 * i;
    out[o] = type >> 8, out[o + 1] = type & 0xff, out[o + 2] = tci >> 8, out[o + 3] = tci & 0xff;
  });
  out.set(frame.subarray(12), 12 + 4 * tags.length);
  return out;
}

describe("stack/ingress filter: spoofed frames wrapped in VLAN tags", () => {
  const stack = new NetworkStack({ now: () => 0 });
  const bindings: SourceBindings = { generation: 1, allows: (_g, mac, ip) => mac === GUEST_MAC && ip === GUEST_IP };
  stack.sourceBindings = bindings;
  const guest = new Guest(1, "b");
  const poison = arpRequest(GUEST_MAC, GW_IP, GW_IP, ArpOp.Reply); // "the gateway is at my MAC"
  const spoofedUdp = udpFrame(GUEST_MAC, OTHER_IP, 53, GUEST_IP, 5000, Uint8Array.of(1));

  it("untagged: the guest's own ARP passes, a spoofed one does not (the baseline)", () => {
    expect(stack.mayForward(guest, arpRequest(GUEST_MAC, GUEST_IP, GW_IP))).to.equal(true);
    expect(stack.mayForward(guest, poison)).to.equal(false);
    expect(stack.mayForward(guest, spoofedUdp)).to.equal(false);
  });

  it("one 802.1Q priority tag (VLAN 0) does not hide a spoofed ARP or IPv4 source", () => {
    expect(stack.mayForward(guest, tagged(poison, [EtherType.VLAN, 0]))).to.equal(false);
    expect(stack.mayForward(guest, tagged(spoofedUdp, [EtherType.VLAN, 0]))).to.equal(false);
  });

  it("an 802.1ad (0x88a8) or doubled priority tag does not hide them either", () => {
    expect(stack.mayForward(guest, tagged(poison, [0x88a8, 0]))).to.equal(false);
    expect(stack.mayForward(guest, tagged(poison, [EtherType.VLAN, 0], [EtherType.VLAN, 0]))).to.equal(false);
    expect(stack.mayForward(guest, tagged(poison, [0x88a8, 0], [EtherType.VLAN, 0]))).to.equal(false);
    expect(stack.mayForward(guest, tagged(spoofedUdp, [0x9100, 0]))).to.equal(false);
  });
});

/** An IPv6 frame from GUEST_MAC: fe80::1 → `dst`, `upper` after optional Destination Options. */
function ipv6Frame(nextHeader: number, upper: number[], opts: { destOpts?: boolean; dst?: number[]; src?: number[] } = {}): Uint8Array {
  const ext = opts.destOpts ? [nextHeader, 0, 1, 4, 0, 0, 0, 0] : [];
  const payload = [...ext, ...upper];
  const src = opts.src ?? [0xfe, 0x80, ...new Array(13).fill(0), 1];
  const dst = opts.dst ?? [0xff, 0x02, ...new Array(13).fill(0), 1];
  const ip = [0x60, 0, 0, 0, payload.length >> 8, payload.length & 0xff, opts.destOpts ? 60 : nextHeader, 255, ...src, ...dst];
  const mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
  return Uint8Array.from([0x33, 0x33, 0, 0, 0, 1, ...mac, 0x86, 0xdd, ...ip, ...payload]);
}

describe("stack/ingress filter: a guest cannot be the other guests' IPv6 router", () => {
  const stack = new NetworkStack({ now: () => 0 });
  stack.sourceBindings = { generation: 1, allows: () => true };
  const guest = new Guest(1, "b");
  const ICMPV6 = 58;
  const UDP = 17;
  const ra = [134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
  const redirect = [137, 0, 0, 0, 0, 0, 0, 0, ...new Array(32).fill(0)];
  const ns = [135, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80, ...new Array(13).fill(0), 2];
  const dhcpv6Advertise = [0x02, 0x23, 0x02, 0x22, 0, 12, 0, 0, 2, 0, 0, 1];

  it("Router Advertisements and Redirects are refused, also behind a Destination Options header", () => {
    expect(stack.mayForward(guest, ipv6Frame(ICMPV6, ra))).to.equal(false);
    expect(stack.mayForward(guest, ipv6Frame(ICMPV6, ra, { destOpts: true }))).to.equal(false);
    expect(stack.mayForward(guest, ipv6Frame(ICMPV6, redirect))).to.equal(false);
  });

  it("DHCPv6 server messages (UDP 547 → 546) from a guest are refused", () => {
    expect(stack.mayForward(guest, ipv6Frame(UDP, dhcpv6Advertise))).to.equal(false);
  });

  it("neighbour discovery between guests still passes", () => {
    expect(stack.mayForward(guest, ipv6Frame(ICMPV6, ns))).to.equal(true);
    expect(stack.mayForward(guest, ipv6Frame(ICMPV6, ns, { destOpts: true }))).to.equal(true);
  });

  it("IPv6 sources: link-local and the guest prefix pass; foreign, the gateway's, :: (but for ICMPv6) do not", () => {
    const v6 = (...words: number[]) => words.flatMap((w) => [w >> 8, w & 0xff]);
    const udp = [0x13, 0x88, 0x13, 0x89, 0, 8, 0, 0];
    expect(stack.mayForward(guest, ipv6Frame(UDP, udp, { src: v6(0xfd73, 0x6b69, 0x6666, 0, 0x5054, 0xff, 0xfe12, 0x3456) }))).to.equal(true);
    expect(stack.mayForward(guest, ipv6Frame(UDP, udp, { src: v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1) }))).to.equal(false);
    expect(stack.mayForward(guest, ipv6Frame(UDP, udp, { src: v6(0xfd73, 0x6b69, 0x6666, 0, 0, 0, 0, 1) }))).to.equal(false);
    expect(stack.mayForward(guest, ipv6Frame(UDP, udp, { src: v6(0xfd73, 0x6b69, 0x6666, 0, 0, 0, 0, 2) }))).to.equal(false);
    expect(stack.mayForward(guest, ipv6Frame(UDP, udp, { src: v6(0xfe80, 0, 0, 0, 0x50, 0xff, 0xfe00, 1) }))).to.equal(false);
    // Duplicate Address Detection comes from the unspecified address.
    expect(stack.mayForward(guest, ipv6Frame(ICMPV6, ns, { src: v6(0, 0, 0, 0, 0, 0, 0, 0) }))).to.equal(true);
    expect(stack.mayForward(guest, ipv6Frame(UDP, udp, { src: v6(0, 0, 0, 0, 0, 0, 0, 0) }))).to.equal(false);
  });
});

describe("switch: a guest cannot steal another attached guest's MAC address", () => {
  const A_MAC = 0x5254_0000_0a01;
  const B_MAC = 0x5254_0000_0b01;
  const A_IP = GUEST_IP;
  const B_IP = GUEST_IP + 1;

  function setup() {
    const stack = new NetworkStack({ now: () => 0 });
    const { sw } = attachSwitchDetailed(stack);
    const ports = new Map<number, ReturnType<typeof sw.addPort>>();
    // A's address belongs to A's port, B's to B's (what DHCP leases through each port give).
    stack.sourceBindings = {
      generation: 1,
      allows: (g, mac, ip) => (mac === A_MAC && ip === A_IP && g.name.startsWith("A")) || (mac === B_MAC && ip === B_IP && g.name.startsWith("B")),
    };
    const guest = (name: string, mac: number) => {
      const [g, s] = internalLink(name, 1500);
      ports.set(mac, sw.addPort(s));
      const got: Uint8Array[] = [];
      g.setReceiver((f) => got.push(Uint8Array.from(f)));
      return { send: (f: Uint8Array) => g.send(f), got };
    };
    const a = guest("A", A_MAC);
    const b = guest("B", B_MAC);
    a.send(arpRequest(A_MAC, A_IP, GW_IP));
    b.send(arpRequest(B_MAC, B_IP, GW_IP));
    return { sw, ports, a, b };
  }

  it("frames with A's MAC from B's port do not move A's entry (non-IP, spoofed IPv4, ARP)", () => {
    const { sw, ports, b } = setup();
    expect(sw.lookup(A_MAC)).to.equal(ports.get(A_MAC));
    const raw = new Uint8Array(60);
    raw.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0x0a, 0x01, 0x88, 0xb5]); // local experimental EtherType
    b.send(raw);
    b.send(udpFrame(A_MAC, A_IP, 5000, GW_IP, 9, Uint8Array.of(1)));
    b.send(arpRequest(A_MAC, A_IP, GW_IP));
    expect(sw.lookup(A_MAC), "A's frames from the gateway would go to B").to.equal(ports.get(A_MAC));
    expect(sw.counters.moves).to.equal(0);
    // Once A's port is gone, its MAC may appear elsewhere (a VM that reconnected).
    sw.removePort(ports.get(A_MAC)!);
    b.send(udpFrame(A_MAC, A_IP, 5000, GW_IP, 9, Uint8Array.of(1)));
    expect(sw.lookup(A_MAC)).to.equal(ports.get(B_MAC));
  });
});
