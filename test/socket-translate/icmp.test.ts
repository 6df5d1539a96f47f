/**
 * ICMP echo translation without privileges: a stand-in addon decides which ICMP sockets the
 * "kernel" allows, a stand-in datagram wrapper plays the host's ping sockets, and raw mode
 * gets whole IP packets written into its read ring by hand. The stack runs on a recording
 * channel and a manual clock; nothing sleeps. One suite at the end pokes the real addon.
 */
import { expect } from "chai";
import { constants } from "node:os";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { emitEthernet, parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { emitIpv4, parseIpv4, IpProtocol, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitIcmp, icmpLen, parseIcmp, IcmpPacket, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { isWireError } from "../../src/common/wire-error.js";
import { parseIpv4Address as ip4 } from "../../src/common/addr.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import {
  IcmpTranslator,
  type IcmpAddon,
  type IcmpDgramSocket,
  type IcmpTranslateOptions,
} from "../../src/socket-translate/icmp-translator.js";
import { findAddon, loadAddon } from "../../src/native/addon.js";
import { fileURLToPath } from "node:url";

import { GUEST_MAC, GW_MAC, GUEST_IP, HOST_IP, RecordingChannel } from "../support/stack.js";
import { FakeAddon, FakeSocket, ManualTimers, fakeWrapper } from "../support/icmp-fakes.js";

const { EACCES, EPERM, EAGAIN, EBADF } = constants.errno;
const GUEST2_IP = ip4("192.168.65.4")!;
const HOST_ALIAS = HOST_IP;
const FAR = ip4("10.200.0.1")!;
const FAR2 = ip4("10.200.0.2")!;

const Recorder = RecordingChannel;
type Recorder = RecordingChannel;

interface Setup {
  stack: NetworkStack;
  ch: Recorder;
  port: Port;
  addon: FakeAddon;
  sockets: FakeSocket[];
  timers: ManualTimers;
  warnings: string[];
  infos: string[];
  tr: IcmpTranslator;
}

function setup(configure: (a: FakeAddon) => void = () => {}, opts: IcmpTranslateOptions = {}): Setup {
  const timers = new ManualTimers();
  const stack = new NetworkStack({ now: timers.now });
  const ch = new Recorder();
  const port = stack.attach(ch);
  const addon = new FakeAddon();
  configure(addon);
  const sockets: FakeSocket[] = [];
  const wrapDgram = fakeWrapper(sockets);
  const warnings: string[] = [];
  const infos: string[] = [];
  const log = {
    warn: (_o: unknown, msg: string) => warnings.push(msg),
    info: (_o: unknown, msg: string) => infos.push(msg),
    debug: () => {},
  } as unknown as IcmpTranslateOptions["log"];
  const policy = new AddressPolicy({ hostAliasIp: stack.config.hostAliasIp });
  const tr = new IcmpTranslator(stack, policy, { addon, wrapDgram, timers, log, ...opts });
  return { stack, ch, port, addon, sockets, timers, warnings, infos, tr };
}

function icmpBytes(repr: IcmpRepr): Uint8Array {
  const b = new Uint8Array(icmpLen(repr));
  emitIcmp(repr, b, 0);
  return b;
}

function ipPacket(src: number, dst: number, l4: Uint8Array, protocol: number = IpProtocol.ICMP): Uint8Array {
  const repr: Ipv4Repr = {
    src, dst, protocol, ttl: 64, id: 7, tos: 0, df: false, mf: false, fragmentOffset: 0,
    payloadLength: l4.length, options: new Uint8Array(0),
  };
  const b = new Uint8Array(20 + l4.length);
  emitIpv4(repr, b, 0);
  b.set(l4, 20);
  return b;
}

function echoFrame(dst: number, id: number, seq: number, data: Uint8Array, src = GUEST_IP): Uint8Array {
  const ip = ipPacket(src, dst, icmpBytes({ kind: "echo-request", id, seq, data }));
  const f = new Uint8Array(14 + ip.length);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
  f.set(ip, o);
  return f;
}

/** Decode a frame the stack sent to the guest: IPv4 header and checked ICMP message. */
function decode(frame: Uint8Array): { ip: Ipv4Repr; icmp: IcmpRepr } {
  const eth = parseEthernet(frame);
  if (isWireError(eth)) throw new Error(eth.reason);
  expect(eth.dst).to.equal(GUEST_MAC);
  const ipBytes = frame.subarray(14);
  const ip = parseIpv4(ipBytes);
  if (isWireError(ip)) throw new Error(ip.reason);
  expect(ip.protocol).to.equal(IpProtocol.ICMP);
  const icmp = parseIcmp(ipBytes.subarray(20, 20 + ip.payloadLength)); // verifies the checksum
  if (isWireError(icmp)) throw new Error(icmp.reason);
  return { ip, icmp };
}

const DATA = Uint8Array.from({ length: 56 }, (_, i) => (i * 7) & 0xff);

describe("socket-translate/icmp: mode selection", () => {
  it("uses datagram (ping) sockets when the kernel allows them, and opens no raw socket", () => {
    const s = setup((a) => {
      a.dgram = 0;
      a.raw = 0;
    });
    expect(s.tr.mode).to.equal("dgram");
    expect(s.tr.reason).to.match(/ping_group_range/);
    expect(s.addon.opened).to.deep.equal([{ fd: 100, raw: false }]);
    expect(s.addon.closed).to.deep.equal([100]); // the probe socket
    expect(s.addon.reader).to.equal(undefined);
    expect(s.warnings).to.have.length(0);
  });

  it("falls back to one raw socket, read through startRead, when datagram sockets are refused", () => {
    const s = setup((a) => {
      a.dgram = -EACCES;
      a.raw = 0;
    });
    expect(s.tr.mode).to.equal("raw");
    expect(s.tr.reason).to.match(/EACCES/).and.match(/ping_group_range/);
    expect(s.addon.opened).to.deep.equal([{ fd: 100, raw: true }]);
    expect(s.addon.reader?.fd).to.equal(100);
    expect(s.addon.reader!.slot).to.be.at.least(1500 + 20);
    expect(s.warnings).to.have.length(0);
  });

  it("is disabled with one warning when neither socket can be made; outside echo is dropped and counted", () => {
    const s = setup((a) => {
      a.dgram = -EACCES;
      a.raw = -EPERM;
    });
    expect(s.tr.mode).to.equal("disabled");
    expect(s.tr.reason).to.match(/EACCES/).and.match(/EPERM/).and.match(/CAP_NET_RAW/);
    expect(s.warnings).to.have.length(1);
    expect(s.warnings[0]).to.match(/disabled/);
    for (let seq = 1; seq <= 3; seq++) s.stack.receive(s.port, echoFrame(FAR, 1, seq, DATA));
    expect(s.tr.counters.dropped("disabled")).to.equal(3);
    expect(s.ch.sent).to.have.length(0);
    expect(s.warnings).to.have.length(1); // no log line per packet
    // The gateway still answers its own pings.
    s.stack.receive(s.port, echoFrame(s.stack.config.gatewayIp, 1, 1, DATA));
    expect(s.ch.sent).to.have.length(1);
  });

  it("is disabled (not a crash) when the addon cannot be loaded", () => {
    const stack = new NetworkStack();
    const policy = new AddressPolicy({ hostAliasIp: stack.config.hostAliasIp });
    const broken = new Proxy({} as IcmpAddon, {
      get: () => () => {
        throw new Error("Module did not self-register");
      },
    });
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, m: string) => warnings.push(m) } as unknown as IcmpTranslateOptions["log"];
    const tr = new IcmpTranslator(stack, policy, { addon: broken, log });
    expect(tr.mode).to.equal("disabled");
    expect(tr.reason).to.match(/self-register/);
    expect(warnings).to.have.length(1);
  });
});

