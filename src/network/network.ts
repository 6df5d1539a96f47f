/**
 * The front door: `createNetwork(options)` builds the whole virtual network the `skiff`
 * command serves (the gateway's ARP, DHCP, DNS and ICMP echo; socket translation of guest
 * flows to host sockets; the switch that lets guests reach each other), and the returned
 * `Network` attaches guests in every supported way, forwards host ports into guests, captures
 * to pcap, serves the control API and reports counters. gvisor-tap-vsock's
 * `virtualnetwork.New(config)` with `AcceptQemu` / `AcceptVfkit` / `AcceptBess` is the same
 * shape; the `skiff` command is a thin layer over this.
 *
 *   const net = await createNetwork({ subnet: "192.168.65.0/24" });
 *   await net.listenQemuStream("unix:/tmp/qemu.sock");   // qemu -netdev stream,addr.path=...
 *   const fwd = await net.forward("127.0.0.1:8080:80");   // docker -p syntax
 *   ...
 *   await net.close();                                     // every socket, timer and device
 *
 * Options are checked before anything is opened (`NetworkOptionError` names the bad one).
 * Failures after start — a guest's link closing, a listener or forward losing its socket, a
 * capture's write error, a vmnet handshake refused — are `warning` and `detached` events,
 * never exceptions thrown into the event loop.
 */

import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { checkSocketPath, prepareSocketPath } from "../common/socket-path.js";
import type { FrameChannel } from "../common/frame-channel.js";
import { QemuStreamListener, formatStreamAddress, parseStreamAddress } from "../link/qemu-stream.js";
import { UnixDgramChannel } from "../link/unix-dgram.js";
import { openVfkit } from "../link/vfkit.js";
import { TapChannel, type TapOpenOptions } from "../link/tap.js";
import type { StackConfig } from "../stack/config.js";
import { attachSwitch } from "../stack/switched.js";
import type { EthernetSwitch } from "../ethernet/switch.js";
import { ForwardManager, type ForwardInfo } from "../forward/manager.js";
import { parsePublish, type ForwardSpec } from "../forward/spec.js";
import { SlirpApi, SlirpApiServer } from "../forward/slirp-api.js";
import { NetworkServices } from "./services.js";
import { resolveNetworkOptions, type NetworkOptions, type ResolvedNetworkOptions } from "./options.js";
import { NetworkCapture, type CaptureStatus } from "./capture.js";
import { formatLeases, startControl, type Control, type LeaseInfo } from "./control.js";
import { networkStats, networkStatsTree, type NetworkStats } from "./stats.js";
import type { Counters, StatsTree } from "../common/counters.js";
import { listenVmnet } from "./vmnet.js";

/** What went wrong after start, and where. */
export type WarningSource = "listener" | "forward" | "capture" | "vmnet" | "api";

/** A failure after start, delivered as a `warning` event (never thrown). */
export class NetworkWarning extends Error {
  constructor(
    readonly source: WarningSource,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = "NetworkWarning";
  }
}

/** One attached guest link. */
export interface GuestLink {
  /** "qemu-stream:/tmp/q.sock#1", "tap:tap0", "vfkit:/tmp/v.sock"... */
  readonly name: string;
  /** The link as the network sees it (behind the network's capture wrapper). */
  readonly channel: FrameChannel;
  /** Detach the guest and close its link. */
  close(): void;
}

/** A listener for guests (QEMU stream, vmnet). */
export interface GuestListener {
  /** "unix:PATH" or "tcp:HOST:PORT" (the port the system chose, for port 0). */
  readonly address: string;
  /** Stop listening and remove the socket file; attached guests stay. */
  close(): Promise<void>;
}

/** Host ports forwarded into guests by one `forward()` call. */
export interface Forward {
  /** One entry per port (a range gives several). */
  readonly forwards: ForwardInfo[];
  /** Stop listening on the host ports (connections already open finish). */
  close(): Promise<void>;
}

/** The control API server. */
export interface ApiHandle {
  readonly path: string;
  close(): Promise<void>;
}

export interface NetworkEvents {
  /** A guest's link was attached. */
  attached: [guest: GuestLink];
  /** A guest's link closed (`error` when it failed rather than ended). */
  detached: [guest: GuestLink, error?: Error];
  /** Something failed after start; the network goes on serving. */
  warning: [warning: NetworkWarning];
}

export class Network extends EventEmitter<NetworkEvents> {
  /** The gateway's services (stack, TCP layer, translators, DHCP, DNS): for embedders that need the parts. */
  readonly services: NetworkServices;
  /** The checked options, defaults filled in. */
  readonly options: ResolvedNetworkOptions;
  /** The capture of every guest link. */
  readonly capture = new NetworkCapture();
  private readonly sw: EthernetSwitch | undefined;
  private readonly forwardSet: ForwardManager;
  private readonly statsTree: StatsTree;
  private readonly log: Logger;
  private readonly links = new Set<GuestLink>();
  /** Listeners open, with the counters of those that keep some (vmnet's handshakes). */
  private readonly guestListeners = new Set<GuestListener & { counters?: Counters }>();
  private readonly apis = new Set<Control>();
  private closing: Promise<void> | undefined;

