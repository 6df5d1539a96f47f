/**
 * Issue 19, "addresses": with host loopback off (`--no-host-loopback`, vpnkit's
 * `--host-ip 0.0.0.0`) the host alias 192.168.65.2 is refused (ICMP administratively
 * prohibited, RFC 1812 §5.2.7.1) and nothing is dialled; no address of the guest subnet is
 * ever dialled on the host side. Before the fix the alias was nulled in the configuration and
 * .2 was dialled as an ordinary address (it left through the host's default route).
 */
import { expect } from "chai";
import { pino } from "pino";
import { NetworkServices as Network } from "../../src/network/services.js";
import { IcmpUnreachCode } from "../../src/ipv4/icmp.js";
import { parseIpv4Address } from "../../src/common/addr.js";
import { RecordingChannel, GUEST_MAC, GUEST_IP, GW_IP, HOST_IP } from "../support/stack.js";
import { tcpSyn, udpFrame, echoRequest, describe as seen } from "../support/frames.js";

const log = pino({ level: "silent" });

function setup(hostIp?: string) {
  const net = new Network({ mtu: 1500, hostIp, log, staticLeases: [{ mac: GUEST_MAC, ip: GUEST_IP }] });
  const ch = new RecordingChannel();
  const port = net.stack.attach(ch);
  const send = (f: Uint8Array) => net.stack.receive(port, f);
  return { net, ch, send };
}

describe("socket-translate: the host alias off and the guest subnet are never dialled", () => {
  let net: Network | undefined;
  afterEach(() => net?.close());

  it("a raw SYN to 192.168.65.2 with host loopback off is refused (admin-prohibited) and nothing is dialled", () => {
    const s = setup("0.0.0.0");
    net = s.net;
    s.send(tcpSyn(GUEST_MAC, GUEST_IP, 40000, HOST_IP, 80));
    expect(net.tcpTranslator.counters.dials, "dials").to.equal(0);
    expect(net.stack.config.hostAliasIp).to.equal(null);
    expect(net.tcpTranslator.counters.denied).to.equal(1);
    const replies = s.ch.sent.map(seen);
    expect(replies).to.deep.include({ kind: "icmp-unreachable", code: IcmpUnreachCode.AdminProhibited, src: GW_IP, dst: GUEST_IP });
  });

  it("a UDP datagram to 192.168.65.2 with host loopback off is refused (admin-prohibited), no flow opened", () => {
    const s = setup("0.0.0.0");
    net = s.net;
    s.send(udpFrame(GUEST_MAC, GUEST_IP, 5000, HOST_IP, 53, Uint8Array.of(1, 2, 3)));
    expect(net.udp.counters.flowsOpened).to.equal(0);
    expect(net.udp.counters.denied).to.equal(1);
    expect(s.ch.sent.map(seen)).to.deep.include({ kind: "icmp-unreachable", code: IcmpUnreachCode.AdminProhibited, src: GW_IP, dst: GUEST_IP });
  });

  it("an echo request to 192.168.65.2 with host loopback off gets no echo reply", () => {
    const s = setup("0.0.0.0");
    net = s.net;
    s.send(echoRequest(GUEST_MAC, GUEST_IP, HOST_IP));
    expect(s.ch.sent.map(seen).filter((x) => x.kind === "icmp-echo-reply")).to.deep.equal([]);
    expect(net.icmp.counters.requestsForwarded).to.equal(0);
  });

  it("no address of the guest subnet (network, other guests, broadcast) is dialled, loopback on or off", () => {
    for (const hostIp of [undefined, "0.0.0.0"]) {
      const s = setup(hostIp);
      net = s.net;
      for (const [i, a] of ["192.168.65.0", "192.168.65.77", "192.168.65.254"].entries()) {
        s.send(tcpSyn(GUEST_MAC, GUEST_IP, 41000 + i, parseIpv4Address(a)!, 80));
        s.send(udpFrame(GUEST_MAC, GUEST_IP, 6000 + i, parseIpv4Address(a)!, 9, Uint8Array.of(1)));
      }
      expect(net.tcpTranslator.counters.dials, `dials (hostIp ${hostIp})`).to.equal(0);
      expect(net.tcpTranslator.counters.denied).to.equal(3);
      expect(net.udp.counters.flowsOpened).to.equal(0);
      expect(net.udp.counters.denied).to.equal(3);
      net.close();
    }
  });

  it("the alias's address stays out of the DHCP pool when host loopback is off", () => {
    const s = setup("0.0.0.0");
    net = s.net;
    expect(net.dhcp.server.config.reserved).to.include(HOST_IP);
  });
});
