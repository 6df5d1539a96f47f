/**
 * The background process of `skiff docker start`: one skiff network, one QEMU guest running
 * dockerd (src/desktop/image.ts), and the host ends of it — `docker.sock` forwarded to the
 * guest's dockerd port (src/forward/unix.ts) and the control API on `api.sock`, both 0600 in
 * the state directory (src/desktop/state.ts); published ports through the port service on the
 * gateway (src/forward/port-service.ts).
 *
 * It owns the state directory through the pid file (created exclusively; a stale one is
 * cleaned first), creates the persistent disk on first start, and runs until SIGTERM/SIGINT or
 * until the guest stops. Shutting down asks the guest to power off over its console (dockerd
 * stopped, disk synced and unmounted: src/desktop/init.ts) and waits for QEMU, killing it only
 * after `powerOffMs`; then it closes every socket and removes the pid file and socket files.
 */

import { closeSync, existsSync, rmSync } from "node:fs";
import type { Logger } from "pino";
import { formatIpv4, parseMac } from "../common/addr.js";
import type { FrameChannel } from "../common/frame-channel.js";
import { QemuStreamListener } from "../link/qemu-stream.js";
import { Vm } from "../vm/qemu.js";
import type { Accel } from "../vm/accel.js";
import type { ShareSpec } from "../share/registry.js";
import { Network, NeighborResolver, PortService, startControl, UnixForward, type Control } from "./network.js";
import { makeDataDisk } from "./disk.js";
import type { DockerImage } from "./image.js";
import { DOCKER_PORT, POWEROFF_COMMAND } from "./init.js";
import { cleanStale, openPrivate, runningDaemon, writePid, type StatePaths } from "./state.js";

/** The guest's MAC; its static lease is the network's first guest address (192.168.65.3). */
export const DOCKER_GUEST_MAC = "52:54:00:65:00:20";

/** TCG's code cache for the docker guest: QEMU's 1 GiB default shows up as ~450 MB of idle RSS. */
export const DEFAULT_TCG_CACHE_MIB = 128;

export interface DaemonOptions {
  paths: StatePaths;
  image: DockerImage;
  accel: Accel;
  cpus: number;
  memoryMiB: number;
  /** Size of the persistent disk when it is created (MiB). */
  diskMiB: number;
  mtu: number;
  /** TCG's translated-code cache, MiB (default DEFAULT_TCG_CACHE_MIB). */
  tcgCacheMiB?: number;
  /** Host directories served to the guest over 9P (src/share/). */
  shares?: ShareSpec[];
  /** Extra kernel command-line words (the shares' mount list: src/vm/init.ts MOUNT_SHARES). */
  extraAppend?: string[];
  /** Directories each share's host watcher watches (default DEFAULT_HOST_WATCH_DIRS). */
  hostWatchDirs?: number;
  /** How long the guest gets to power off cleanly before QEMU is killed (default 30 s). */
  powerOffMs?: number;
  log: Logger;
}

/** Take the state directory: the pid file, exclusively (a stale one is cleaned once). */
function claim(paths: StatePaths, log: Logger): void {
  for (let attempt = 0; ; attempt++) {
    try {
      writePid(paths, { pid: process.pid, qemuPid: 0 }, true);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw e;
      const running = runningDaemon(paths);
      if (running) throw new Error(`skiff docker is already running (pid ${running.pid}) for ${paths.dir}`);
      const what = cleanStale(paths);
      if (what) log.warn(what);
    }
  }
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const { paths, log } = opts;
  claim(paths, log);
  let net: Network | undefined;
  let listener: QemuStreamListener | undefined;
  let control: Control | undefined;
  let docker: UnixForward | undefined;
  let vm: Vm | undefined;
  let stopping: Promise<void> | undefined;
  const powerOff = async () => {
    if (!vm) return;
    vm.write(`\n${POWEROFF_COMMAND}\n`);
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), opts.powerOffMs ?? 30_000).unref());
    if ((await Promise.race([vm.exited.then(() => "done" as const, () => "done" as const), timer])) === "timeout") {
      log.warn("the guest did not power off in time: stopping QEMU");
      await vm.stop();
    }
  };
  const onSignal = () => {
    stopping ??= powerOff();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    if (!existsSync(paths.dataDisk)) {
      log.info({ path: paths.dataDisk, MiB: opts.diskMiB }, "creating the persistent disk");
      makeDataDisk(paths.dataDisk, opts.diskMiB);
    }
    net = new Network({ mtu: opts.mtu, log, shares: opts.shares, limits: { shareWatchDirs: opts.hostWatchDirs } });
    const guestIpNum = (net.stack.config.network + 3) >>> 0;
    const guestIp = formatIpv4(guestIpNum);
    net.setStaticLeases([{ mac: parseMac(DOCKER_GUEST_MAC)!, ip: guestIpNum }]);
    rmSync(paths.netSock, { force: true });
    listener = await QemuStreamListener.listen(`unix:${paths.netSock}`, { mtu: opts.mtu });
    listener.on("error", (e) => log.warn({ err: e.message }, "guest socket"));
    let first: FrameChannel | undefined;
    const channel = new Promise<FrameChannel>((resolve) =>
      listener!.on("channel", (ch) => {
        // Only QEMU's connection is the guest.
        if (first) return ch.close();
        first = ch;
        resolve(ch);
      }),
    );
    closeSync(openPrivate(paths.consoleLog));
    vm = Vm.start(
      {
        kernel: opts.image.kernel,
        initrd: opts.image.initrd,
        accel: opts.accel,
        cpus: opts.cpus,
        memoryMiB: opts.memoryMiB,
        net: { kind: "stream", path: paths.netSock, mac: DOCKER_GUEST_MAC },
        drives: [{ path: opts.image.system, readonly: true }, { path: paths.dataDisk }],
        tcgCacheMiB: opts.tcgCacheMiB ?? DEFAULT_TCG_CACHE_MIB,
        extraAppend: opts.extraAppend,
      },
      { logFile: paths.consoleLog },
    );
    writePid(paths, { pid: process.pid, qemuPid: vm.pid ?? 0 }, false);
    const exited = vm.exited;
    const gone = exited.then((r) => {
      throw new Error(`QEMU exited before attaching its network (code ${r.qemuCode}): ${r.console.trim().split("\n").pop() ?? ""}`);
    });
    gone.catch(() => {});
    net.stack.attach(await Promise.race([channel, gone]));
    control = await startControl(net, { apiSocket: paths.apiSock, guestIp, log });
    new PortService(net.tcp, control.forwards, guestIp, { log });
    docker = await UnixForward.listen(net.tcp, new NeighborResolver(net.stack), paths.dockerSock, guestIpNum, DOCKER_PORT, { label: "docker socket", log });
    log.info({ dockerSock: paths.dockerSock, guest: guestIp, qemuPid: vm.pid }, "started");
    const r = await exited;
    if (stopping) await stopping;
    log.info({ qemuCode: r.qemuCode, signal: r.qemuSignal }, "the guest stopped");
    return stopping ? 0 : 1;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    await vm?.stop();
    await docker?.destroy();
    await control?.close();
    await listener?.close();
    net?.close();
    for (const p of [paths.dockerSock, paths.apiSock, paths.netSock, paths.pid]) rmSync(p, { force: true });
  }
}