  /** Build the network (nothing listens yet); `createNetwork` is the usual way. Throws `NetworkOptionError`. */
  constructor(options: NetworkOptions = {}) {
    super();
    this.options = resolveNetworkOptions(options);
    this.log = this.options.log;
    this.services = new NetworkServices(this.options);
    this.sw = this.options.switch ? attachSwitch(this.services.stack) : undefined;
    this.forwardSet = new ForwardManager(this.services.stack, this.services.tcp, {
      log: this.log,
      onError: (err, spec) => this.warn("forward", `forward ${spec.proto} ${spec.hostAddr}:${spec.hostPort}: ${err.message}`),
    });
    this.capture.setErrorHandler((err, path) => this.warn("capture", `capture to ${path} stopped: ${err.message}`));
    this.statsTree = networkStatsTree(this.services, this.forwardSet, this.capture);
    if (this.sw !== undefined) this.statsTree.counters("switch", this.sw.counters);
    this.statsTree.value("listeners", () => [...this.guestListeners].map((l) => ({ address: l.address, ...l.counters?.snapshot() })));
  }

  /** Addresses and MTU of the network (gateway, host alias, subnet...). */
  get config(): StackConfig {
    return this.services.stack.config;
  }

  /** Attach any FrameChannel as a guest (a memory pair in tests, a link of your own). */
  attach(channel: FrameChannel): GuestLink {
    this.assertOpen();
    const wrapped = this.capture.wrap(channel);
    const link: GuestLink = { name: channel.name, channel: wrapped, close: () => wrapped.close() };
    this.links.add(link);
    if (this.sw) this.sw.addPort(wrapped);
    else this.services.stack.attach(wrapped);
    wrapped.once("closed", (err) => {
      this.links.delete(link);
      this.log.info({ channel: link.name, error: err?.message }, "guest detached");
      this.emit("detached", link, err);
    });
    this.log.info({ channel: link.name }, "guest attached");
    this.emit("attached", link);
    return link;
  }

  /**
   * Accept QEMU `-netdev stream` guests on `unix:PATH` or `tcp:HOST:PORT` (QEMU connects:
   * `-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH`). Each connection is a guest.
   */
  async listenQemuStream(address: string): Promise<GuestListener> {
    this.assertOpen();
    const a = parseStreamAddress(address);
    if (a.kind === "unix") checkSocketPath(a.path, "listenQemuStream");
    const l = await QemuStreamListener.listen(address, { mtu: this.options.mtu });
    l.on("channel", (ch) => this.attach(ch));
    l.on("error", (e) => this.warn("listener", `qemu stream listener ${formatStreamAddress(l.address)}: ${e.message}`));
    return this.track({ address: formatStreamAddress(l.address), close: () => l.close() });
  }

  /**
   * A QEMU `-netdev dgram` guest: skiff binds `path`; QEMU's own path is learned from its first
   * datagram (`-netdev dgram,id=n0,local.type=unix,local.path=QEMU_SIDE,remote.type=unix,remote.path=PATH`).
   */
  async openQemuDgram(path: string): Promise<GuestLink> {
    this.assertOpen();
    await prepareSocketPath(path, "openQemuDgram");
    return this.attach(UnixDgramChannel.open(`qemu-dgram:${path}`, { localPath: path }, { mtu: this.options.mtu }));
  }

  /** A vfkit / Apple Virtualization guest (`--device virtio-net,unixSocketPath=PATH`): skiff binds `path`. */
  async openVfkit(path: string): Promise<GuestLink> {
    this.assertOpen();
    await prepareSocketPath(path, "openVfkit");
    return this.attach(openVfkit(path, { mtu: this.options.mtu }));
  }

  /**
   * Accept VPNKit vmnet clients on the Unix socket `path` (hyperkit `virtio-vpnkit,path=PATH`,
   * RootlessKit `--net=vpnkit`): each VIF is a guest with a stable MAC and address per UUID.
   */
  async listenVmnet(path: string): Promise<GuestListener> {
    this.assertOpen();
    checkSocketPath(path, "listenVmnet");
    const l = await listenVmnet(this.services, path, this.options.mtu, (ch) => this.attach(ch), this.log, (reason, detail) =>
      this.warn("vmnet", `vmnet handshake refused: ${reason}`, detail),
    );
    l.on("error", (e) => this.warn("listener", `vmnet listener ${path}: ${e.message}`));
    return this.track({ address: `unix:${path}`, close: () => l.close(), counters: l.counters });
  }

  /**
   * A Linux TAP device as a guest link (root or CAP_NET_ADMIN; `netns` puts it in a namespace).
   * `offload` (default true) uses checksum and segmentation offload through a virtio-net header.
   */
  openTap(opts: TapOpenOptions): GuestLink {
    this.assertOpen();
    return this.attach(TapChannel.open({ mtu: this.options.mtu, ...opts, offload: opts.offload ?? true }));
  }

