// Side-by-side benchmark of host-directory sharing (issue 15, "Measured, side by side"): skiff's 9P
// share against QEMU's own virtio-9p and against diod reached over QEMU's user network, one run,
// the same guest kernel under TCG (test/support/share-backends.ts boots one guest per backend).
// Rows: sequential write and read of 64 MiB (MiB/s), create+stat+unlink of 2,000 small files
// (files/s), stat latency (µs), extracting a real source tree (skiff's own `git archive HEAD`,
// about 440 entries) with tar and `find` over it (s). Prints a markdown table with the ratios
// against diod and virtio-9p and whether the issue's goals are met (≥2× diod on every row, at
// least level with virtio-9p on the metadata rows); writes bench/results/share.json.
//
// Run as root: `npm run bench -- --steps share` (or `tsx bench/share.ts [--rounds N] [--mtu M]`).
// The in-guest timings come from test/guest/fsbench.c (so that a shell's fork per file is not
// what is measured) and /proc/uptime around tar and find.

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { buildImage, defaultCacheDir } from "../src/vm/image.js";
import { pinnedImageCache } from "../test/support/qemu.js";
import { backendMissing, compileGuestProgram, compilerMissing, runOnBackend, SHARE_BACKENDS, type ShareBackend } from "../test/support/share-backends.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

interface Row {
  key: string;
  label: string;
  unit: string;
  /** Higher is better (MiB/s, files/s) or lower (µs, s). */
  higher: boolean;
  /** A metadata row: the goal against virtio-9p applies. */
  metadata: boolean;
}

export const SHARE_ROWS: Row[] = [
  { key: "WRITE_MIBS", label: "sequential write 64 MiB", unit: "MiB/s", higher: true, metadata: false },
  { key: "READ_MIBS", label: "sequential read 64 MiB", unit: "MiB/s", higher: true, metadata: false },
  { key: "SMALL_FILES_PER_S", label: "create+stat+unlink, 2,000 small files", unit: "files/s", higher: true, metadata: true },
  { key: "STAT_US", label: "stat latency", unit: "µs", higher: false, metadata: true },
  { key: "TAR_S", label: "tar -x of skiff's source tree", unit: "s", higher: false, metadata: true },
  { key: "FIND_S", label: "find over the extracted tree", unit: "s", higher: false, metadata: true },
];

const SCRIPT = `set -e
cp /mnt/.bin/fsbench /tmp/ && chmod +x /tmp/fsbench
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
grep ' /mnt ' /proc/mounts | sed 's/^/MOUNT=/'
/tmp/fsbench write /mnt/w.bin 64
rm /mnt/w.bin
/tmp/fsbench read /mnt/r.bin
mkdir /mnt/small
/tmp/fsbench small /mnt/small 2000
/tmp/fsbench stat /mnt/r.bin 2000
cp /mnt/tree.tar /tmp/tree.tar
mkdir /mnt/tree
t0=$(ms); tar -x -f /tmp/tree.tar -C /mnt/tree; t1=$(ms)
echo TAR_S=$(( t1 - t0 ))e-3
t0=$(ms); n=$(find /mnt/tree | wc -l); t1=$(ms)
echo FIND_S=$(( t1 - t0 ))e-3
echo FIND_ENTRIES=$n
`;

