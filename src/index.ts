/**
 * skiff as a library: the public API.
 *
 * The front door is `createNetwork(options)` (src/network/network.ts): the whole virtual
 * network the `skiff` command serves, with methods to attach guests, forward ports, capture,
 * serve the control API and read counters. Below it, for embedders that need the parts
 * (ARCHITECTURE.md): wire codecs (`ethernet`, `ipv4`, `tcp`, `dhcp`), pcap, link channels
 * (`FrameChannel` and its attachments and wrappers), the gateway stack, and the
 * host-directory sharing service (`src/share/`).
 */

export * from "./network/network.js";
export * from "./network/options.js";
export { NetworkServices } from "./network/services.js";
export type { LeaseInfo } from "./network/control.js";
export type { NetworkStats } from "./network/stats.js";
export { NetworkCapture, type CaptureControl, type CaptureStatus } from "./network/capture.js";
export { ForwardManager, type ForwardInfo } from "./forward/manager.js";
export { parsePublish, type ForwardSpec, type ForwardProto } from "./forward/spec.js";
export { apiRequest } from "./forward/client.js";

export * from "./common/wire-error.js";
export * from "./common/addr.js";
export * from "./ethernet/ethernet.js";
export * from "./ethernet/arp.js";
export * from "./ipv4/checksum.js";
export * from "./ipv4/ipv4.js";
export * from "./ipv4/icmp.js";
export * from "./ipv4/udp.js";
export * from "./tcp/wire.js";
export * from "./dhcp/wire.js";
export * from "./pcap/format.js";
export * from "./pcap/reader.js";
export * from "./pcap/writer.js";
export * from "./common/frame-channel.js";
export * from "./link/memory.js";
export * from "./link/stream-channel.js";
export * from "./link/qemu-stream.js";
export * from "./link/capture.js";
export * from "./link/fault.js";
export * from "./link/tap.js";
export * from "./link/unix-dgram.js";
export * from "./link/vfkit.js";
export * from "./link/qemu-dgram.js";
export * from "./link/vmnet.js";
export * from "./stack/config.js";
export * from "./stack/counters.js";
export * from "./stack/neighbors.js";
export * from "./stack/stack.js";
export * from "./stack/gateway-udp.js";

// Types the exported classes' members refer to (the parts of the assembled network).
export type { IpHost, IcmpForwarder, UdpHandler, UdpDatagram, IcmpEcho } from "./stack/ip-host.js";
export type { ApiResponse } from "./forward/client.js";
export type { TcpLayer } from "./stack/tcp.js";
export type { TcpTranslator } from "./socket-translate/tcp-translator.js";
export type { UdpTranslator } from "./socket-translate/udp-translator.js";
export type { IcmpTranslator } from "./socket-translate/icmp-translator.js";
export type { DnsServer } from "./stack/dns-service.js";
export type { DhcpService } from "./stack/dhcp-service.js";
export type { FdBudget } from "./socket-translate/fd-budget.js";
export type { FileSinkIo } from "./pcap/file-sink.js";
export type { Guest, SourceBindings } from "./stack/guests.js";
export type { FragmentLimits, FragmentReassembler } from "./ipv4/fragments.js";
export type { DhcpLease, StaticLease } from "./dhcp/leases.js";
export type { ForwardManagerOptions } from "./forward/manager.js";
export type { TcpForwardCounters } from "./forward/tcp-forward.js";
export type { UdpForwardCounters } from "./forward/udp-forward.js";
export type { TapAddon } from "./native/addon.js";
// Host-directory sharing (9P2000.L on the gateway's TCP 564): services, the share registry,
// a connection over any byte stream, and the 9P codec under distinct names.
export { ShareService, P9_PORT, type ShareServiceOptions } from "./share/service.js";
export { EventService, P9_EVENTS_PORT, type EventServiceOptions } from "./share/event-service.js";
export type { ShareEventOptions } from "./share/events.js";
export { ShareRegistry, parseShareArg, type ShareSpec } from "./share/registry.js";
export { P9Connection, type P9Transport } from "./share/connection.js";
export { DEFAULT_MAX_MSIZE, type SessionOptions } from "./share/session.js";
export { P9, parseMessage as parse9pMessage, emitMessage as emit9pMessage, messageLen as ninePMessageLen, type P9Message, type Qid } from "./share/wire.js";
