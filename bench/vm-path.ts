// The VM path side by side (issue 20): one QEMU TCG guest (skiff's guest image, same kernel and busybox), its network either skiff (`skiff serve --qemu-stream`, QEMU `-netdev stream`) or QEMU's own user networking (`-netdev user`, libslirp); bulk both ways and CPU per GB.
//
// Run as root or not (no namespaces): `npx tsx bench/vm-path.ts [--mb N] [--rounds N] [--mtu N]
// [--skiff NAME=DIR]... [--skiff-args NAME=ARGS]... [--no-user] [--up-only|--down-only] [--top]`. Each `--skiff` adds a skiff build
// (DIR holds bin/skiff.js and its dist/, e.g. a copy of main's) as a column of its own, to
// compare builds in the same run (two names may share a DIR with different `--skiff-args`, e.g.
// "--busy-poll 0"); without it, the build of this checkout is the one column.
// The guest downloads N MB from a host HTTP server with busybox wget (timed on the host from the
// request to a marker connection the guest makes once wget is done) and uploads N MB of zeros
// with busybox nc (timed from accept to the last byte); for each transfer the
// CPU (utime+stime) of skiff's process and of QEMU's threads is read from /proc: QEMU's main
// loop thread (where the netdev backend and libslirp run, and the virtio-net device's I/O) apart
// from its TCG vCPU thread (the guest itself). Rounds alternate the two networks; medians.
// Also per transfer: for skiff's main thread, QEMU's main loop and the vCPU, the share of the
// transfer each spent on a CPU and runnable but waiting for one (/proc/…/schedstat); the CPU
// of the whole chain (this process's servers + skiff + QEMU) per GB and in cores; how busy the
// machine was. On a shared machine the scheduler gives one session's processes (autogroup) about
// a fair share of the CPUs: when the chain's cores stay level across networks, throughput is
// that share over the chain's CPU per GB (issue 20). `--top` logs the ten busiest threads of the
// machine during each transfer.

import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from "node:net";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findImage } from "../src/vm/image.js";
import { qemuArgs, QEMU_BINARY } from "../src/vm/qemu.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MB = flag("--mb", 100);
const ROUNDS = flag("--rounds", 3);
const MTU = flag("--mtu", 1500);
const BYTES = MB * 1_000_000;
/** skiff builds to compare: name → directory with bin/skiff.js. */
const builds = new Map<string, string>();
for (let i = 0; i < args.length; i++) {
  if (args[i] !== "--skiff") continue;
  const [name, dir] = args[i + 1].split("=");
  builds.set(name, dir);
}
/** Extra `skiff serve` arguments per build: `--skiff-args NAME="--busy-poll 0"`. */
const extraArgs = new Map<string, string[]>();
for (let i = 0; i < args.length; i++) {
  if (args[i] !== "--skiff-args") continue;
  const at = args[i + 1].indexOf("=");
  extraArgs.set(args[i + 1].slice(0, at), args[i + 1].slice(at + 1).split(" ").filter(Boolean));
}
if (builds.size === 0) builds.set("skiff", repo);
const WITH_USER = !args.includes("--no-user");
const DOWN = !args.includes("--up-only");
const UP = !args.includes("--down-only");
const HZ = 100; // USER_HZ on Linux
const log = (s: string) => process.stderr.write(`${s}\n`);

/** utime+stime (s) of a process, or of one of its threads. */
/** A process's or thread's name and CPU (utime+stime, s) from its stat file. */
function statOf(pid: number, tid?: number): { comm: string; cpu: number } {
  const s = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return { comm: s.slice(s.indexOf("(") + 1, s.lastIndexOf(")")), cpu: (Number(f[11]) + Number(f[12])) / HZ };
}

function cpuOf(pid: number, tid?: number): number {
  return statOf(pid, tid).cpu;
}

/** A QEMU vCPU thread ("CPU 0/TCG"). */
function isVcpu(pid: number, tid: number): boolean {
  return /^CPU \d+\//.test(readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8"));
}

/** QEMU's threads: the main loop (tid = pid) and the vCPU threads ("CPU 0/TCG"). */
function qemuCpu(pid: number): { main: number; vcpu: number; other: number } {
  let vcpu = 0;
  let other = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const tid = Number(t);
    if (tid === pid) continue;
    if (isVcpu(pid, tid)) vcpu += cpuOf(pid, tid);
    else other += cpuOf(pid, tid);
  }
  return { main: cpuOf(pid, pid), vcpu, other };
}

