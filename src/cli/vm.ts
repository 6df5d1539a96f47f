/**
 * `skiff vm image build` and `skiff vm run`: boot a Linux guest under QEMU whose only network
 * is skiff — attached over `-netdev stream` (QEMU connects to a Unix socket skiff listens on)
 * or `-netdev dgram` (a pair of Unix datagram sockets) — run a command in it and exit with its
 * status, or give an interactive console.
 *
 * The guest's MAC has a static DHCP lease on the first guest address (192.168.65.3 by
 * default), so `-p` forwards know where to go before the guest boots, as with `skiff run`.
 * The guest link is always behind a capture wrapper: `--pcap FILE` records it from QEMU's
 * first frame (the DHCP exchange included), and the control API's `POST /capture` can start
 * one later.
 */

import { intArg, mtuArg, logLevelArg, checkOutputFile, DEFAULT_LOG_LEVEL, LOG_LEVEL_HELP } from "./args.js";
import { checkSocketPath } from "../common/socket-path.js";
import { Command, Option } from "commander";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { createNetwork } from "../network/network.js";
import { resolveNetworkOptions, type NetworkOptions } from "../network/options.js";
import { guestAddress6 } from "./run-ipv6.js";
import { parsePublishOptions } from "../network/control.js";
import { formatIpv4, parseMac } from "../common/addr.js";
import type { FrameChannel } from "../common/frame-channel.js";
import { QemuStreamListener } from "../link/qemu-stream.js";
import { openQemuDgram } from "../link/qemu-dgram.js";
import { buildImage, defaultCacheDir, findImage, VmSetupError, type GuestImage } from "../vm/image.js";
import { chooseAccel, hostAccelFacts, type AccelRequest } from "../vm/accel.js";
import { QemuMissingError, Vm, shellJoin, type VmNet } from "../vm/qemu.js";
import type { ShareSpec } from "../share/registry.js";

/**
 * `skiff vm run`'s link MTU. The stream and dgram channels carry plain frames (no offloads), so
 * every frame costs the guest, QEMU and skiff; at 1500 the TCG guest's download cost more CPU
 * per GB through skiff than through QEMU's libslirp (fixed at 1500), at 65520 less (issue 20).
 */
export const VM_DEFAULT_MTU = 65520;

/** A `-v HOSTDIR:GUESTDIR[:ro]` volume: its share (named v0, v1, … in order) and mount point. */
export interface Volume {
  share: ShareSpec;
  guestDir: string;
}

/** Parse `-v` values (usage errors throw with the value named). */
export function parseVolumes(specs: string[]): Volume[] {
  return specs.map((spec, i) => {
    let rest = spec;
    let readOnly = false;
    if (rest.endsWith(":ro")) (readOnly = true), (rest = rest.slice(0, -3));
    else if (rest.endsWith(":rw")) rest = rest.slice(0, -3);
    const colon = rest.lastIndexOf(":");
    const hostDir = rest.slice(0, colon);
    const guestDir = rest.slice(colon + 1);
    if (colon <= 0 || !guestDir.startsWith("/") || /\s/.test(guestDir) || guestDir.length > 200) {
      throw new Error(`-v "${spec}": expected HOSTDIR:GUESTDIR[:ro] with an absolute GUESTDIR without spaces`);
    }
    return { share: { name: `v${i}`, path: hostDir, readOnly }, guestDir };
  });
}

/** Directories the guest's file-event agent pins per share unless told (native/guest-agent.c). */
export const DEFAULT_EVENT_PINS = 1024;

/** The kernel command-line parameter the guest's init mounts shares from (src/vm/init.ts). */
export function sharesAppend(volumes: Volume[]): string[] {
  if (volumes.length === 0) return [];
  const lines = volumes.map((v) => `${v.share.name} ${v.guestDir} ${v.share.readOnly ? "ro" : "rw"}\n`).join("");
  return [`skiff.shares=${Buffer.from(lines, "utf8").toString("base64")}`];
}

export type VmNetKind = "stream" | "dgram";

export interface VmRunOptions {
  cpus: number;
  memoryMiB: number;
  mtu: number;
  accel: AccelRequest;
  cacheDir?: string;
  /** Command argv to run in the guest (joined with shell quoting); empty: interactive console. */
  command: string[];
  /** Copy the serial console here. */
  consoleLog?: string;
  /** How QEMU's network attaches to skiff (default stream). */
  net?: VmNetKind;
  /** Port forwards to the guest, `skiff run -p` syntax: `[hostAddr:]hostPort:guestPort[/udp]`. */
  publish?: string[];
  /** Capture the guest's link to this pcap file. */
  pcap?: string;
  /** Serve the control API (HTTP+JSON) on this Unix socket. */
  apiSocket?: string;
  /** Host directories to mount in the guest before the command: `HOSTDIR:GUESTDIR[:ro]` (`-v`). */
  volumes?: string[];
  /** Directories the guest's file-event agent pins per read-write volume (default 1024; src/vm/init.ts). */
  watchDirs?: number;
  /** Host directories served on the gateway (9P, TCP 564) without being mounted by the guest. */
  shares?: ShareSpec[];
  /** Where the command's output lines go (default: stdout). */
  output?: (line: string) => void;
  /** Called with the guest's address (CIDR) when it reports ready. */
  onReady?: (addr: string) => void;
  log: Logger;
}

