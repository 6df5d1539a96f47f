/**
 * `skiff vm image build` and `skiff vm run`: boot a Linux guest under QEMU whose only network
 * is skiff (attached over `-netdev stream` to a Unix socket skiff listens on), run a command in
 * it and exit with its status — or give an interactive console.
 */

import { intArg } from "./args.js";
import { Command, Option } from "commander";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { Network } from "./network.js";
import { QemuStreamListener } from "../link/qemu-stream.js";
import { buildImage, defaultCacheDir, findImage, VmSetupError, type GuestImage } from "../vm/image.js";
import { chooseAccel, hostAccelFacts, type AccelRequest } from "../vm/accel.js";
import { QemuMissingError, Vm, shellJoin } from "../vm/qemu.js";

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
  log: Logger;
}

const GUEST_MAC = "52:54:00:65:00:10";

/** The image in the cache, built first if missing (progress on stderr). */
export function ensureImage(cacheDir: string | undefined, progress: (s: string) => void): GuestImage {
  return findImage(cacheDir ?? defaultCacheDir()) ?? buildImage({ cacheDir, progress });
}

export async function vmRun(opts: VmRunOptions): Promise<number> {
  const image = ensureImage(opts.cacheDir, (s) => process.stderr.write(`skiff vm: ${s}\n`));
  const { accel, reason } = chooseAccel(opts.accel, hostAccelFacts());
  opts.log.info({ accel, reason }, "accelerator");
  const net = new Network({ mtu: opts.mtu, log: opts.log });
  const dir = mkdtempSync(join(tmpdir(), "skiff-vm-"));
  const sock = join(dir, "net.sock");
  const listener = await QemuStreamListener.listen(`unix:${sock}`);
  listener.on("channel", (ch) => net.stack.attach(ch));
  const interactive = opts.command.length === 0;
  let vm: Vm | undefined;
  let passThrough = false;
  const onSignal = () => void vm?.stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    vm = Vm.start(
      {
        kernel: image.kernel,
        initrd: image.initrd,
        accel,
        cpus: opts.cpus,
        memoryMiB: opts.memoryMiB,
        net: { kind: "stream", path: sock, mac: GUEST_MAC },
        command: interactive ? undefined : shellJoin(opts.command),
        interactive,
      },
      // The guest's console between the two markers is the command's output: pass it through.
      { logFile: opts.consoleLog, onLine: (l) => {
        if (/SKIFF-(READY|EXIT)/.test(l)) passThrough = l.includes("SKIFF-READY");
        else if (passThrough) process.stdout.write(l + "\n");
      } },
    );
    const r = await vm.exited;
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
    await listener.close();
    net.close();
    rmSync(dir, { recursive: true, force: true });
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
    .option("--mtu <n>", "MTU of the guest link", intArg(576, 65520), 1500)
    .addOption(new Option("--accel <kind>", "accelerator (auto: KVM only when usable and not nested, else TCG)").choices(["auto", "kvm", "tcg", "hvf"]).default("auto"))
    .option("--cache <dir>", "image cache directory", defaultCacheDir())
    .option("--console-log <file>", "copy the guest's serial console to FILE")
    .option("--log-level <level>", "fatal, error, warn, info, debug or trace", "warn")
    .argument("[command...]", "command to run in the guest (after --)")
    .action(async (command: string[], o) => {
      log.level = o.logLevel;
      setStatus(await vmRun({ cpus: o.cpus, memoryMiB: o.memory, mtu: o.mtu, accel: o.accel, cacheDir: o.cache, command, consoleLog: o.consoleLog, log }));
    });
}
