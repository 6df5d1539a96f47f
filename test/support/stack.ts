/**
 * Shared fixtures for tests that drive a NetworkStack directly with frames: the addressing
 * plan's constants, a channel that records what the stack sends, and a guest's TCP segment.
 */
import { BaseFrameChannel } from "../../src/common/frame-channel.js";
import { parseIpv4Address, parseMac } from "../../src/common/addr.js";
import { emitEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { emitIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { emitTcp, tcpLen, type TcpRepr } from "../../src/tcp/wire.js";
import { NetworkStack } from "../../src/stack/stack.js";

export const GUEST_MAC = parseMac("52:54:00:12:34:56")!;
export const GW_MAC = parseMac("02:50:00:00:00:01")!;
export const GUEST_IP = parseIpv4Address("192.168.65.3")!;
export const GW_IP = parseIpv4Address("192.168.65.1")!;
export const HOST_IP = parseIpv4Address("192.168.65.2")!;

/** A channel that records (copies of) what the stack sends. */
export class RecordingChannel extends BaseFrameChannel {
  sent: Uint8Array[] = [];
  constructor(mtu = 1500) {
    super("recording", mtu);
  }
  protected transmit(frame: Uint8Array): boolean {
    this.sent.push(Uint8Array.from(frame));
    this.stats.txFrames++;
    return true;
  }
  protected shutdown(): void {}
}

/** A frame from the guest (GUEST_MAC to the gateway) carrying TCP segment `seg` from `src` to `dst`. */
export function guestSegment(src: number, dst: number, seg: TcpRepr): Uint8Array {
  const l4 = tcpLen(seg);
  const f = new Uint8Array(14 + 20 + l4);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
  const h = emitIpv4({ src, dst, protocol: IpProtocol.TCP, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: l4, options: new Uint8Array(0) }, f, o);
  emitTcp(seg, f, o + h, src, dst);
  return f;
}

/** A stack on a clock the test advances by hand (fire deadlines with `stack.timers.run()`), one recording link attached. */
export function manualStack() {
  let t = 1000;
  // IPv6 off: its router-advertisement timer would be one more item on the heap these tests count.
  const stack = new NetworkStack({ now: () => t, ipv6: false });
  const link = new RecordingChannel();
  const port = stack.attach(link);
  return { stack, link, port, advance: (ms: number) => (t += ms) };
}

/**
 * Step a manual stack's clock to 1 ms short of `ms` from now and fire what is due: `before()`
 * must hold; then to `ms` and fire again: `after()` must hold. Deadlines fire exactly on time.
 */
export function crossDeadline(env: { stack: NetworkStack; advance: (ms: number) => void }, ms: number, before: () => void, after: () => void): void {
  env.advance(ms - 1);
  env.stack.timers.run();
  before();
  env.advance(1);
  env.stack.timers.run();
  after();
}