/** The guest's MAC; its static lease is the network's first guest address. */
export const GUEST_MAC = "52:54:00:65:00:10";

/** The image in the cache, built first if missing (progress on stderr). */
export function ensureImage(cacheDir: string | undefined, progress: (s: string) => void): GuestImage {
  return findImage(cacheDir ?? defaultCacheDir()) ?? buildImage({ cacheDir, progress });
}

/** The guest's link: QEMU's `-netdev` side and skiff's channel (once QEMU has attached). */
interface GuestLink {
  vmNet: VmNet;
  channel: Promise<FrameChannel>;
  close(): Promise<void> | void;
}

async function openGuestLink(kind: VmNetKind, dir: string, mtu: number, log: Logger): Promise<GuestLink> {
  if (kind === "dgram") {
    const paths = { skiffPath: join(dir, "skiff.dgram"), qemuPath: join(dir, "qemu.dgram") };
    const ch = openQemuDgram(paths, { mtu });
    return { vmNet: { kind, ...paths, mac: GUEST_MAC }, channel: Promise.resolve(ch), close: () => ch.close() };
  }
  const path = join(dir, "net.sock");
  const listener = await QemuStreamListener.listen(`unix:${path}`, { mtu });
  let first: FrameChannel | undefined;
  const channel = new Promise<FrameChannel>((resolve) =>
    listener.on("channel", (ch) => {
      // Only QEMU's connection is the guest; anything else connecting to the socket is refused.
      if (first) return ch.close();
      first = ch;
      resolve(ch);
    }),
  );
  listener.on("error", (e) => log.warn({ err: e.message }, "guest socket"));
  return { vmNet: { kind, path, mac: GUEST_MAC }, channel, close: () => listener.close() };
}

