/**
 * `skiff docker start | env | status | stop | logs | image build` (issue 16): dockerd in a skiff
 * VM, used from the host's docker CLI through `docker.sock` in the state directory. Arguments
 * to options only; the work is in src/desktop/.
 *
 * `skiff docker daemon` (hidden) is the background process `start` launches. Home and /tmp are
 * shared by default (src/desktop/shares.ts); `start` also makes a docker CLI context
 * (src/desktop/context.ts) that `stop` removes.
 */

import { Command, Option } from "commander";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { intArg, mtuArg, logLevelArg, DEFAULT_LOG_LEVEL, LOG_LEVEL_HELP } from "./args.js";
import { chooseAccel, hostAccelFacts } from "../vm/accel.js";
import { buildDockerImage, defaultDockerCacheDir, findDockerImage } from "../desktop/image.js";
import { runDaemon } from "../desktop/daemon.js";
import { dockerStatus, startDocker, stopDocker } from "../desktop/lifecycle.js";
import { defaultStateDir, ensureStateDir, statePaths } from "../desktop/state.js";
import { checkContextName, ensureContext, removeContexts } from "../desktop/context.js";
import { defaultSharesText, dockerShares } from "../desktop/shares.js";
import { DEFAULT_EVENT_PINS, parseVolumes, sharesAppend, type Volume } from "./vm.js";
import { DEFAULT_HOST_WATCH_DIRS } from "../share/host-watch.js";

const say = (s: string) => process.stderr.write(`skiff docker: ${s}\n`);

function envLine(sock: string): string {
  return `export DOCKER_HOST=unix://${sock}`;
}

/** The VM's options, shared by `start` and the daemon it launches (which gets them passed on). */
function vmOptions(c: Command): Command {
  return c
    .option("--cpus <n>", "virtual CPUs (default 2; 1 under TCG, where two vCPUs of a loaded host soft-lock the guest)", intArg(1, 64))
    .option("--memory <MiB>", "guest memory in MiB", intArg(256, 1 << 20), 2048)
    .option("--disk-size <MiB>", "size of the persistent disk when first created, MiB (sparse)", intArg(1024, 16 << 20), 65536)
    .option("--mtu <n>", "MTU of the guest link", mtuArg, 1500)
    .addOption(new Option("--accel <kind>", "accelerator (auto: KVM only when usable and not nested, else TCG)").choices(["auto", "kvm", "tcg", "hvf"]).default("auto"))
    .option("--shares <dirs>", "host directories shared at the same path in the VM, comma-separated, or none (default: your home and /tmp)", defaultSharesText())
    .option("-v, --volume <dir>", "share HOSTDIR[:ro] too, at the same path (9P over skiff's TCP), so `docker run -v HOSTDIR:…` works (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--watch-dirs <n>", "file events of the shares: directories the guest's agent pins per share (watches in containers below them see host changes)", intArg(1, 1 << 20), DEFAULT_EVENT_PINS)
    .option("--host-watch-dirs <n>", "file events of the shares: directories skiff watches with inotify on the host, per share", intArg(1, 1 << 24), DEFAULT_HOST_WATCH_DIRS);
}

/** The kernel command-line words for the shares: their mount list and the agent's pin bound (src/vm/init.ts MOUNT_SHARES). */
function dockerAppend(volumes: Volume[], watchDirs: number): string[] {
  return volumes.length === 0 ? [] : [...sharesAppend(volumes), `skiff.pins=${watchDirs}`];
}

/** `--shares` and `-v HOSTDIR[:ro]` → volumes mounted at the same path in the VM. */
export function dockerVolumes(sharesText: string, specs: string[], notes?: (s: string) => void): Volume[] {
  return parseVolumes(dockerShares(sharesText, specs, notes).map(({ dir, readOnly }) => `${dir}:${dir}${readOnly ? ":ro" : ""}`));
}

