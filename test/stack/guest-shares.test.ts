/**
 * Issue 19: each guest's share of the stack's tables (src/stack/guests.ts), with two guests
 * behind the switch as in `skiff serve`. A guest flooding SYNs fills at most its share of the
 * TCP flow table and of the half-open table (the rest get RST), and another guest's SYN is
 * still held for its owner; a guest flooding UDP flows evicts its own flows, never another
 * guest's within its share, while a lone guest keeps the whole table.
 */
import { expect } from "chai";
import { NetworkStack } from "../../src/stack/stack.js";
import { attachSwitchDetailed, internalLink } from "../../src/stack/switched.js";
import { TcpLayer, type TcpFlow } from "../../src/stack/tcp.js";
import { UdpTranslator } from "../../src/socket-translate/udp-translator.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { TcpFlag } from "../../src/tcp/wire.js";
import { parseIpv4Address } from "../../src/common/addr.js";
import { HOST_IP } from "../support/stack.js";
import { tcpSyn, udpFrame, describe as seen, type Seen } from "../support/frames.js";

const A = { mac: 0x5254_0000_0a01, ip: parseIpv4Address("192.168.65.10")! };
const B = { mac: 0x5254_0000_0b01, ip: parseIpv4Address("192.168.65.11")! };

function setup() {
  const stack = new NetworkStack({ now: () => 0 });
  const { sw } = attachSwitchDetailed(stack);
  const guest = () => {
    const [g, s] = internalLink("guest", 1500);
    sw.addPort(s);
    const got: Seen[] = [];
    g.setReceiver((f) => got.push(seen(f)));
    return { send: (f: Uint8Array) => g.send(f), got };
  };
  return { stack, a: guest(), b: guest() };
}

const rsts = (got: Seen[]) => got.filter((x) => x.kind === "tcp" && (x.flags & TcpFlag.RST) !== 0).length;

describe("stack: per-guest shares of the TCP tables", () => {
  let tcp: TcpLayer | undefined;
  afterEach(() => tcp?.close());

  it("a SYN flood fills only the guest's share of the half-open table; another guest's SYN is held", () => {
    const { stack, a, b } = setup();
    tcp = new TcpLayer(stack, { maxHalfOpen: 8 });
    const held: TcpFlow[] = [];
    tcp.forwarder = (f) => held.push(f);
    for (let i = 0; i < 20; i++) a.send(tcpSyn(A.mac, A.ip, 20000 + i, HOST_IP, 80));
    expect(held).to.have.length(2);
    expect(rsts(a.got)).to.equal(18);
    expect(tcp.counters.refusedGuestShare).to.equal(18);
    b.send(tcpSyn(B.mac, B.ip, 30000, HOST_IP, 80));
    expect(held).to.have.length(3);
    expect(held[2].guestIp).to.equal(B.ip);
    expect(rsts(b.got)).to.equal(0);
  });

  it("a SYN flood fills only the guest's share of the flow table; another guest's SYN is held", () => {
    const { stack, a, b } = setup();
    tcp = new TcpLayer(stack, { maxFlows: 16, maxHalfOpen: 1024 });
    const held: TcpFlow[] = [];
    tcp.forwarder = (f) => held.push(f);
    for (let i = 0; i < 20; i++) a.send(tcpSyn(A.mac, A.ip, 20000 + i, HOST_IP, 80));
    expect(held).to.have.length(4);
    b.send(tcpSyn(B.mac, B.ip, 30000, HOST_IP, 80));
    expect(held).to.have.length(5);
    expect(rsts(b.got)).to.equal(0);
  });

  it("a flow that closes gives its guest's share back", () => {
    const { stack, a } = setup();
    tcp = new TcpLayer(stack, { maxHalfOpen: 8 });
    const held: TcpFlow[] = [];
    tcp.forwarder = (f) => held.push(f);
    for (let i = 0; i < 3; i++) a.send(tcpSyn(A.mac, A.ip, 20000 + i, HOST_IP, 80));
    expect(held).to.have.length(2);
    held[0].refuse();
    a.send(tcpSyn(A.mac, A.ip, 21000, HOST_IP, 80));
    expect(held).to.have.length(3);
  });
});

describe("stack: per-guest shares of the UDP flow table", () => {
  let udp: UdpTranslator | undefined;
  afterEach(() => udp?.closeAll());

  it("a guest opening flows from many ports evicts its own, never another guest's within its share", () => {
    const { stack, a, b } = setup();
    udp = new UdpTranslator(stack, new AddressPolicy({ hostAliasIp: HOST_IP }), { maxFlows: 8, hostSockets: "node" });
    b.send(udpFrame(B.mac, B.ip, 5353, HOST_IP, 9, Uint8Array.of(1)));
    for (let i = 0; i < 50; i++) a.send(udpFrame(A.mac, A.ip, 10000 + i, HOST_IP, 9, Uint8Array.of(1)));
    expect(udp.size).to.equal(8);
    expect(udp.list().map((f) => f.guest)).to.include("192.168.65.11:5353");
    expect(udp.counters.guestShareEvictions).to.be.greaterThan(0);
  });

  it("a lone guest keeps the whole table (shares bite only when it is full)", () => {
    const { stack, a } = setup();
    udp = new UdpTranslator(stack, new AddressPolicy({ hostAliasIp: HOST_IP }), { maxFlows: 8, hostSockets: "node" });
    for (let i = 0; i < 8; i++) a.send(udpFrame(A.mac, A.ip, 10000 + i, HOST_IP, 9, Uint8Array.of(1)));
    expect(udp.size).to.equal(8);
    expect(udp.counters.flowsEvicted).to.equal(0);
  });
});