export async function vmRun(opts: VmRunOptions): Promise<number> {
  const kind = opts.net ?? "stream";
  // Checked before anything is opened or booted.
  if (opts.pcap !== undefined) checkOutputFile(opts.pcap, "--pcap");
  if (opts.apiSocket !== undefined) checkSocketPath(opts.apiSocket, "--api-socket");
  const volumes = parseVolumes(opts.volumes ?? []);
  // One guest, straight on the gateway; its MAC has a static lease on the first guest address.
  // The image's kernel forms its IPv6 address by SLAAC from the MAC (EUI-64), so a TCP forward on
  // [::1] or [::] goes to that address (IPv4 when the guest refuses there), as with `skiff run`.
  const netOpts: NetworkOptions = {
    mtu: opts.mtu,
    log: opts.log,
    switch: false,
    staticLeases: [{ mac: GUEST_MAC, ip: "192.168.65.3" }],
    shares: [...(opts.shares ?? []), ...volumes.map((v) => v.share)],
  };
  const guestIp6 = guestAddress6(resolveNetworkOptions(netOpts).config, parseMac(GUEST_MAC)!);
  const net = await createNetwork({ ...netOpts, defaultGuest6: guestIp6 });
  const guestIp = formatIpv4((net.config.network + 3) >>> 0);
  let dir: string | undefined;
  let link: GuestLink | undefined;
  let vm: Vm | undefined;
  const onSignal = () => void vm?.stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    // Bad -p values are usage errors: reported before anything is built or booted.
    parsePublishOptions(opts.publish ?? [], guestIp, guestIp6);
    const image = ensureImage(opts.cacheDir, (s) => process.stderr.write(`skiff vm: ${s}\n`));
    const { accel, reason } = chooseAccel(opts.accel, hostAccelFacts());
    opts.log.info({ accel, reason, net: kind, guest: guestIp }, "starting the guest");
    dir = mkdtempSync(join(tmpdir(), "skiff-vm-"));
    link = await openGuestLink(kind, dir, opts.mtu, opts.log);
    const interactive = opts.command.length === 0;
    if (interactive && process.stdin.isTTY) process.stderr.write("skiff vm: the guest's console follows; Ctrl-A x stops the VM\n");
    const output = opts.output ?? ((l: string) => process.stdout.write(l + "\n"));
    let passThrough = false;
    vm = Vm.start(
      {
        kernel: image.kernel,
        initrd: image.initrd,
        accel,
        cpus: opts.cpus,
        memoryMiB: opts.memoryMiB,
        net: link.vmNet,
        command: interactive ? undefined : shellJoin(opts.command),
        interactive,
        extraAppend: [...sharesAppend(volumes), ...(volumes.length > 0 ? [`skiff.pins=${opts.watchDirs ?? DEFAULT_EVENT_PINS}`] : [])],
      },
      {
        logFile: opts.consoleLog,
        terminal: interactive,
        // The guest's console between the two markers is the command's output: pass it through.
        onLine: interactive
          ? undefined
          : (l) => {
              if (/SKIFF-(READY|EXIT)/.test(l)) passThrough = l.includes("SKIFF-READY");
              else if (passThrough) output(l);
            },
      },
    );
    const exited = vm.exited;
    // QEMU attaches its network as it starts (before the guest boots): the capture then sees
    // every frame, and forwards are open long before the guest can answer them.
    const qemuGone = exited.then((r) => {
      throw new Error(`QEMU exited before attaching its network (code ${r.qemuCode}): ${r.console.trim().split("\n").pop() ?? ""}`);
    });
    qemuGone.catch(() => {});
    const channel = await Promise.race([link.channel, qemuGone]);
    if (opts.pcap) net.startCapture(opts.pcap);
    net.attach(channel);
    if ((opts.publish ?? []).length > 0) await net.forward(opts.publish!);
    if (opts.apiSocket !== undefined) await net.listenApi(opts.apiSocket);
    vm.ready.then(
      (addr) => {
        if (!addr.startsWith(`${guestIp}/`)) opts.log.warn({ addr, expected: guestIp }, "the guest's address is not its static lease: forwards will not reach it");
        opts.onReady?.(addr);
      },
      () => {},
    );
    const r = await exited;
    if (interactive) return r.qemuCode ?? 1;
    if (r.status === undefined) {
      process.stderr.write(`skiff vm: the guest stopped without reporting the command's status (QEMU exit ${r.qemuCode ?? r.qemuSignal})\n`);
      return 1;
    }
    return r.status;
  } catch (e) {
    if (e instanceof QemuMissingError) throw new VmSetupError(e.message);
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await vm?.stop();
    await net.close();
    await link?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Register `skiff vm …` on the program. */
export function vmCommand(program: Command, log: Logger, setStatus: (s: number) => void): void {
  const vm = program.command("vm").description("Linux guests under QEMU whose network is skiff");
  const image = vm.command("image").description("the guest image (kernel + initramfs from Debian packages)");
  image
    .command("build")
    .description("build the guest image from Debian packages (apt-get download) into the cache")
    .option("--cache <dir>", "cache directory", defaultCacheDir())
    .action((o) => {
      const img = buildImage({ cacheDir: o.cache, progress: (s) => process.stderr.write(`skiff vm: ${s}\n`) });
      process.stdout.write(`${img.dir}\n`);
      setStatus(0);
    });
  vm.command("run")
    .description("boot a guest attached to a fresh skiff network; run CMD in it (exit with its status) or give a console")
    .option("--cpus <n>", "virtual CPUs", intArg(1, 64), 1)
    .option("--memory <MiB>", "guest memory in MiB", intArg(64, 65536), 256)
    .option("--mtu <n>", "MTU of the guest link (the guest takes it by DHCP option 26 and IPv6 RA)", mtuArg, VM_DEFAULT_MTU)
    .addOption(new Option("--accel <kind>", "accelerator (auto: KVM only when usable and not nested, else TCG)").choices(["auto", "kvm", "tcg", "hvf"]).default("auto"))
    .addOption(new Option("--net <kind>", "how QEMU attaches to skiff: -netdev stream or -netdev dgram").choices(["stream", "dgram"]).default("stream"))
    .option("-p, --publish <spec>", "forward [hostAddr:]hostPort:[guestAddr:]guestPort[/udp] from the host to the guest (repeatable; ranges N-M; IPv6 in brackets)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--pcap <file>", "capture the guest's link to a pcap file")
    .option("-v, --volume <spec>", "share HOSTDIR with the guest, mounted on GUESTDIR before CMD: HOSTDIR:GUESTDIR[:ro] (repeatable; 9P over skiff's TCP)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--watch-dirs <n>", "file events of -v shares: directories the guest's agent pins per share (watches below them see host changes)", intArg(1, 1 << 20), DEFAULT_EVENT_PINS)
    .option("--api-socket <path>", "serve the control API (HTTP+JSON) on this Unix socket")
    .option("--cache <dir>", "image cache directory", defaultCacheDir())
    .option("--console-log <file>", "copy the guest's serial console to FILE")
    .option("--log-level <level>", LOG_LEVEL_HELP, logLevelArg, DEFAULT_LOG_LEVEL)
    .argument("[command...]", "command to run in the guest (after --)")
    .action(async (command: string[], o) => {
      log.level = o.logLevel;
      setStatus(
        await vmRun({
          cpus: o.cpus,
          memoryMiB: o.memory,
          mtu: o.mtu,
          accel: o.accel,
          net: o.net,
          publish: o.publish,
          pcap: o.pcap,
          volumes: o.volume,
          watchDirs: o.watchDirs,
          apiSocket: o.apiSocket,
          cacheDir: o.cache,
          command,
          consoleLog: o.consoleLog,
          log,
        }),
      );
    });
}
