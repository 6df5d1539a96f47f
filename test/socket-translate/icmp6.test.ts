/**
 * ICMPv6 echo translation (RFC 4443 §4.1, §4.2) without privileges: a stand-in addon decides
 * which ICMPv6 sockets the "kernel" allows, a stand-in datagram wrapper plays the host's ping
 * sockets, and raw mode gets echo replies written into its read ring by hand. The stack runs on
 * a recording channel and a manual clock; nothing sleeps.
 */
import { expect } from "chai";
import { constants } from "node:os";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { Icmp6Translator } from "../../src/socket-translate/icmp6-translator.js";
import type { IcmpTranslateOptions } from "../../src/socket-translate/icmp-translator.js";
import { emitIcmpv6, icmpv6Len, parseIcmpv6, type Icmpv6Repr } from "../../src/ipv6/icmpv6.js";
import { NextHeader } from "../../src/ipv6/ipv6.js";
import { ipv6Bytes, ipv6Equal, parseIpv6Address, type Ipv6Addr } from "../../src/ipv6/addr.js";
import { isWireError } from "../../src/common/wire-error.js";
import { GUEST_MAC, RecordingChannel } from "../support/stack.js";
import { frame, sent6 } from "../support/frames6.js";
import { FakeAddon, FakeSocket, ManualTimers, fakeWrapper } from "../support/icmp-fakes.js";

const { EACCES, EPERM } = constants.errno;
const GUEST6 = parseIpv6Address("fd73:6b69:6666::3")!;
const GW6 = parseIpv6Address("fd73:6b69:6666::1")!;
const ALIAS6 = parseIpv6Address("fd73:6b69:6666::2")!;
const MAPPED6 = parseIpv6Address("::ffff:10.0.0.1")!;
const FAR6 = parseIpv6Address("2001:db8::5")!;
const DATA = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

function setup(configure: (a: FakeAddon) => void = () => {}, opts: IcmpTranslateOptions & { hostLoopback?: boolean } = {}) {
  const timers = new ManualTimers();
  const stack = new NetworkStack({ now: timers.now });
  const ch = new RecordingChannel();
  const port: Port = stack.attach(ch);
  ch.sent.length = 0;
  const addon = new FakeAddon();
  configure(addon);
  const sockets: FakeSocket[] = [];
  const wrapDgram = fakeWrapper(sockets);
  const policy = new AddressPolicy({ hostAliasIp: stack.config.hostAliasIp, hostLoopback: opts.hostLoopback });
  const tr = new Icmp6Translator(stack, policy, { addon, wrapDgram, timers, ...opts });
  return { stack, ch, port, addon, sockets, timers, tr };
}

function echo(kind: "echo-request" | "echo-reply", id: number, seq: number, src: Ipv6Addr, dst: Ipv6Addr): Uint8Array {
  const r: Icmpv6Repr = { kind, id, seq, data: DATA };
  const b = new Uint8Array(icmpv6Len(r));
  emitIcmpv6(r, b, 0, src, dst);
  return b;
}

function ping(dst: Ipv6Addr, id = 0x4242, seq = 1): Uint8Array {
  return frame(GUEST6, dst, NextHeader.ICMPv6, echo("echo-request", id, seq, GUEST6, dst));
}

/** The ICMPv6 messages the stack sent to the guest, parsed (checksums verified). */
function toGuest(ch: RecordingChannel) {
  return sent6(ch)
    .filter((s) => s.nextHeader === NextHeader.ICMPv6 && s.l4[0] !== 134 /* router advertisement */)
    .map((s) => {
      const m = parseIcmpv6(s.l4, s.src, s.dst);
      if (isWireError(m)) throw new Error(`bad ICMPv6 to the guest: ${m.reason}`);
      expect(s.dstMac).to.equal(GUEST_MAC);
      expect(ipv6Equal(s.dst, GUEST6)).to.equal(true);
      return { src: s.src, m };
    });
}