describe("socket-translate/icmp: datagram mode", () => {
  it("sends the guest's request from a per-flow socket and maps the reply back to the guest's identifier", () => {
    const s = setup();
    s.stack.receive(s.port, echoFrame(FAR, 0x1234, 9, DATA));
    expect(s.sockets).to.have.length(1);
    const sock = s.sockets[0];
    expect(sock.sent).to.have.length(1);
    expect(sock.sent[0].address).to.equal("10.200.0.1");
    const req = parseIcmp(sock.sent[0].msg);
    expect(req).to.deep.include({ kind: "echo-request", seq: 9 });
    expect((req as { data: Uint8Array }).data).to.deep.equal(DATA);
    expect(s.tr.counters.requestsForwarded).to.equal(1);

    // The kernel answers with its own identifier (the socket's "port").
    sock.receive(icmpBytes({ kind: "echo-reply", id: 40001, seq: 9, data: DATA }), "10.200.0.1");
    expect(s.ch.sent).to.have.length(1);
    const { ip, icmp } = decode(s.ch.sent[0]);
    expect(ip.src).to.equal(FAR);
    expect(ip.dst).to.equal(GUEST_IP);
    expect(icmp).to.deep.equal({ kind: "echo-reply", id: 0x1234, seq: 9, data: DATA });
    expect(s.tr.counters.repliesReturned).to.equal(1);
  });

  it("keeps one socket per (guest address, identifier) and tells flows apart", () => {
    const s = setup();
    s.stack.receive(s.port, echoFrame(FAR, 7, 1, DATA));
    s.stack.receive(s.port, echoFrame(FAR2, 7, 2, DATA)); // same flow, another destination
    s.stack.receive(s.port, echoFrame(FAR, 8, 1, DATA));
    s.stack.receive(s.port, echoFrame(FAR, 7, 1, DATA, GUEST2_IP));
    expect(s.sockets).to.have.length(3);
    expect(s.sockets[0].sent.map((x) => x.address)).to.deep.equal(["10.200.0.1", "10.200.0.2"]);
    expect(s.tr.counters.flowsOpened).to.equal(3);
    s.sockets[1].receive(icmpBytes({ kind: "echo-reply", id: 555, seq: 1, data: DATA }), "10.200.0.1");
    s.sockets[2].receive(icmpBytes({ kind: "echo-reply", id: 556, seq: 1, data: DATA }), "10.200.0.1");
    const a = decode(s.ch.sent[0]);
    const b = decode(s.ch.sent[1]);
    expect([a.ip.dst, (a.icmp as { id: number }).id]).to.deep.equal([GUEST_IP, 8]);
    expect([b.ip.dst, (b.icmp as { id: number }).id]).to.deep.equal([GUEST2_IP, 7]);
  });

  it("shows a reply from the host's loopback as coming from the host alias", () => {
    const s = setup();
    s.stack.receive(s.port, echoFrame(FAR, 3, 1, DATA));
    s.sockets[0].receive(icmpBytes({ kind: "echo-reply", id: 1, seq: 1, data: DATA }), "127.0.0.1");
    expect(decode(s.ch.sent[0]).ip.src).to.equal(HOST_ALIAS);
  });

  it("ignores what is not an echo reply, and counts send errors", () => {
    const s = setup();
    s.stack.receive(s.port, echoFrame(FAR, 3, 1, DATA));
    const sock = s.sockets[0];
    sock.receive(icmpBytes({ kind: "echo-request", id: 1, seq: 1, data: DATA }), "10.200.0.1");
    sock.receive(Uint8Array.from([0, 0, 0]), "10.200.0.1");
    expect(s.ch.sent).to.have.length(0);
    expect(s.tr.counters.ignored).to.equal(2);
    sock.sendError = Object.assign(new Error("send EHOSTUNREACH"), { code: "EHOSTUNREACH" });
    s.stack.receive(s.port, echoFrame(FAR, 3, 2, DATA));
    expect(s.tr.counters.dropped("send-error")).to.equal(1);
    expect(s.tr.counters.requestsForwarded).to.equal(1);
  });

  it("counts a socket the kernel refuses for a new flow", () => {
    const s = setup();
    s.addon.dgram = -constants.errno.EMFILE;
    s.stack.receive(s.port, echoFrame(FAR, 3, 1, DATA));
    expect(s.tr.counters.dropped("socket-error")).to.equal(1);
    expect(s.tr.size).to.equal(0);
  });

  it("closes idle flows after idleMs, and activity keeps them", () => {
    const s = setup(undefined, { idleMs: 30_000 });
    s.stack.receive(s.port, echoFrame(FAR, 1, 1, DATA));
    s.stack.receive(s.port, echoFrame(FAR, 2, 1, DATA));
    s.timers.advance(20_000);
    s.stack.receive(s.port, echoFrame(FAR, 1, 2, DATA)); // flow 1 stays busy
    s.timers.advance(10_001);
    expect(s.tr.size).to.equal(1);
    expect(s.sockets.map((x) => x.closed)).to.deep.equal([false, true]);
    s.timers.advance(20_000);
    expect(s.tr.size).to.equal(0);
    expect(s.sockets[0].closed).to.equal(true);
    expect(s.tr.counters.flowsExpired).to.equal(2);
    // A late reply on a closed flow goes nowhere.
    s.sockets[0].receive(icmpBytes({ kind: "echo-reply", id: 1, seq: 2, data: DATA }), "10.200.0.1");
    expect(s.ch.sent).to.have.length(0);
  });

  it("a guest pinging with many identifiers evicts its own flows, never another guest's within its share (issue 19)", () => {
    const s = setup(undefined, { maxFlows: 8 });
    // A second attachment is a second guest (src/stack/guests.ts).
    const other = s.stack.attach(new Recorder());
    const B_IP = ip4("192.168.65.9")!;
    s.stack.receive(other, echoFrame(FAR, 1, 1, DATA, B_IP));
    for (let id = 1; id <= 50; id++) s.stack.receive(s.port, echoFrame(FAR, id, 1, DATA));
    expect(s.tr.size).to.equal(8);
    expect(s.tr.list().filter((f) => f.guest === "192.168.65.9")).to.have.length(1);
    expect(s.tr.counters.guestShareEvictions).to.be.greaterThan(0);
  });

  it("evicts the least recently used flow beyond maxFlows", () => {
    const s = setup(undefined, { maxFlows: 2 });
    s.stack.receive(s.port, echoFrame(FAR, 1, 1, DATA));
    s.stack.receive(s.port, echoFrame(FAR, 2, 1, DATA));
    s.stack.receive(s.port, echoFrame(FAR, 1, 2, DATA));
    s.stack.receive(s.port, echoFrame(FAR, 3, 1, DATA));
    expect(s.tr.size).to.equal(2);
    expect(s.tr.counters.flowsEvicted).to.equal(1);
    expect(s.sockets.map((x) => x.closed)).to.deep.equal([false, true, false]);
    expect(s.tr.list().map((f) => f.id).sort()).to.deep.equal([1, 3]);
  });
});

