/**
 * End to end: the Linux kernel as a guest fragments what it sends, and skiff reassembles it
 * (RFC 791 §3.2). A namespace whose only interface is a TAP device served by skiff's stack
 * (test/support/guest.ts).
 *
 * What works, found by trying (Linux 6.x):
 *  - The guest interface has MTU 1500, so `ping -s 4000` leaves the kernel as 3 fragments
 *    (1480 + 1480 + 1048 bytes of data).
 *  - skiff's side (stack and TAP channel) has MTU 9000, so the reply, one unfragmented
 *    4028-byte packet (a 4042-byte frame), fits skiff's MTU.
 *  - The kernel accepts that oversized frame: a write to a TAP device is not checked against
 *    the interface MTU, and IPv4 receive does not check the MTU either, so ping reports the
 *    replies (this is what the first test asserts).
 *  - With a request too big for skiff's own MTU (guest MTU 9000, `ping -s 12000`, fragmented
 *    at 9000), the datagram is reassembled and the 12028-byte reply goes back in fragments of
 *    at most skiff's MTU (src/stack/fragment-tx.ts), which the guest's kernel reassembles.
 */
import { expect } from "chai";
import { requireNetns } from "../support/netns.js";
import { startGuest, type Guest } from "../support/guest.js";
import type { NetworkStack } from "../../src/stack/stack.js";

const SKIFF_MTU = 9000;

describe("e2e: the kernel's fragments are reassembled by skiff", function () {
  this.timeout(30_000);
  requireNetns(["/dev/net/tun"]);

  let guest: Guest;
  let stack: NetworkStack;

  before(async () => {
    // Stack, TAP channel and guest interface all at 9000 (test/support/guest.ts), then the
    // guest's link MTU lowered to 1500: the kernel fragments anything larger it sends.
    guest = await startGuest("skiff-e2e-frag", { mtu: SKIFF_MTU });
    stack = guest.stack;
    const r = await guest.ns.exec(["ip", "link", "set", "sk0", "mtu", "1500"]);
    expect(r.code, r.stderr).to.equal(0);
  });

  after(async () => {
    await guest?.close();
  });

  function state(): string {
    return JSON.stringify({ fragments: stack.fragments.counters, stack: stack.counters.snapshot(), tap: guest.tap.stats });
  }

  it("ping -s 4000 (each request sent as 3 fragments) gets 2 whole 4008-byte replies", async () => {
    const before = stack.fragments.counters.reassembled;
    const r = await guest.ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "192.168.65.1"]);
    expect(r.code, r.stdout + r.stderr + state()).to.equal(0);
    expect(r.stdout).to.match(/2 packets transmitted, 2 received, 0% packet loss/);
    expect(r.stdout).to.match(/4008 bytes from 192\.168\.65\.1/);
    expect(stack.fragments.counters.reassembled - before).to.equal(2);
    expect(stack.fragments.counters).to.deep.include({ datagrams: 0, bytes: 0, overlaps: 0, invalid: 0 });
  });

  it("a request over skiff's MTU is reassembled, and its reply goes back in fragments the kernel reassembles", async () => {
    const set = await guest.ns.exec(["ip", "link", "set", "sk0", "mtu", String(SKIFF_MTU)]);
    expect(set.code, set.stderr).to.equal(0);
    const before = stack.fragments.counters.reassembled;
    const fragmented = stack.counters.txFragmented;
    const r = await guest.ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "12000", "192.168.65.1"]);
    expect(r.stdout, r.stderr + state()).to.match(/2 packets transmitted, 2 received/);
    expect(r.stdout).to.match(/12008 bytes from 192\.168\.65\.1/);
    expect(stack.fragments.counters.reassembled - before, state()).to.equal(2);
    expect(stack.counters.txFragmented - fragmented).to.equal(2);
    expect(stack.counters.dropped("tx-too-big")).to.equal(0);
  });
});
