/**
 * Starting a guest under QEMU (qemu-system-x86_64, Debian package `qemu-system-x86`), its
 * network attached to skiff over `-netdev stream` (QEMU connects to skiff's Unix socket) or
 * `-netdev dgram` (a pair of Unix datagram sockets), its serial console captured to a log.
 *
 * Readiness is the init's `SKIFF-READY <addr>` line; the exit status is parsed from its
 * `SKIFF-EXIT <status>` line. `stop()` asks QEMU to quit (SIGTERM) and kills it after a grace
 * period.
 *
 * A QEMU does not outlive the Node process that started it: if that process exits with the VM
 * still running (process.exit — mocha's `--exit`, a library user's exit — or an uncaught
 * exception), QEMU is killed (SIGKILL) from the process's synchronous 'exit' event; nothing
 * asynchronous can run there, and QEMU would otherwise keep running with its console's pipes
 * closed. (The QEMU of Debian 12, 7.2, has no `-run-with exit-with-parent=on`; a process killed
 * by a signal runs no 'exit' event: `skiff docker`'s stale-state cleanup kills the QEMU its
 * daemon left, src/desktop/state.ts.) The daemon of `skiff docker start` is the detached process;
 * its QEMU is its child and stops when it does.
 *
 * The console is always piped through skiff (markers parsed, copied to the log file), and can
 * be written to (`write`). With `terminal: true` it is also the user's terminal: output copied
 * to stdout, stdin (in raw mode when it is a TTY) copied to the guest, so Ctrl-C reaches the
 * guest and QEMU's `Ctrl-A x` quits.
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
  /**
   * TCG only: the size of QEMU's translated-code cache in MiB (`-accel tcg,tb-size=N`; QEMU's
   * default is 1 GiB on 64-bit hosts, and a long-running guest fills much of it, in RSS).
   */
  tcgCacheMiB?: number;
  /** Raw disk images on virtio-blk, in order (the guest's /dev/vda, /dev/vdb, …). */
  drives?: Array<{ path: string; readonly?: boolean }>;
  /**
   * More QEMU arguments, appended as given (bench/share.ts: QEMU's own `-virtfs` and `-netdev
   * user` as the baselines skiff's share is measured against). With `net` absent they may bring
   * their own network device.
   */
  extraArgs?: string[];
}

const READY_RE = new RegExp(`${READY_MARKER}(?: (\\S*))?`);
const EXIT_RE = new RegExp(`${EXIT_MARKER} (\\d+)`);

/** Kernel command line limit on x86 (COMMAND_LINE_SIZE). */
const CMDLINE_MAX = 2048;

/**
 * The kernel command line: the console (`ttyS0`, the first serial port; `hvc0` for a
 * virtio-console as under vfkit), quiet boot, no reboot on panic, and the command.
 */
export function kernelAppend(cfg: Pick<VmConfig, "command" | "extraAppend">, console = "ttyS0"): string {
  const parts = [`console=${console}`, "quiet", "loglevel=1", "panic=-1", ...(cfg.extraAppend ?? [])];
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
    "-accel", cfg.accel === "tcg" && cfg.tcgCacheMiB !== undefined ? `tcg,tb-size=${cfg.tcgCacheMiB}` : cfg.accel,
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
  for (const d of cfg.drives ?? []) {
    // A comma in a path would end QEMU's option value: it is escaped by doubling (QEMU's option syntax).
    args.push("-drive", `file=${d.path.replace(/,/g, ",,")},if=virtio,format=raw${d.readonly ? ",readonly=on" : ""}`);
  }
  if (cfg.net) {
    args.push("-netdev", netdevArg(cfg.net), "-device", `virtio-net-pci,netdev=n0,mac=${cfg.net.mac},romfile=`);
  } else if (!cfg.extraArgs?.includes("-netdev")) {
    args.push("-nic", "none");
  }
  return [...args, ...(cfg.extraArgs ?? [])];
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
  /** The console is also this process's terminal (stdout, and stdin in raw mode). */
  terminal?: boolean;
  binary?: string;
}

/** QEMUs started by this process and not yet exited: killed if the process exits first. */
const running = new Set<ChildProcess>();