describe("socket-translate/icmp: raw mode", () => {
  const rawSetup = (opts?: IcmpTranslateOptions) =>
    setup((a) => {
      a.dgram = -EACCES;
      a.raw = 0;
    }, opts);
  const reply = (src: number, id: number, seq: number, data = DATA) =>
    ipPacket(src, ip4("10.0.2.15")!, icmpBytes({ kind: "echo-reply", id, seq, data }));

  it("writes the request under its own identifier, with a valid checksum, and maps the reply back", () => {
    const s = rawSetup();
    s.stack.receive(s.port, echoFrame(FAR, 0x1234, 5, DATA));
    expect(s.addon.sent).to.have.length(1);
    const out = s.addon.sent[0];
    expect(out.fd).to.equal(100);
    expect(out.ip).to.equal(FAR);
    const req = new IcmpPacket(out.bytes);
    expect(req.checksumOk()).to.equal(true);
    expect([req.type, req.code, req.seq]).to.deep.equal([8, 0, 5]);
    expect(req.payload).to.deep.equal(DATA);
    const ourId = req.id;
    expect(s.tr.list()[0].hostId).to.equal(ourId);
    s.addon.deliver(reply(FAR, ourId, 5));
    expect(s.ch.sent).to.have.length(1);
    const { ip, icmp } = decode(s.ch.sent[0]);
    expect([ip.src, ip.dst]).to.deep.equal([FAR, GUEST_IP]);
    expect(icmp).to.deep.equal({ kind: "echo-reply", id: 0x1234, seq: 5, data: DATA });
    expect(s.tr.counters).to.deep.include({ requestsForwarded: 1, repliesReturned: 1, ignored: 0 });
  });

  it("gives two guests using the same identifier different host identifiers", () => {
    const s = rawSetup();
    s.stack.receive(s.port, echoFrame(FAR, 42, 1, DATA));
    s.stack.receive(s.port, echoFrame(FAR, 42, 1, DATA, GUEST2_IP));
    const [a, b] = s.addon.sent.map((x) => new IcmpPacket(x.bytes).id);
    expect(a).to.not.equal(b);
    s.addon.deliver(reply(FAR, b, 1), reply(FAR, a, 1));
    expect(s.ch.sent.map((f) => decode(f).ip.dst)).to.deep.equal([GUEST2_IP, GUEST_IP]);
    expect(s.ch.sent.map((f) => (decode(f).icmp as { id: number }).id)).to.deep.equal([42, 42]);
  });

  it("ignores the host's other ICMP: unknown identifiers, other sources, requests, bad checksums, other protocols", () => {
    const s = rawSetup();
    s.stack.receive(s.port, echoFrame(FAR, 9, 1, DATA));
    const ourId = new IcmpPacket(s.addon.sent[0].bytes).id;
    const badSum = reply(FAR, ourId, 1);
    badSum[20 + 8] ^= 0xff;
    s.addon.deliver(
      reply(FAR, (ourId + 1) & 0xffff, 1), // someone else's ping
      reply(FAR2, ourId, 1), // our identifier, but not from where we pinged
      ipPacket(ip4("10.0.2.15")!, FAR, icmpBytes({ kind: "echo-request", id: ourId, seq: 1, data: DATA })),
      badSum,
      ipPacket(FAR, FAR2, new Uint8Array(16), IpProtocol.UDP),
      Uint8Array.from([0x45, 0, 0]),
    );
    expect(s.ch.sent).to.have.length(0);
    expect(s.tr.counters.ignored).to.equal(6);
    s.addon.deliver(reply(FAR, ourId, 1));
    expect(s.ch.sent).to.have.length(1);
  });

  it("frees the host identifier when the flow expires", () => {
    const s = rawSetup({ idleMs: 1000 });
    s.stack.receive(s.port, echoFrame(FAR, 9, 1, DATA));
    const ourId = new IcmpPacket(s.addon.sent[0].bytes).id;
    s.timers.advance(1001);
    expect(s.tr.size).to.equal(0);
    s.addon.deliver(reply(FAR, ourId, 1));
    expect(s.ch.sent).to.have.length(0);
    expect(s.tr.counters.ignored).to.equal(1);
  });

  it("counts a refused send", () => {
    const s = rawSetup();
    s.addon.sendResult = -EAGAIN;
    s.stack.receive(s.port, echoFrame(FAR, 9, 1, DATA));
    expect(s.tr.counters.dropped("send-error")).to.equal(1);
    expect(s.tr.counters.requestsForwarded).to.equal(0);
  });

  it("becomes disabled, with one warning, when reading the raw socket fails", () => {
    const s = rawSetup();
    s.stack.receive(s.port, echoFrame(FAR, 9, 1, DATA));
    s.addon.reader!.cb(-constants.errno.ENETDOWN);
    expect(s.tr.mode).to.equal("disabled");
    expect(s.warnings).to.have.length(1);
    expect(s.addon.closed).to.include(100);
    s.stack.receive(s.port, echoFrame(FAR, 9, 2, DATA));
    expect(s.tr.counters.dropped("disabled")).to.equal(1);
    expect(s.addon.sent).to.have.length(1);
  });
});

