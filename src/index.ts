/**
 * skiff as a library: the public API.
 *
 * Layers, bottom up (DESIGN.md): wire codecs (`ethernet`, `ipv4`, `tcp`, `dhcp`), pcap, link
 * channels (`FrameChannel` and its attachments and wrappers), the gateway stack, and the
 * host-directory sharing service (`src/share/`).
 */

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
export * from "./link/channel.js";
export * from "./link/memory.js";
export * from "./link/stream-channel.js";
export * from "./link/qemu-stream.js";
export * from "./link/capture.js";
export * from "./link/fault.js";
export * from "./link/tap.js";
export * from "./stack/config.js";
export * from "./stack/counters.js";
export * from "./stack/neighbors.js";
export * from "./stack/stack.js";
export * from "./stack/udp.js";
// Host-directory sharing (9P2000.L on the gateway's TCP 564): services, the share registry,
// a connection over any byte stream, and the 9P codec under distinct names.
export { ShareService, P9_PORT, type ShareServiceOptions } from "./share/service.js";
export { ShareRegistry, parseShareArg, type ShareSpec } from "./share/registry.js";
export { P9Connection, type P9Transport } from "./share/connection.js";
export { DEFAULT_MAX_MSIZE, type SessionOptions } from "./share/session.js";
export { P9, parseMessage as parse9pMessage, emitMessage as emit9pMessage, messageLen as ninePMessageLen, type P9Message, type Qid } from "./share/wire.js";