function killRunning(): void {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone: nothing to do.
    }
  }
}

function track(child: ChildProcess): void {
  if (child.pid === undefined) return;
  if (running.size === 0) process.on("exit", killRunning);
  running.add(child);
  child.once("exit", () => {
    running.delete(child);
    if (running.size === 0) process.off("exit", killRunning);
  });
}

interface Waiter {
  re: RegExp;
  from: number;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
}

/** A running guest. */
export class Vm {
  readonly exited: Promise<VmResult>;
  /** Resolves with the guest's address (may be "") when init reports readiness. */
  readonly ready: Promise<string>;
  private consoleText = "";
  private status: number | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private waiters: Waiter[] = [];
  private exitError: Error | undefined;

  private constructor(
    private readonly child: ChildProcess,
    log: WriteStream | undefined,
    opts: VmStartOptions,
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
      if (opts.terminal) process.stdout.write(b);
      if (this.waiters.length > 0) this.checkWaiters();
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
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    // Writes after QEMU has gone fail with EPIPE: nothing to do about them.
    child.stdin!.on("error", () => {});
    const detachTerminal = opts.terminal ? attachTerminal(child) : () => {};
    this.exited = new Promise((resolve, reject) => {
      child.once("error", (e: NodeJS.ErrnoException) => {
        const err = e.code === "ENOENT" ? new QemuMissingError() : e;
        detachTerminal();
        this.failWaiters(err);
        rejectReady(err);
        reject(err);
      });
      child.once("close", (code, signal) => {
        clearTimeout(this.killTimer);
        detachTerminal();
        log?.end();
        const how = `code ${code}${signal ? `, ${signal}` : ""}`;
        this.failWaiters(new Error(`QEMU exited (${how})`));
        rejectReady(new Error(`QEMU exited before the guest was ready (${how})`));
        resolve({ status: this.status, qemuCode: code, qemuSignal: signal, console: this.consoleText });
      });
    });
  }

  static start(cfg: VmConfig, opts: VmStartOptions = {}): Vm {
    const child = spawn(opts.binary ?? QEMU_BINARY, qemuArgs(cfg), { stdio: ["pipe", "pipe", "pipe"] });
    track(child);
    const log = opts.logFile ? createWriteStream(opts.logFile) : undefined;
    return new Vm(child, log, opts);
  }

  get console(): string {
    return this.consoleText;
  }

  /** QEMU's process id (undefined when it could not be started). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Type into the serial console (as keystrokes: end a command with "\n"). */
  write(text: string): void {
    if (this.child.stdin?.writable) this.child.stdin.write(text);
  }

  /**
   * Resolves with the first match of `re` in the console text from offset `from` on (now or
   * later); rejects if QEMU exits first.
   */
  waitFor(re: RegExp, from = 0): Promise<RegExpExecArray> {
    const m = re.exec(this.consoleText.slice(from));
    if (m) return Promise.resolve(m);
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => this.waiters.push({ re, from, resolve, reject }));
  }

  private checkWaiters(): void {
    this.waiters = this.waiters.filter((w) => {
      const m = w.re.exec(this.consoleText.slice(w.from));
      if (m) w.resolve(m);
      return !m;
    });
  }

  private failWaiters(e: Error): void {
    this.exitError = e;
    for (const w of this.waiters) w.reject(e);
    this.waiters = [];
  }

  /**
   * SIGTERM (QEMU quits), SIGKILL after `graceMs`. Resolves when QEMU has exited (with
   * undefined if it never started).
   */
  stop(graceMs = 3000): Promise<VmResult | undefined> {
    if (this.child.pid === undefined) return this.exited.catch(() => undefined);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin?.end();
      this.child.kill("SIGTERM");
      this.killTimer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    }
    return this.exited;
  }
}

/**
 * Make the console this process's terminal: QEMU's output to stdout, stdin to QEMU (raw mode
 * on a TTY, restored by the returned function).
 */
function attachTerminal(child: ChildProcess): () => void {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  stdin.pipe(child.stdin!, { end: false });
  stdin.resume();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    stdin.unpipe(child.stdin!);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
}
