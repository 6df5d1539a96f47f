/**
 * `skiff serve`: one skiff network for any number of guests attached in any of the supported
 * ways — QEMU `-netdev stream` (Unix or TCP, skiff listening), QEMU `-netdev dgram`, VPNKit's
 * vmnet protocol (hyperkit, RootlessKit), vfkit — all on one learning switch with the gateway,
 * so guests reach each other directly and share DHCP, DNS, socket translation and the host
 * directories given with `--share NAME=DIR[:ro]` (9P on the gateway's TCP port 564). Runs until
 * SIGINT/SIGTERM, then closes everything and removes the sockets it created.
 */

import type { Logger } from "pino";
import { formatIpv4 } from "../common/addr.js";
import type { FrameChannel } from "../link/channel.js";
import { QemuStreamListener } from "../link/qemu-stream.js";
import { UnixDgramChannel } from "../link/unix-dgram.js";
import { openVfkit } from "../link/vfkit.js";
import { CaptureChannel } from "../link/capture.js";
import { PcapWriter } from "../pcap/writer.js";
import { attachSwitch } from "../stack/switched.js";
import { Network } from "./network.js";
import { StopSignal } from "./stop.js";
import { listenVmnet } from "./vpnkit.js";
import { startControl, type Control } from "./forward.js";
import { checkOutputFile } from "./args.js";
import { checkSocketPath, prepareSocketPath } from "../common/socket-path.js";
import { parseShareArg } from "../share/registry.js";

export interface ServeOptions {
  qemuStream: string[];
  qemuDgram: string[];
  vmnet: string[];
  vfkit: string[];
  mtu: number;
  subnet?: string;
  hostIp?: string;
  deny?: string[];
  dnsRecords?: string[];
  /** `NAME=HOSTDIR[:ro]`: host directories served over 9P (src/share/). */
  shares?: string[];
  pcap?: string;
  apiSocket?: string;
  log: Logger;
  /** Resolves when the command should stop (tests); SIGINT/SIGTERM always stop it. */
  stop?: Promise<unknown>;
  onReady?: () => void;
}

export async function serve(opts: ServeOptions): Promise<number> {
  const { log } = opts;
  const attachments = opts.qemuStream.length + opts.qemuDgram.length + opts.vmnet.length + opts.vfkit.length;
  if (attachments === 0) throw new Error("nothing to serve: give at least one of --qemu-stream, --qemu-dgram, --vmnet, --vfkit");
  // Checked before anything is opened (a bad --dns-record throws in Network's constructor).
  if (opts.pcap !== undefined) checkOutputFile(opts.pcap, "--pcap");
  for (const [flag, paths] of [["--qemu-stream", opts.qemuStream.filter((a) => a.startsWith("unix:")).map((a) => a.slice(5))], ["--qemu-dgram", opts.qemuDgram], ["--vmnet", opts.vmnet], ["--vfkit", opts.vfkit], ["--api-socket", opts.apiSocket === undefined ? [] : [opts.apiSocket]]] as const) {
    for (const path of paths) checkSocketPath(path, flag);
  }
  const shares = (opts.shares ?? []).map(parseShareArg);
  const net = new Network({ mtu: opts.mtu, subnet: opts.subnet, hostIp: opts.hostIp, deny: opts.deny, dnsRecords: opts.dnsRecords, shares, log });
  const sw = attachSwitch(net.stack);
  // One capture for the whole network: every guest's link, both directions. A frame between two
  // guests appears twice (leaving one, entering the other).
  let writer: PcapWriter | undefined;
  const channels = new Set<FrameChannel>();
  const attach = (channel: FrameChannel) => {
    const ch: FrameChannel = writer ? new CaptureChannel(channel, writer) : channel;
    channels.add(ch);
    sw.addPort(ch);
    ch.once("closed", () => channels.delete(ch));
    log.info({ channel: channel.name }, "guest attached");
  };
  const stop = new StopSignal(opts.stop);
  const closers: Array<() => unknown> = [];
  let control: Control | undefined;
  try {
    // From here on, whatever fails closes everything opened so far (finally) and exits at once.
    if (opts.pcap) writer = PcapWriter.toFile(opts.pcap);
    for (const addr of opts.qemuStream) {
      const l = await QemuStreamListener.listen(addr, { mtu: opts.mtu });
      l.on("channel", attach);
      closers.push(() => l.close());
    }
    for (const path of opts.qemuDgram) {
      // skiff binds PATH; QEMU's own path is learned from its first datagram
      // (-netdev dgram,local.path=QEMU_SIDE,remote.path=PATH).
      await prepareSocketPath(path, "--qemu-dgram");
      const ch = UnixDgramChannel.open(`qemu-dgram:${path}`, { localPath: path }, { mtu: opts.mtu });
      attach(ch);
      closers.push(() => ch.close());
    }
    for (const path of opts.vfkit) {
      await prepareSocketPath(path, "--vfkit");
      const ch = openVfkit(path, { mtu: opts.mtu });
      attach(ch);
      closers.push(() => ch.close());
    }
    for (const path of opts.vmnet) {
      const l = await listenVmnet(net, path, opts.mtu, attach, log);
      closers.push(() => l.close());
    }
    if (opts.apiSocket !== undefined) control = await startControl(net, { apiSocket: opts.apiSocket, log });
    const cfg = net.stack.config;
    log.info({ gateway: formatIpv4(cfg.gatewayIp), attachments }, "serve: ready");
    opts.onReady?.();
    await stop.stopped;
    log.info({ signal: stop.signal }, "serve: stopping");
    return 0;
  } finally {
    stop.dispose();
    await control?.close();
    for (const c of closers) await c();
    for (const c of channels) c.close();
    writer?.close();
    net.close();
  }
}