export interface ShareBenchOptions {
  rounds: number;
  mtu: number;
  log: (s: string) => void;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs the share bench; prints the table; returns 0, or 1 when skiff itself could not be measured. */
export async function runShareBench(o: ShareBenchOptions): Promise<number> {
  const noCc = compilerMissing();
  if (noCc) {
    o.log(`share bench skipped: ${noCc}`);
    return 1;
  }
  const image = buildImage({ cacheDir: process.env.SKIFF_VM_CACHE ?? defaultCacheDir(), progress: (s) => o.log(`guest image: ${s}`) });
  const cacheDir = pinnedImageCache(image);
  const tmp = mkdtempSync("/tmp/skb-share-");
  const samples: Partial<Record<ShareBackend, Record<string, number[]>>> = {};
  const notes: string[] = [];
  try {
    const bin = join(tmp, "bin");
    mkdirSync(bin);
    compileGuestProgram("fsbench", bin);
    const tar = join(tmp, "tree.tar");
    execFileSync("sh", ["-c", `git -C '${repo}' archive --format=tar HEAD > '${tar}'`]);
    const big = randomBytes(64 << 20);
    for (let round = 1; round <= o.rounds; round++) {
      for (const backend of SHARE_BACKENDS) {
        const missing = backendMissing(backend);
        if (missing) {
          if (round === 1) notes.push(`${backend} not measured: ${missing}`);
          continue;
        }
        const dir = join(tmp, `${backend}-${round}`);
        mkdirSync(join(dir, ".bin"), { recursive: true });
        copyFileSync(join(bin, "fsbench"), join(dir, ".bin", "fsbench"));
        copyFileSync(tar, join(dir, "tree.tar"));
        writeFileSync(join(dir, "r.bin"), big);
        const t0 = Date.now();
        const r = await runOnBackend({ backend, dir, image, cacheDir, mtu: o.mtu, memoryMiB: 512, script: SCRIPT, consoleLog: join(tmp, `${backend}-${round}.console.log`) });
        const got: Record<string, number> = {};
        for (const l of r.lines) {
          const m = /^([A-Z_]+)=(\S+)$/.exec(l);
          if (m && SHARE_ROWS.some((x) => x.key === m[1])) got[m[1]] = Number(m[2]);
        }
        const mount = r.lines.find((l) => l.startsWith("MOUNT="));
        if (round === 1 && mount) notes.push(`${backend}: ${mount.slice(6)}`);
        o.log(`[round ${round}/${o.rounds} ${backend}] ${Object.entries(got).map(([k, v]) => `${k}=${v}`).join(" ")} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
        if (r.status !== 0 || Object.keys(got).length < SHARE_ROWS.length) {
          notes.push(`round ${round} ${backend}: the guest's script failed (status ${r.status}): ${r.lines.slice(-5).join(" | ")}`);
        }
        for (const [k, v] of Object.entries(got)) ((samples[backend] ??= {})[k] ??= []).push(v);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    if (!process.env.SKB_KEEP) rmSync(tmp, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
  const value = (b: ShareBackend, k: string): number | undefined => {
    const xs = samples[b]?.[k];
    return xs && xs.length ? median(xs) : undefined;
  };
  /** How many times better skiff is than `peer` on a row (>1: skiff better). */
  const speedup = (row: Row, peer: ShareBackend): number | undefined => {
    const s = value("skiff", row.key);
    const p = value(peer, row.key);
    if (s === undefined || p === undefined || s <= 0 || p <= 0) return undefined;
    return row.higher ? s / p : p / s;
  };
  const fmt = (v: number | undefined) => (v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  // Rounded down: a 1.996× must not print as the 2.00× of a goal it misses.
  const ratio = (v: number | undefined) => (v === undefined ? "–" : `${(Math.floor(v * 100) / 100).toFixed(2)}×`);
  const lines = [
    `| | skiff | virtio-9p | diod (user net) | skiff vs diod | skiff vs virtio-9p | goal |`,
    `|---|---|---|---|---|---|---|`,
  ];
  const goals: string[] = [];
  for (const row of SHARE_ROWS) {
    const vd = speedup(row, "diod");
    const vv = speedup(row, "virtio-9p");
    const want = [`≥2× diod: ${vd === undefined ? "not measured" : vd >= 2 ? "met" : "not met"}`];
    if (row.metadata) want.push(`≥1× virtio-9p: ${vv === undefined ? "not measured" : vv >= 1 ? "met" : "not met"}`);
    goals.push(`- ${row.label}: ${want.join("; ")}`);
    lines.push(`| ${row.label} (${row.unit} ${row.higher ? "↑" : "↓"}) | ${fmt(value("skiff", row.key))} | ${fmt(value("virtio-9p", row.key))} | ${fmt(value("diod", row.key))} | ${ratio(vd)} | ${ratio(vv)} | ${want.join(", ")} |`);
  }
  const out = [
    `Host-directory sharing, medians of ${o.rounds} round(s), QEMU TCG guest (1 vCPU, 512 MiB), ${cpus().length} host CPUs, kernel ${release()}; skiff's link MTU ${o.mtu}`,
    "",
    ...lines,
    "",
    "Ratios are how many times better skiff is (for ↓ rows: the peer's time over skiff's). All three mount version=9p2000.L with msize=1 MiB asked (each transport clamps it) and the default cache mode.",
    "",
    "Goals (issue 15):",
    ...goals,
    ...(notes.length ? ["", "Notes:", ...notes.map((n) => `- ${n}`)] : []),
  ];
  console.log(out.join("\n"));
  const results = join(repo, "bench", "results");
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, "share.json"), `${JSON.stringify({ generatedAt: new Date().toISOString(), rounds: o.rounds, mtu: o.mtu, samples, notes, table: lines.join("\n") }, null, 2)}\n`);
  o.log(`wrote ${join(results, "share.json")}`);
  return samples.skiff ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  runShareBench({ rounds: Number(flag("--rounds") ?? 1), mtu: Number(flag("--mtu") ?? 65520), log: (s) => process.stderr.write(`${s}\n`) })
    .then((code) => process.exit(code))
    .catch((e: Error) => {
      process.stderr.write(`share bench failed: ${e.stack ?? e.message}\n`);
      process.exit(1);
    });
}