export function dockerCommand(program: Command, log: Logger, setStatus: (s: number) => void): void {
  const docker = program.command("docker").description("dockerd in a skiff VM, for the host's docker CLI");
  const stateOpt = () => new Option("--state-dir <dir>", "state directory (one instance per directory)").default(defaultStateDir());
  const cacheOpt = () => new Option("--cache <dir>", "image cache directory").default(defaultDockerCacheDir());

  vmOptions(docker
    .command("start")
    .description("boot the docker VM in the background; returns once dockerd answers")
    .addOption(stateOpt())
    .addOption(cacheOpt()))
    .option("--timeout <s>", "give up when dockerd has not answered after this many seconds", intArg(1, 3600), 300)
    .option("--log-level <level>", LOG_LEVEL_HELP, logLevelArg, "info")
    .option("--context <name>", "the docker CLI context start creates for this instance (stop removes it)", checkContextName, "skiff")
    .option("--no-context", "create no docker context (DOCKER_HOST only)")
    .action(async (o) => {
      const volumes = dockerVolumes(o.shares, o.volume, say); // usage errors before anything starts
      // Built in the foreground, so its progress lines reach the user.
      if (!findDockerImage(o.cache)) buildDockerImage({ cacheDir: o.cache, progress: say });
      const r = await startDocker({
        stateDir: o.stateDir,
        daemonCommand: [process.execPath, ...process.execArgv, process.argv[1]],
        daemonArgs: ["--cache", o.cache, ...(o.cpus === undefined ? [] : ["--cpus", String(o.cpus)]), "--memory", String(o.memory), "--disk-size", String(o.diskSize), "--mtu", String(o.mtu), "--accel", o.accel, "--log-level", o.logLevel, "--shares", o.shares, "--watch-dirs", String(o.watchDirs), "--host-watch-dirs", String(o.hostWatchDirs), ...o.volume.flatMap((v: string) => ["-v", v])],
        timeoutMs: o.timeout * 1000,
        progress: say,
      });
      if (r.kind === "running") say(`already running (pid ${r.pid})`);
      else {
        say(`dockerd answers (${(r.ms / 1000).toFixed(1)} s). Point the docker CLI at it with: eval "$(skiff docker env)"`);
        if (volumes.length > 0) say(`shared at the same paths: ${volumes.map((v) => v.guestDir + (v.share.readOnly ? " (read-only)" : "")).join(", ")}`);
      }
      if (o.context !== false) {
        try {
          say(ensureContext(r.paths, o.context));
        } catch (e) {
          say(`no docker context: ${(e as Error).message}`);
        }
      }
      process.stdout.write(envLine(r.paths.dockerSock) + "\n");
      setStatus(0);
    });

  docker
    .command("env")
    .description("print the shell line that points the docker CLI at skiff's dockerd")
    .addOption(stateOpt())
    .option("--context [name]", "create (or point again) a docker context and print `export DOCKER_CONTEXT=NAME` instead (default name skiff)")
    .action((o) => {
      const paths = statePaths(o.stateDir);
      if (o.context === undefined) process.stdout.write(envLine(paths.dockerSock) + "\n");
      else {
        const name = checkContextName(o.context === true ? "skiff" : o.context);
        say(ensureContext(ensureStateDir(o.stateDir), name));
        process.stdout.write(`export DOCKER_CONTEXT=${name}\n`);
      }
      setStatus(0);
    });

  docker
    .command("status")
    .description("whether the docker VM runs and dockerd answers (exit 0 running, 3 not running)")
    .addOption(stateOpt())
    .option("--json", "one JSON object")
    .action(async (o) => {
      const s = await dockerStatus(statePaths(o.stateDir));
      if (o.json) process.stdout.write(JSON.stringify(s) + "\n");
      else if (!s.running) process.stdout.write("not running\n");
      else process.stdout.write(`running (pid ${s.pid}, QEMU ${s.qemuPid}); dockerd ${s.answering ? "answers" : "does not answer"} on ${s.dockerSock}\n`);
      setStatus(s.running ? 0 : 3);
    });

  docker
    .command("stop")
    .description("power the docker VM off cleanly and remove its sockets (images, containers, volumes stay on its disk)")
    .addOption(stateOpt())
    .option("--timeout <s>", "kill it after this many seconds", intArg(1, 3600), 60)
    .action(async (o) => {
      const paths = statePaths(o.stateDir);
      const was = await stopDocker(paths, o.timeout * 1000);
      say(was ? "stopped" : "not running");
      for (const line of removeContexts(paths)) say(line);
      setStatus(0);
    });

  docker
    .command("logs")
    .description("print the VM's console (boot and dockerd's log) and the daemon's log")
    .addOption(stateOpt())
    .action((o) => {
      const p = statePaths(o.stateDir);
      for (const [name, file] of [["daemon", p.daemonLog], ["console", p.consoleLog]] as const) {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch {
          text = "(none)\n";
        }
        process.stdout.write(`==> ${name} (${file}) <==\n${text}${text.endsWith("\n") ? "" : "\n"}`);
      }
      setStatus(0);
    });

  docker
    .command("image")
    .description("the docker guest image")
    .command("build")
    .description("build the docker guest image from Debian packages (apt-get download) into the cache")
    .addOption(cacheOpt())
    .action((o) => {
      const img = buildDockerImage({ cacheDir: o.cache, progress: say });
      process.stdout.write(`${img.dir}\n`);
      setStatus(0);
    });

  vmOptions(docker
    .command("daemon", { hidden: true })
    .description("run the docker VM in the foreground (what `start` launches)")
    .addOption(stateOpt())
    .addOption(cacheOpt()))
    .option("--log-level <level>", LOG_LEVEL_HELP, logLevelArg, DEFAULT_LOG_LEVEL)
    .action(async (o) => {
      log.level = o.logLevel;
      const image = findDockerImage(o.cache) ?? buildDockerImage({ cacheDir: o.cache, progress: say });
      const { accel, reason } = chooseAccel(o.accel, hostAccelFacts());
      log.info({ accel, reason }, "accelerator");
      const volumes = dockerVolumes(o.shares, o.volume, (s) => log.info(s));
      setStatus(await runDaemon({ paths: ensureStateDir(o.stateDir), image, accel, shares: volumes.map((v) => v.share), extraAppend: dockerAppend(volumes, o.watchDirs), cpus: o.cpus ?? (accel === "tcg" ? 1 : 2), memoryMiB: o.memory, diskMiB: o.diskSize, mtu: o.mtu, hostWatchDirs: o.hostWatchDirs, log }));
    });
}
