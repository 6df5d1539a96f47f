/**
 * Starting a guest under QEMU (qemu-system-x86_64, Debian package `qemu-system-x86`), its
 * network attached to skiff over `-netdev stream` (QEMU connects to skiff's Unix socket) or
 * `-netdev dgram` (a pair of Unix datagram sockets), its serial console captured to a log.
 *
 * Readiness is the init's `SKIFF-READY <addr>` line; the exit status is parsed from its
 * `SKIFF-EXIT <status>` line. `stop()` asks QEMU to quit (SIGTERM) and kills it after a grace
 * period.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { EXIT_MARKER, READY_MARKER } from "./init.js";
import type { Accel } from "./accel.js";
import { qemuDgramNetdev } from "../link/qemu-dgram.js";

export const QEMU_BINARY = "qemu-system-x86_64";
export const QEMU_PACKAGE = "qemu-system-x86";

export type VmNet =
  | { kind: "stream"; path: string; mac: string }
  | { kind: "dgram"; qemuPath: string; skiffPath: string; mac: string };

export interface VmConfig {
  kernel: string;
  initrd: string;
  accel: Accel;
  cpus: number;
  memoryMiB: number;
  net?: VmNet;
  /** Shell script run inside the guest (absent: an interactive shell). */
  command?: string;
  /** Serial on QEMU's stdio with the monitor multiplexed (interactive) or plain (captured). */
  interactive?: boolean;
  extraAppend?: string[];
}

const READY_RE = new RegExp(`${READY_MARKER}(?: (\\S*))?`);
const EXIT_RE = new RegExp(`${EXIT_MARKER} (\\d+)`);

/** Kernel command line limit on x86 (COMMAND_LINE_SIZE). */
const CMDLINE_MAX = 2048;

export function kernelAppend(cfg: Pick<VmConfig, "command" | "extraAppend">): string {
  const parts = ["console=ttyS0", "quiet", "loglevel=1", "panic=-1", ...(cfg.extraAppend ?? [])];
  if (cfg.command !== undefined) parts.push(`skiff.cmd=${Buffer.from(cfg.command, "utf8").toString("base64")}`);
  const s = parts.join(" ");
  if (s.length >= CMDLINE_MAX) throw new Error(`command too long for the kernel command line (${s.length} bytes, limit ${CMDLINE_MAX - 1})`);
  return s;
}

export function netdevArg(net: VmNet): string {
  return net.kind === "stream"
    ? `stream,id=n0,server=off,addr.type=unix,addr.path=${net.path}`
    : qemuDgramNetdev("n0", net);
}

/** The qemu-system-x86_64 argv (without the binary). */
export function qemuArgs(cfg: VmConfig): string[] {
  const args = [
    "-machine", "q35",
    "-accel", cfg.accel,
    ...(cfg.accel === "kvm" ? ["-cpu", "host"] : []),
    "-m", String(cfg.memoryMiB),
    "-smp", String(cfg.cpus),
    "-kernel", cfg.kernel,
    "-initrd", cfg.initrd,
    "-append", kernelAppend(cfg),
    "-nographic", "-no-reboot", "-nodefaults",
    "-serial", cfg.interactive ? "mon:stdio" : "stdio",
    ...(cfg.interactive ? [] : ["-monitor", "none"]),
  ];
  if (cfg.net) {
    args.push("-netdev", netdevArg(cfg.net), "-device", `virtio-net-pci,netdev=n0,mac=${cfg.net.mac},romfile=`);
  } else {
    args.push("-nic", "none");
  }
  return args;
}

/** Shell-quote argv into one command line for the guest's `sh`. */
export function shellJoin(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_\-./:=@%+,]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

export interface VmResult {
  /** The command's exit status from the marker, or undefined if the guest never printed it. */
  status: number | undefined;
  /** QEMU's own exit code / signal. */
  qemuCode: number | null;
  qemuSignal: NodeJS.Signals | null;
  /** The whole serial console output. */
  console: string;
}

export class QemuMissingError extends Error {
  constructor() {
    super(`${QEMU_BINARY} not found: install the Debian package ${QEMU_PACKAGE} (apt-get install ${QEMU_PACKAGE})`);
  }
}

export interface VmStartOptions {
  /** Copy of the serial console (besides the returned text). */
  logFile?: string;
  /** Called with each console line (without CR/LF). */
  onLine?: (line: string) => void;
  binary?: string;
}

/** A running guest. */
export class Vm {
  readonly exited: Promise<VmResult>;
  /** Resolves with the guest's address (may be "") when init reports readiness. */
  readonly ready: Promise<string>;
  private consoleText = "";
  private status: number | undefined;
  private killTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly child: ChildProcess,
    log: WriteStream | undefined,
    opts: VmStartOptions,
    interactive: boolean,
  ) {
    let resolveReady!: (a: string) => void;
    let rejectReady!: (e: Error) => void;
    this.ready = new Promise((res, rej) => ((resolveReady = res), (rejectReady = rej)));
    this.ready.catch(() => {});
    let partial = "";
    const onData = (b: Buffer) => {
      const s = b.toString("utf8");
      this.consoleText += s;
      log?.write(b);
      partial += s;
      let i: number;
      while ((i = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, i).replace(/\r$/, "");
        partial = partial.slice(i + 1);
        // Markers are matched anywhere in a line: the firmware's terminal resets can precede them.
        const r = READY_RE.exec(line);
        if (r) resolveReady(r[1] ?? "");
        const x = EXIT_RE.exec(line);
        if (x) this.status = Number(x[1]);
        opts.onLine?.(line);
      }
    };
    if (!interactive) {
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
    }
    this.exited = new Promise((resolve, reject) => {
      child.once("error", (e: NodeJS.ErrnoException) => {
        const err = e.code === "ENOENT" ? new QemuMissingError() : e;
        rejectReady(err);
        reject(err);
      });
      child.once("close", (code, signal) => {
        clearTimeout(this.killTimer);
        log?.end();
        rejectReady(new Error(`QEMU exited before the guest was ready (code ${code}${signal ? `, ${signal}` : ""})`));
        resolve({ status: this.status, qemuCode: code, qemuSignal: signal, console: this.consoleText });
      });
    });
  }

  static start(cfg: VmConfig, opts: VmStartOptions = {}): Vm {
    const child = spawn(opts.binary ?? QEMU_BINARY, qemuArgs(cfg), { stdio: cfg.interactive ? "inherit" : ["ignore", "pipe", "pipe"] });
    const log = opts.logFile ? createWriteStream(opts.logFile) : undefined;
    return new Vm(child, log, opts, !!cfg.interactive);
  }

  get console(): string {
    return this.consoleText;
  }

  /**
   * SIGTERM (QEMU quits), SIGKILL after `graceMs`. Resolves when QEMU has exited (with
   * undefined if it never started).
   */
  stop(graceMs = 3000): Promise<VmResult | undefined> {
    if (this.child.pid === undefined) return this.exited.catch(() => undefined);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      this.killTimer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    }
    return this.exited;
  }
}
