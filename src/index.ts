/**
 * skiff as a library: the public API.
 *
 * Layers, bottom up (DESIGN.md): wire codecs (`ethernet`, `ipv4`, `tcp`, `dhcp`), pcap, link
 * channels (`FrameChannel` and its attachments and wrappers), and the gateway stack.
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