interface Sample {
  t: number;
  skiff: number;
  qemuMain: number;
  qemuVcpu: number;
  qemuOther: number;
  /** Whole machine (/proc/stat, s summed over CPUs): busy and idle. */
  machine: { busy: number; idle: number };
  /** This process (the host end of the transfers: HTTP server, sink). */
  bench: number;
  /** With --top: CPU (s) of every thread on the machine, by "pid/tid comm". */
  threads?: Map<string, number>;
  /** Scheduler time (s) of the threads that carry the data: on a CPU, and runnable but waiting for one. */
  sched: Record<Thread, { run: number; wait: number }>;
}

/** The threads the data crosses: skiff's main (JS) thread, QEMU's main loop, QEMU's vCPU. */
type Thread = "skiff" | "qemu_main" | "qemu_vcpu";
const THREADS: Thread[] = ["skiff", "qemu_main", "qemu_vcpu"];

/** /proc/PID/task/TID/schedstat: ns on a CPU, ns runnable on a run queue (0s if gone). */
function schedOf(pid: number | undefined, tid: number | undefined): { run: number; wait: number } {
  if (pid === undefined || tid === undefined) return { run: 0, wait: 0 };
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
    return { run: run / 1e9, wait: wait / 1e9 };
  } catch {
    return { run: 0, wait: 0 };
  }
}

function machineCpu(): { busy: number; idle: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  return { busy: (f.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / HZ, idle: idle / HZ };
}

const TOP = args.includes("--top");
function allThreads(): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const { comm, cpu } = statOf(Number(p), Number(t));
        m.set(`${p}/${t} ${comm}`, cpu);
      } catch {
        /* gone */
      }
    }
  }
  return m;
}

function vcpuTid(pid: number): number | undefined {
  for (const t of readdirSync(`/proc/${pid}/task`)) if (isVcpu(pid, Number(t))) return Number(t);
  return undefined;
}

interface Probe {
  qemu?: number;
  skiff?: number;
}

function sample(p: Probe): Sample {
  const q = p.qemu !== undefined ? qemuCpu(p.qemu) : { main: 0, vcpu: 0, other: 0 };
  const sched = {
    skiff: schedOf(p.skiff, p.skiff),
    qemu_main: schedOf(p.qemu, p.qemu),
    qemu_vcpu: schedOf(p.qemu, p.qemu !== undefined ? vcpuTid(p.qemu) : undefined),
  };
  return { t: performance.now(), skiff: p.skiff !== undefined ? cpuOf(p.skiff) : 0, qemuMain: q.main, qemuVcpu: q.vcpu, qemuOther: q.other, sched, machine: machineCpu(), bench: cpuOf(process.pid), threads: TOP ? allThreads() : undefined };
}

interface Transfer {
  dir: "down" | "up";
  bytes: number;
  a: Sample;
  b: Sample;
}

