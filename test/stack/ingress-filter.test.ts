/**
 * The switch's ingress filter, `NetworkStack.mayForward` (source validation between guests,
 * src/stack/guests.ts): review attacks that wrap a spoofed ARP or IPv4 packet in VLAN tags.
 * Linux treats a frame whose 802.1Q/802.1ad tags all carry VLAN 0 (priority tags) as untagged
 * (net/core/dev.c), so such a frame poisons a neighbour's ARP cache like a bare one.
 */
import { expect } from "chai";
import { NetworkStack } from "../../src/stack/stack.js";
import { Guest, type SourceBindings } from "../../src/stack/guests.js";
import { EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp } from "../../src/ethernet/arp.js";
import { arpRequest, udpFrame } from "../support/frames.js";
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