  /**
   * Forward host ports into a guest, docker `-p` syntax: `[hostAddr:]hostPort:[guestAddr:]guestPort[/udp]`
   * (IPv6 addresses in brackets), ranges `8000-8003:80-83`; the guest is `options.defaultGuest`
   * (default subnet + 3; `options.defaultGuest6` for TCP on an IPv6 host address, falling back
   * to IPv4) unless `guest` or the text names one. An array opens all or none. Rejects naming
   * the port that failed.
   */
  async forward(spec: string | string[] | ForwardSpec, guest?: string): Promise<Forward> {
    this.assertOpen();
    const specs: ForwardSpec[] = [];
    for (const s of typeof spec === "object" && !Array.isArray(spec) ? [spec] : [spec].flat()) {
      if (typeof s !== "string") {
        specs.push(s);
        continue;
      }
      const to = guest ?? this.options.defaultGuest;
      if (to === undefined) throw new Error(`forward ${s}: no guest address (give one; this network has no defaultGuest)`);
      const r = parsePublish(s, to, guest === undefined ? this.options.defaultGuest6 : undefined);
      if (typeof r === "string") throw new Error(`forward: ${r}`);
      specs.push(...r);
    }
    const opened = await this.forwardSet.add(specs);
    for (const f of opened) this.log.info(f, "forwarding");
    return {
      forwards: opened,
      close: async () => {
        for (const f of opened) await this.forwardSet.remove(f.id);
      },
    };
  }

  /** The forwards open now (opened with `forward()` or through the control API). */
  forwards(): ForwardInfo[] {
    return this.forwardSet.list();
  }

  /** The guests' addresses: DHCP bindings and static leases. */
  leases(): LeaseInfo[] {
    return formatLeases(this.services);
  }

  /** Answer `name` with `ip` from the network's DNS server (`host.internal` is built in). */
  addDnsRecord(name: string, ip: string): void {
    this.services.dns.records.add(name, ip);
  }

  /** Every counter, as a plain object (the control API's GET /stats without the API's own). */
  stats(): NetworkStats {
    return networkStats(this.statsTree);
  }

  /** Capture every guest link to the pcap file `path` (mode 0600; links are not followed). Throws when refused. */
  startCapture(path: string): void {
    this.assertOpen();
    this.capture.startFile(path);
  }

  stopCapture(): void {
    this.capture.stopCapture();
  }

  captureStatus(): CaptureStatus {
    return this.capture.status();
  }

  /**
   * Serve the control API (HTTP+JSON: forwards, leases, DNS records, stats, capture) on the Unix
   * socket `path`, mode 0600. Bounds from `options.apiLimits`.
   */
  async listenApi(path: string): Promise<ApiHandle> {
    this.assertOpen();
    checkSocketPath(path, "listenApi");
    const control = await startControl(this.services, {
      apiSocket: path,
      guestIp: this.options.defaultGuest,
      guestIp6: this.options.defaultGuest6,
      capture: this.capture,
      forwards: this.forwardSet,
      stats: this.statsTree,
      apiLimits: this.options.apiLimits,
      log: this.log,
    });
    control.api?.onError((e) => this.warn("api", `control API ${path}: ${e.message}`));
    this.apis.add(control);
    return {
      path,
      close: async () => {
        this.apis.delete(control);
        await control.close();
      },
    };
  }

  /**
   * Serve slirp4netns's API (`--api-socket`: add_hostfwd, list_hostfwd, remove_hostfwd, JSON
   * lines on a Unix socket) over this network's forwards, as RootlessKit and Podman expect of a
   * slirp4netns. Forwards without guest_addr go to `options.defaultGuest`.
   */
  async listenSlirpApi(path: string): Promise<ApiHandle> {
    this.assertOpen();
    const server = await SlirpApiServer.listen(path, new SlirpApi(this.forwardSet, this.options.defaultGuest ?? ""), this.log);
    const control: Control = { forwards: this.forwardSet, close: () => server.close() };
    this.apis.add(control);
    return {
      path,
      close: async () => {
        this.apis.delete(control);
        await control.close();
      },
    };
  }

  /** Stop everything: listeners, the API, forwards, guest links, the capture, every host socket and timer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of [...this.apis]) await c.close().catch(() => {});
      this.apis.clear();
      for (const l of [...this.guestListeners]) await l.close().catch(() => {});
      this.guestListeners.clear();
      this.forwardSet.closeAll();
      for (const link of [...this.links]) link.close();
      this.capture.stopCapture();
      this.services.close();
    })();
    return this.closing;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  private track(l: GuestListener & { counters?: Counters }): GuestListener {
    this.guestListeners.add(l);
    return {
      address: l.address,
      close: async () => {
        this.guestListeners.delete(l);
        await l.close();
      },
    };
  }

  private warn(source: WarningSource, message: string, detail?: string): void {
    this.log.warn({ source, detail }, message);
    this.emit("warning", new NetworkWarning(source, message, detail));
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new Error("the network is closed");
  }
}

/**
 * Build a network from `options` (all optional; the defaults are the `skiff` command's).
 * Throws `NetworkOptionError` naming a bad option before anything is opened.
 */
export async function createNetwork(options: NetworkOptions = {}): Promise<Network> {
  return new Network(options);
}
