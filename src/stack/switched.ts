/**
 * Many guests on one network: the stack behind a learning Ethernet switch.
 *
 * Design: the stack is just one more port of the switch. `attachSwitch` creates an
 * `EthernetSwitch` and joins it to the stack through an *internal link*, a pair of
 * FrameChannels that hand each frame to the other end synchronously, as the same borrowed
 * bytes (zero copy both ways). A guest's frame is therefore never copied on its way through the
 * switch into the stack, and the stack's reply goes from its transmit buffer straight to the
 * guest channel's `send` (which copies what it queues, as every channel does). The gateway's
 * MAC is a static entry on the stack's port, so guests cannot take it over and unicast to the
 * gateway is never flooded.
 *
 * Guests attach to the switch (`sw.addPort(channel)`), not to the stack. Guests reach each
 * other directly (unicast by learned MAC; broadcast and ARP flooded), frames for another
 * guest's MAC never reach the stack, and every guest shares the gateway's services (ARP, DHCP
 * — leases are per MAC — DNS, ICMP, socket translation). The stack keeps a single Port for
 * the whole switch; its neighbour table maps each guest IP to that guest's MAC, and the switch
 * picks the guest's port from the MAC.
 *
 * Each switch port is a guest of its own (guests.ts: shares of the stack's tables, source
 * validation): the stack's port resolves a frame's guest from its source MAC, which the switch
 * has just learned on the ingress port before handing the frame over. A guest's state goes
 * when its switch port's link closes. Frames between guests pass the same source validation
 * (the switch's ingress filter, `NetworkStack.mayForward`), so a guest cannot answer ARP for
 * the gateway to its neighbours; and a port learns at most `maxMacsPerPort` MACs.
 *
 * Synchronous hand-off means re-entrancy: a guest frame can make the stack transmit while the
 * switch is still inside `input`. The switch is written for that (no per-frame state held
 * across `send`, port list copied on write); never connect two internal links in a loop.
 */

import { BaseFrameChannel } from "../common/frame-channel.js";
import { EthernetSwitch, type SwitchOptions, type SwitchPort } from "../ethernet/switch.js";
import type { NetworkStack, Port } from "./stack.js";
import type { Guest } from "./guests.js";

/** One end of an internal link: `send` delivers the same bytes to the other end, now. */
class InternalEnd extends BaseFrameChannel {
  peer!: InternalEnd;

  protected transmit(frame: Uint8Array): boolean {
    const p = this.peer;
    if (p.closed) {
      this.stats.txDrops++;
      return false;
    }
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    p.deliver(frame);
    return true;
  }

  protected shutdown(): void {
    // Closing one end closes the link; the other end reports `closed` too.
    queueMicrotask(() => this.peer.close());
  }
}

/**
 * Two FrameChannels back to back with synchronous, zero-copy delivery: a frame sent on one
 * end is delivered (borrowed, as the same bytes) to the other end's receiver before `send`
 * returns. Never backpressured; frames sent while the other end is closed are counted drops.
 */
export function internalLink(name: string, mtu: number): [BaseFrameChannel, BaseFrameChannel] {
  const a = new InternalEnd(`${name}:a`, mtu);
  const b = new InternalEnd(`${name}:b`, mtu);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export interface SwitchedStack {
  /** The switch: attach guests with `sw.addPort(channel)`. */
  readonly sw: EthernetSwitch;
  /** The switch's port that leads to the stack. */
  readonly stackSwitchPort: SwitchPort;
  /** The stack's port for the switch (all guests behind it). */
  readonly stackPort: Port;
}

export type AttachSwitchOptions = SwitchOptions;

/**
 * Put `stack` behind a new switch as one of its ports. The switch uses the stack's clock unless
 * `opts.now` is given. Returns the switch.
 */
export function attachSwitch(stack: NetworkStack, opts: AttachSwitchOptions = {}): EthernetSwitch {
  return attachSwitchDetailed(stack, opts).sw;
}

/** `attachSwitch`, also returning the ports that join the stack and the switch. */
export function attachSwitchDetailed(stack: NetworkStack, opts: AttachSwitchOptions = {}): SwitchedStack {
  const sw = new EthernetSwitch({ now: stack.now, ...opts });
  const [stackSide, switchSide] = internalLink("switch-stack", stack.config.mtu);
  const stackPort = stack.attach(stackSide);
  const stackSwitchPort = sw.addPort(switchSide, { staticMacs: [stack.config.gatewayMac], trusted: true });
  const guests = new Map<SwitchPort, Guest>();
  const guestOf = (p: SwitchPort): Guest => {
    let g = guests.get(p);
    if (g === undefined) {
      const guest = stack.newGuest(p.name);
      g = guest;
      guests.set(p, guest);
      p.link.once("closed", () => {
        guest.detached = true;
        guests.delete(p);
      });
    }
    return g;
  };
  stackPort.guestResolver = (srcMac) => {
    const p = sw.lookup(srcMac);
    return p === undefined || p === stackSwitchPort ? undefined : guestOf(p);
  };
  // Guests' spoofed IPv4 and ARP senders are refused before they reach other guests too.
  sw.ingressFilter = (p, frame) => stack.mayForward(guestOf(p), frame);
  // A MAC behind another attached port moves only with a frame from a source bound to it there.
  sw.sourceClaim = (p, frame) => stack.claimsSource(guestOf(p), frame);
  return { sw, stackSwitchPort, stackPort };
}