describe("socket-translate/icmp: policy and the stack's hook", () => {
  it("drops refused destinations and answers destination unreachable, administratively prohibited", () => {
    const s = setup();
    const frame = echoFrame(ip4("169.254.169.254")!, 1, 1, DATA);
    s.stack.receive(s.port, frame);
    expect(s.sockets).to.have.length(0);
    expect(s.tr.counters.dropped("denied")).to.equal(1);
    expect(s.ch.sent).to.have.length(1);
    const { ip, icmp } = decode(s.ch.sent[0]);
    expect(ip.src).to.equal(s.stack.config.gatewayIp);
    expect(icmp).to.deep.include({ kind: "dest-unreachable", code: 13 });
    expect((icmp as { original: Uint8Array }).original).to.deep.equal(frame.subarray(14, 14 + 28));
  });

  it("drops refused destinations silently with answerDenied: false", () => {
    const s = setup(undefined, { answerDenied: false });
    s.stack.receive(s.port, echoFrame(ip4("169.254.169.254")!, 1, 1, DATA));
    s.stack.receive(s.port, echoFrame(ip4("224.0.0.1")!, 1, 1, DATA));
    expect(s.ch.sent).to.have.length(0);
    expect(s.tr.counters.dropped("denied")).to.equal(2);
  });

  it("never forwards echo to a broadcast address nor to the gateway; the host alias goes to the host's 127.0.0.1", () => {
    const s = setup();
    s.stack.receive(s.port, echoFrame(s.stack.broadcastAddress, 1, 1, DATA));
    s.stack.receive(s.port, echoFrame(0xffff_ffff, 1, 1, DATA));
    expect(s.stack.counters.dropped("icmp-unhandled")).to.equal(2);
    s.stack.receive(s.port, echoFrame(s.stack.config.gatewayIp, 1, 1, DATA));
    expect(s.ch.sent).to.have.length(1); // answered by the stack itself
    expect(s.sockets).to.have.length(0);
    s.stack.receive(s.port, echoFrame(HOST_ALIAS, 1, 1, DATA));
    expect(s.sockets).to.have.length(1); // the host alias is the host's loopback: forwarded
    expect(s.sockets[0].sent[0].address).to.equal("127.0.0.1");
    expect(s.tr.counters.requestsForwarded).to.equal(1);
  });

  it("closeAll closes every flow and uninstalls the hook", () => {
    const s = setup();
    s.stack.receive(s.port, echoFrame(FAR, 1, 1, DATA));
    s.tr.closeAll();
    expect(s.sockets[0].closed).to.equal(true);
    expect(s.stack.icmpForwarder).to.equal(undefined);
    s.stack.receive(s.port, echoFrame(FAR, 1, 2, DATA));
    expect(s.stack.counters.dropped("icmp-unhandled")).to.equal(1);
  });
});

describe("native/addon: ICMP socket functions of the real addon", function () {
  before(function () {
    if (findAddon(fileURLToPath(new URL("../../src/native/", import.meta.url))) === undefined) {
      console.log("    skipped: the addon is not built (npm run build:native)");
      this.skip();
    }
  });

  it("icmpSocket returns an fd or -errno (EACCES/EPERM), never throws", () => {
    const addon = loadAddon("tests");
    for (const raw of [false, true]) {
      const fd = addon.icmpSocket(raw);
      expect(fd === -EACCES || fd === -EPERM || fd >= 0, `icmpSocket(${raw}) = ${fd}`).to.equal(true);
      if (fd >= 0) expect(addon.close(fd)).to.equal(0);
    }
  });

  it("sendTo reports -errno for a bad fd and throws TypeError for bad arguments", () => {
    const addon = loadAddon("tests");
    expect(addon.sendTo(-1, new Uint8Array(8), FAR)).to.equal(-EBADF);
    expect(() => addon.sendTo(-1, "x" as unknown as Uint8Array, FAR)).to.throw(TypeError);
    expect(() => addon.icmpSocket(1 as unknown as boolean)).to.throw(TypeError);
  });
});