describe("socket-translate/icmp6: echo to the host alias and beyond through host ICMPv6 sockets", () => {
  it("dgram mode: an echo to the host alias goes to ::1 on a ping socket; the reply returns from the alias with the guest's identifier", () => {
    const { stack, ch, port, addon, sockets, tr } = setup();
    expect(tr.mode).to.equal("dgram");
    stack.receive(port, ping(ALIAS6, 0x4242, 7));
    expect(sockets).to.have.length(1);
    expect(addon.opened.filter((o) => o.ipv6 && !o.raw)).to.have.length(2); // the probe, then the flow's
    const sent = sockets[0].sent[0];
    expect(sent.address).to.equal("::1");
    expect([...sent.msg.subarray(0, 2)]).to.deep.equal([128, 0]);
    expect([...sent.msg.subarray(8)]).to.deep.equal([...DATA]);
    // The kernel answers on the socket with its own identifier.
    sockets[0].receive(echo("echo-reply", 0x9999, 7, ALIAS6, GUEST6), "::1");
    const [r] = toGuest(ch);
    expect(ipv6Equal(r.src, ALIAS6)).to.equal(true);
    expect(r.m).to.deep.include({ kind: "echo-reply", id: 0x4242, seq: 7 });
    expect([...(r.m as { data: Uint8Array }).data]).to.deep.equal([...DATA]);
    expect(tr.counters.snapshot()).to.include({ flowsOpened: 1, requestsForwarded: 1, repliesReturned: 1 });
    tr.closeAll();
    expect(sockets[0].closed).to.equal(true);
  });

  it("raw mode: requests go out under skiff's identifier to the destination; a reply with it goes back from that address", () => {
    const { stack, ch, port, addon, tr } = setup((a) => {
      a.dgram6 = -EACCES;
      a.raw6 = 0;
    });
    expect(tr.mode).to.equal("raw");
    expect(tr.reason).to.match(/EACCES/);
    stack.receive(port, ping(FAR6, 0x0101, 3));
    expect(addon.sent6).to.have.length(1);
    const out = addon.sent6[0];
    expect([...out.addr]).to.deep.equal([...ipv6Bytes(FAR6)]);
    const ourId = (out.bytes[4] << 8) | out.bytes[5];
    expect(tr.list()[0]).to.include({ id: 0x0101, hostId: ourId });
    // A reply to another identifier (another process's ping) is ignored; ours goes back.
    addon.deliver(echo("echo-reply", (ourId + 1) & 0xffff, 3, FAR6, GW6), echo("echo-reply", ourId, 3, FAR6, GW6));
    const got = toGuest(ch);
    expect(got).to.have.length(1);
    expect(ipv6Equal(got[0].src, FAR6)).to.equal(true);
    expect(got[0].m).to.deep.include({ kind: "echo-reply", id: 0x0101, seq: 3 });
    expect(tr.counters.snapshot()).to.include({ ignored: 1, repliesReturned: 1 });
    tr.closeAll();
    expect(addon.closed).to.include(addon.opened.find((o) => o.raw && o.ipv6)!.fd);
  });

  it("refuses IPv4-mapped addresses and the alias with host loopback off: administratively prohibited (RFC 4443 §3.1 code 1), nothing sent", () => {
    for (const [dst, loopback] of [[MAPPED6, true], [ALIAS6, false]] as const) {
      const { stack, ch, port, sockets, tr } = setup(() => {}, { hostLoopback: loopback });
      stack.receive(port, ping(dst));
      expect(sockets).to.have.length(0);
      const [r] = toGuest(ch);
      expect(r.m).to.deep.include({ kind: "dest-unreachable", code: 1 });
      expect(tr.counters.dropped("denied")).to.equal(1);
      tr.closeAll();
    }
  });

  it("disabled (no ICMPv6 socket allowed): the gateway answers for the alias; other addresses are prohibited at once", () => {
    const { stack, ch, port, tr } = setup((a) => {
      a.dgram6 = -EACCES;
      a.raw6 = -EPERM;
    });
    expect(tr.mode).to.equal("disabled");
    stack.receive(port, ping(ALIAS6, 5, 1));
    stack.receive(port, ping(FAR6, 5, 2));
    const [a, b] = toGuest(ch);
    expect(ipv6Equal(a.src, ALIAS6)).to.equal(true);
    expect(a.m).to.deep.include({ kind: "echo-reply", id: 5, seq: 1 });
    expect(b.m).to.deep.include({ kind: "dest-unreachable", code: 1 });
    tr.closeAll();
  });

  it("an idle flow is closed after idleMs and its socket with it; echo to the gateway itself never reaches the translator", () => {
    const { stack, ch, port, sockets, timers, tr } = setup(() => {}, { idleMs: 1000 });
    stack.receive(port, ping(GW6));
    expect(sockets).to.have.length(0);
    expect(toGuest(ch)[0].m).to.deep.include({ kind: "echo-reply" });
    stack.receive(port, ping(ALIAS6));
    expect(tr.size).to.equal(1);
    timers.advance(1001);
    expect(tr.size).to.equal(0);
    expect(sockets[0].closed).to.equal(true);
    expect(tr.counters.snapshot()).to.include({ flowsExpired: 1 });
    tr.closeAll();
  });
});
