/**
 * Cost of guest isolation (issue 19) on the receive path: ns per frame through
 * `NetworkStack.receive` for a 64-byte UDP datagram from a guest to a service of the gateway
 * that does nothing (Ethernet, IPv4 and UDP checks, the guest's lookup, dispatch), with source
 * validation off and on (a static lease; the per-guest cache hits), on a direct port and
 * behind the switch (`attachSwitch`: the guest is found from the switch's MAC table).
 *
 * Run: `npx tsx bench/isolation.ts`. Prints a markdown table (numbers vary by machine).
 */
import { NetworkStack } from "../src/stack/stack.js";
import { DhcpService } from "../src/stack/dhcp-service.js";
import { attachSwitchDetailed, internalLink } from "../src/stack/switched.js";
import { BaseFrameChannel } from "../src/common/frame-channel.js";
import { emitEthernet, EtherType } from "../src/ethernet/ethernet.js";
import { emitIpv4, IpProtocol, NO_IPV4_OPTIONS } from "../src/ipv4/ipv4.js";
import { emitUdp } from "../src/ipv4/udp.js";
import { timeIt } from "./time-it.js";

const GW_MAC = 0x0250_0000_0001;
const MAC = 0x5254_0012_3456;
const IP = 0xc0a8_4103;
const GW = 0xc0a8_4101;

class NullChannel extends BaseFrameChannel {
  constructor() {
    super("null", 1500);
  }
  protected transmit(): boolean {
    return true;
  }
  protected shutdown(): void {}
}

function frame(): Uint8Array {
  const payload = new Uint8Array(64);
  const f = new Uint8Array(14 + 20 + 8 + payload.length);
  const o = emitEthernet({ dst: GW_MAC, src: MAC, ethertype: EtherType.IPv4 }, f);
  const h = emitIpv4({ src: IP, dst: GW, protocol: IpProtocol.UDP, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: 8 + payload.length, options: NO_IPV4_OPTIONS }, f, o);
  emitUdp({ srcPort: 5000, dstPort: 9999, payload }, f, o + h, IP, GW);
  return f;
}


function setup(validate: boolean, switched: boolean): () => void {
  const stack = new NetworkStack({});
  let served = 0;
  stack.bindUdp(9999, () => served++);
  new DhcpService(stack, { staticLeases: [{ mac: MAC, ip: IP }], validateSources: validate });
  const f = frame();
  if (!switched) {
    const port = stack.attach(new NullChannel());
    return () => stack.receive(port, f);
  }
  const { sw } = attachSwitchDetailed(stack);
  const [g, s] = internalLink("guest", 1500);
  sw.addPort(s);
  return () => g.send(f);
}

const rows: string[] = ["| path | validation off (ns/frame) | validation on (ns/frame) |", "|---|---|---|"];
for (const switched of [false, true]) {
  const off = timeIt(setup(false, switched), 1500, 20000);
  const on = timeIt(setup(true, switched), 1500, 20000);
  rows.push(`| ${switched ? "behind the switch" : "direct port"} | ${off.toFixed(0)} | ${on.toFixed(0)} |`);
}
console.log(rows.join("\n"));