/** Host servers on 127.0.0.1: HTTP GET /N sends N bytes (download); a TCP sink counts until EOF (upload). */
async function servers(probe: Probe, done: Transfer[]): Promise<{ http: Server; sink: TcpServer; httpPort: number; sinkPort: number }> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let pendingDown: { total: number; a: Sample } | undefined;
  const http = createServer((req, res) => {
    const total = Number(req.url?.slice(1));
    const a = sample(probe);
    res.writeHead(200, { "content-length": String(total), "content-type": "application/octet-stream" });
    // Done when the guest says it has everything: its next connection to the sink, a marker
    // of a few bytes (the host socket closes earlier, once the network's buffers took the bytes).
    pendingDown = { total, a };
    let left = total;
    const more = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once("drain", more);
      }
      res.end();
    };
    more();
  });
  const sink = createTcpServer((sock) => {
    const a = sample(probe);
    let n = 0;
    sock.on("data", (d) => (n += d.length));
    sock.on("end", () => {
      if (n < 100 && pendingDown !== undefined) {
        done.push({ dir: "down", bytes: pendingDown.total, a: pendingDown.a, b: a });
        pendingDown = undefined;
      } else done.push({ dir: "up", bytes: n, a, b: sample(probe) });
      sock.end(`${n}\n`);
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  return { http, sink, httpPort: (http.address() as AddressInfo).port, sinkPort: (sink.address() as AddressInfo).port };
}

function waitExit(p: ChildProcess, ms: number, what: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`${what} did not finish in ${ms / 1000} s`));
    }, ms);
    p.once("exit", (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

async function waitFor(what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One boot: the guest downloads then uploads BYTES, `reps` times each; returns the transfers. */
async function boot(kind: string, reps: number, tmp: string): Promise<{ transfers: Transfer[]; console: string }> {
  const image = findImage();
  if (!image) throw new Error("no guest image: run `skiff vm image build` (or any `skiff vm run`) first");
  const probe: Probe = {};
  const transfers: Transfer[] = [];
  const srv = await servers(probe, transfers);
  const skiffDir = builds.get(kind);
  const host = skiffDir !== undefined ? "192.168.65.2" : "10.0.2.2";
  const count = Math.ceil(BYTES / 65536);
  const steps: string[] = [];
  for (let i = 0; i < reps; i++) {
    if (DOWN) {
      steps.push(`wget -q -O /dev/null http://${host}:${srv.httpPort}/${BYTES} || echo DOWN-FAILED`);
      steps.push(`echo done | nc ${host} ${srv.sinkPort} >/dev/null`);
    }
    if (UP) steps.push(`dd if=/dev/zero bs=65536 count=${count} 2>/dev/null | nc ${host} ${srv.sinkPort} >/dev/null || echo UP-FAILED`);
  }
  let skiffProc: ChildProcess | undefined;
  const sock = join(tmp, `${kind}.sock`);
  try {
    if (skiffDir !== undefined) {
      skiffProc = spawn(process.execPath, [join(skiffDir, "bin", "skiff.js"), "serve", "--qemu-stream", `unix:${sock}`, "--mtu", String(MTU), ...(extraArgs.get(kind) ?? [])], { stdio: ["ignore", "inherit", "inherit"] });
      probe.skiff = skiffProc.pid;
      await waitFor("skiff's stream socket", 20_000, () => {
        try {
          return readdirSync(tmp).includes(`${kind}.sock`);
        } catch {
          return false;
        }
      });
    }
    const qa = qemuArgs({
      kernel: image.kernel,
      initrd: image.initrd,
      accel: "tcg",
      cpus: 1,
      memoryMiB: 256,
      command: steps.join("\n"),
      tcgCacheMiB: 128,
      net: skiffDir !== undefined ? { kind: "stream", path: sock, mac: "52:54:00:12:34:56" } : undefined,
    });
    if (skiffDir === undefined) {
      const i = qa.indexOf("-nic");
      qa.splice(i, 2, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=");
    }
    // Thread names ("CPU 0/TCG") tell the vCPU threads from the main loop.
    qa.push("-name", `vm-path-${kind},debug-threads=on`);
    const qemu = spawn(QEMU_BINARY, qa, { stdio: ["ignore", "pipe", "pipe"] });
    probe.qemu = qemu.pid;
    let consoleText = "";
    qemu.stdout!.on("data", (b: Buffer) => (consoleText += b.toString()));
    qemu.stderr!.on("data", (b: Buffer) => (consoleText += b.toString()));
    await waitExit(qemu, 900_000, `the ${kind} guest`);
    return { transfers, console: consoleText };
  } finally {
    srv.http.close();
    srv.sink.close();
    if (skiffProc && skiffProc.exitCode === null) {
      skiffProc.kill("SIGTERM");
      await waitExit(skiffProc, 10_000, "skiff").catch(() => skiffProc!.kill("SIGKILL"));
    }
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "skiff-vmpath-"));
  const kinds = [...builds.keys(), ...(WITH_USER ? ["user"] : [])];
  const rows: Record<string, Record<string, number[]>> = Object.fromEntries(kinds.map((k) => [k, {}]));
  const add = (k: string, m: string, v: number) => ((rows[k][m] ??= []).push(v));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
        const t0 = Date.now();
        const { transfers, console: text } = await boot(kind, 1, tmp);
        if (/FAILED/.test(text) || transfers.length < Number(DOWN) + Number(UP)) log(`[${kind}] console: ${text.slice(-600)}`);
        for (const x of transfers) {
          const s = (x.b.t - x.a.t) / 1000;
          const gb = x.bytes / 1e9;
          add(kind, `${x.dir}_mbit`, (x.bytes * 8) / s / 1e6);
          add(kind, `${x.dir}_skiff_cpu_s_per_gb`, (x.b.skiff - x.a.skiff) / gb);
          add(kind, `${x.dir}_qemu_main_cpu_s_per_gb`, (x.b.qemuMain - x.a.qemuMain) / gb);
          add(kind, `${x.dir}_qemu_vcpu_cpu_s_per_gb`, (x.b.qemuVcpu - x.a.qemuVcpu) / gb);
          add(kind, `${x.dir}_qemu_other_cpu_s_per_gb`, (x.b.qemuOther - x.a.qemuOther) / gb);
          const busy: string[] = [];
          for (const th of THREADS) {
            const run = (x.b.sched[th].run - x.a.sched[th].run) / s;
            const wait = (x.b.sched[th].wait - x.a.sched[th].wait) / s;
            if (run === 0 && wait === 0) continue;
            add(kind, `${x.dir}_${th}_run_pct`, run * 100);
            add(kind, `${x.dir}_${th}_runqueue_wait_pct`, wait * 100);
            busy.push(`${th} ${(run * 100).toFixed(0)}% run ${(wait * 100).toFixed(0)}% wait`);
          }
          const mb = x.b.machine.busy - x.a.machine.busy;
          const mi = x.b.machine.idle - x.a.machine.idle;
          add(kind, `${x.dir}_machine_busy_pct`, (mb / (mb + mi)) * 100);
          const group = x.b.skiff - x.a.skiff + (x.b.qemuMain - x.a.qemuMain) + (x.b.qemuVcpu - x.a.qemuVcpu) + (x.b.qemuOther - x.a.qemuOther) + (x.b.bench - x.a.bench);
          add(kind, `${x.dir}_bench_cpu_s_per_gb`, (x.b.bench - x.a.bench) / gb);
          add(kind, `${x.dir}_all_cpu_s_per_gb`, group / gb);
          add(kind, `${x.dir}_all_cores`, group / s);
          log(`round ${r + 1} ${kind} ${x.dir}: bench+skiff+QEMU ${(group / gb).toFixed(2)} s/GB, ${(group / s).toFixed(2)} cores; machine ${((mb / (mb + mi)) * 100).toFixed(0)}% busy; ${busy.join(", ")}`);
          if (x.a.threads && x.b.threads) {
            const d = [...x.b.threads].map(([k, v]) => [k, v - (x.a.threads!.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
            d.sort((p, q) => q[1] - p[1]);
            log(`  top threads (% of one CPU): ${d.slice(0, 10).map(([k, v]) => `${k} ${((v / s) * 100).toFixed(0)}`).join("; ")}`);
          }
          log(`round ${r + 1} ${kind} ${x.dir}: ${x.bytes} bytes in ${s.toFixed(2)} s = ${((x.bytes * 8) / s / 1e6).toFixed(0)} Mbit/s; CPU s/GB skiff ${((x.b.skiff - x.a.skiff) / gb).toFixed(2)}, QEMU main ${((x.b.qemuMain - x.a.qemuMain) / gb).toFixed(2)}, vCPU ${((x.b.qemuVcpu - x.a.qemuVcpu) / gb).toFixed(2)}, other ${((x.b.qemuOther - x.a.qemuOther) / gb).toFixed(2)}`);
        }
        log(`round ${r + 1} ${kind}: boot + transfers ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const metrics = [...new Set(kinds.flatMap((k) => Object.keys(rows[k])))];
  const title = (k: string) => (k === "user" ? "QEMU -netdev user (libslirp)" : `${k} (-netdev stream)`);
  const out = [`VM path, TCG guest, MTU ${MTU}, ${MB} MB each way per round, medians of ${ROUNDS} round(s)`, "", `| metric | ${kinds.map(title).join(" | ")} |`, `|---|${kinds.map(() => "---:").join("|")}|`];
  for (const m of metrics) out.push(`| ${m} | ${kinds.map((k) => median(rows[k][m] ?? []).toFixed(2)).join(" | ")} |`);
  console.log(out.join("\n"));
}

main().catch((e: Error) => {
  log(`vm-path bench failed: ${e.stack ?? e.message}`);
  process.exit(1);
});
