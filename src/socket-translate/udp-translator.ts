/**
 * UDP socket translation: a flow table keyed by the guest's source address and port, one host
 * datagram socket per flow (VPNKit's model). A guest datagram to any destination leaves from
 * that socket; a datagram from *any* peer arriving on the socket goes back to the guest's
 * address and port, with the peer's address as its source (the host's 127.0.0.1 shown as the
 * host alias), which is what STUN-like and DNS-like clients expect.
 *
 * Bounds (configurable): flows idle for `idleMs` (default 60 s) are closed; beyond `maxFlows`
 * the least recently used flow is evicted, by the per-guest rule of src/stack/guests.ts
 * (`maxFlowsPerGuest`, default a quarter of `maxFlows`): a guest at its share loses its own
 * oldest flow, and a guest within its share is never evicted by another's flood. Broadcasts never get here (the stack keeps them);
 * destinations the address policy refuses are dropped, counted and answered with ICMP
 * "administratively prohibited" (RFC 1812 §5.2.7.1, code 13). Fragmented datagrams are
 * reassembled by the stack before they arrive.
 *
 * Host sockets come from the addon's epoll set (`NativeDatagramSocket`: datagrams of every ready
 * socket in one call per loop iteration; a guest's datagrams leave at the end of the link's read
 * batch, runs of one flow to one destination in one UDP GSO sendmsg(): udp-send-batch.ts), or are Node
 * `dgram` sockets when the addon is missing or `hostSockets: "node"`.
 */

import { formatIpv4, parseIpv4Address } from "../common/addr.js";
import type { NetworkStack } from "../stack/stack.js";
import { sendUdp, sendUdpUnreachable, type UdpDatagram } from "../stack/gateway-udp.js";
import { IcmpUnreachCode } from "../stack/gateway-icmp.js";
import { countToGuest, UdpFlow, UdpFlowTranslator, type HostDatagram, type UdpTranslateOptions } from "./udp-flows.js";
import type { AddressPolicy } from "./policy.js";
import { nativeStreams, type NativeStreamGroup } from "./native-stream.js";

export { UdpTranslateCounters, type UdpTranslateOptions } from "./udp-flows.js";

export class UdpTranslator extends UdpFlowTranslator<UdpDatagram> {
  private readonly group: NativeStreamGroup | undefined;

  constructor(
    stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: UdpTranslateOptions = {},
  ) {
    super(stack, "udp", opts);
    this.group = opts.hostSockets === "node" ? undefined : nativeStreams();
    stack.udpForwarder = (_s, d) => this.fromGuest(d);
  }

  private fromGuest(d: UdpDatagram): void {
    const c = this.counters;
    const target = this.policy.resolve(d.dstIp);
    if (!target.ok) {
      // Refused like a TCP SYN or an echo request: "administratively prohibited" (RFC 1812 §5.2.7.1).
      c.denied++;
      sendUdpUnreachable(this.stack, d, IcmpUnreachCode.AdminProhibited);
      return;
    }
    const key = d.srcIp * 65536 + d.srcPort;
    const flow = this.flowFor(this.flows.get(key), key, d);
    if (flow === undefined) return;
    flow.sock.send(d.payload, target.host, target.ip, d.dstPort);
  }

  protected newFlow(key: number, d: UdpDatagram, now: number): UdpFlow {
    return new UdpFlow(key, d.port, d.srcMac, d.srcIp, undefined, d.srcPort, now);
  }

  protected hostSocket(flow: UdpFlow): HostDatagram {
    const native = this.group?.openUdp((bytes, ip, port) => this.toGuest(flow, bytes, ip, port), this.batchFailed);
    if (native !== undefined && typeof native !== "string") {
      return {
        // In UDP GSO batches at the end of the link's read batch (udp-send-batch.ts).
        send: (payload, _host, ip, port) => native.sendBatched(payload, ip, port),
        close: () => native.close(),
      };
    }
    if (native !== undefined) this.log?.debug({ code: native }, "udp: addon socket refused; using dgram");
    return this.dgramSocket(flow, "udp4", (msg, address, port) => {
      const src = parseIpv4Address(address);
      if (src !== undefined) this.toGuest(flow, msg, src, port);
    });
  }

  /** Datagrams of a batch that were not sent (udp-send-batch.ts). */
  private readonly batchFailed = (code: string, datagrams: number): void => {
    this.counters.sendErrors += datagrams - 1;
    this.sendFailed(code);
  };

  /** UDP GSO sends of the addon's sockets (udp-send-batch.ts; process-wide, as the socket set is). */
  get sendBatches(): { gsoBatches: number; gsoDatagrams: number } {
    const c = this.group?.udpBatch.counters;
    return { gsoBatches: c?.batches ?? 0, gsoDatagrams: c?.batchedDatagrams ?? 0 };
  }

  private toGuest(flow: UdpFlow, msg: Uint8Array, srcIp: number, port: number): void {
    if (!this.live(flow)) return;
    let src = srcIp;
    // Replies from the host's loopback appear to come from the host alias.
    if (src >>> 24 === 127) {
      if (this.stack.config.hostAliasIp === null) return;
      src = this.stack.config.hostAliasIp;
    }
    countToGuest(this.counters, sendUdp(this.stack, flow.port, flow.guestMac, src, port, flow.guestIp, flow.guestPort, msg), msg.length);
  }

  /** Flow listing for stats and tests. */
  list(): Array<{ guest: string; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({ guest: `${formatIpv4(f.guestIp)}:${f.guestPort}`, idleMs: now - f.lastActive }));
  }
}

