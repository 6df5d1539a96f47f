// Rootless contenders of the peers benchmark (issue 17): `skiff run` as an ordinary user, and rootless Podman with skiff as its slirp4netns against rootless Podman with the real slirp4netns. They run the bulk (iperf3 both ways) and HTTP (wrk keep-alive) steps only; rootlessTable() puts the Podman pair side by side.

import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Contender, Context, Session } from "./contenders.js";
import { Bg, childPids, onCleanup, run, sh, shQuiet, shTry, waitFor } from "./proc.js";
import { formatRatio, formatValue, METRICS, ratio, type Summary } from "./report.js";

const USER = "skiff-bench";
/** The steps these contenders run (names from measures.ts): bulk both ways and HTTP keep-alive. */
export const ROOTLESS_STEPS = (name: string) => name.startsWith("iperf3 TCP") || name === "wrk -c1" || name === "wrk -c50";

interface BenchUser {
  uid: number;
  gid: number;
  dir: string;
}

let user: BenchUser | undefined;
let tunMode: number | undefined;

/** The benchmark's unprivileged user (with /etc/subuid ranges, as useradd gives), /dev/net/tun at Debian's 0666 (said on stderr, undone at the end). */
function benchUser(): BenchUser {
  if (user) return user;
  if (process.getuid?.() !== 0) throw new Error("needs root to create its user");
  if (shTry(["id", "-u", USER]) === "") sh(["useradd", "-m", "-s", "/bin/sh", USER]);
  if (!readFileSync("/etc/subuid", "utf8").split("\n").some((l) => l.startsWith(`${USER}:`))) throw new Error(`${USER} has no /etc/subuid range`);
  const mode = statSync("/dev/net/tun").mode & 0o777;
  if (mode !== 0o666 && tunMode === undefined) {
    tunMode = mode;
    process.stderr.write(`rootless contenders: chmod 0666 /dev/net/tun (was 0${mode.toString(8)}; Debian's default)\n`);
    chmodSync("/dev/net/tun", 0o666);
    onCleanup(() => tunMode !== undefined && chmodSync("/dev/net/tun", tunMode));
  }
  const dir = mkdtempSync("/tmp/skb-rl-");
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  user = { uid: Number(sh(["id", "-u", USER]).trim()), gid: Number(sh(["id", "-g", USER]).trim()), dir };
  sh(["chown", `${user.uid}:${user.gid}`, dir]);
  return user;
}

function asUser(u: BenchUser, argv: string[]): string[] {
  return ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", "--", ...argv];
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** `skiff run` as the benchmark user (user namespace of its own, TAP fd passed back). */
export function skiffUser(ctx: Context): Contender {
  return {
    key: "skiff-user",
    label: "skiff run as a user",
    tools: ["node", "setpriv", "nsenter", "newuidmap"],
    steps: ROOTLESS_STEPS,
    setup: () => void benchUser(),
    async start(mtu) {
      const u = benchUser();
      const env = ["env", `HOME=${u.dir}`, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"];
      const bg = new Bg(asUser(u, [...env, process.execPath, "bin/skiff.js", "run", "--mtu", String(mtu), "--", "sleep", "infinity"]), `${u.dir}/skiff-user-${mtu}.log`, ctx.repo);
      try {
        const sleeper = await waitFor("skiff run's command", 20_000, () => {
          if (!bg.alive) throw new Error(`skiff run exited during start (${bg.describe()})`);
          return childPids(bg.pid).find((p) => comm(p) === "sleep");
        });
        return { nsPath: `/proc/${sleeper}/ns/net`, hostIp: "192.168.65.2", pid: bg.pid, notes: [], alive: () => bg.alive, describe: () => bg.describe(), stop: () => bg.stop("SIGTERM", 10_000) };
      } catch (e) {
        await bg.stop();
        throw e;
      }
    },
  };
}

/** A busybox-static rootfs imported as localhost/skb-bb (no registry), under its own Podman config. */
async function podmanSetup(u: BenchUser, name: string, slirp: string, options: string[]): Promise<string[]> {
  const d = join(u.dir, name);
  const cfg = join(d, "c", "containers");
  for (const x of [cfg, join(d, "d"), join(d, "r"), join(d, "t"), join(d, "rootfs", "bin")]) mkdirSync(x, { recursive: true, mode: 0o700 });
  writeFileSync(join(cfg, "storage.conf"), `[storage]\ndriver = "vfs"\nrootless_storage_path = "${d}/s"\n`);
  const opts = options.length ? `network_cmd_options = [${options.map((o) => JSON.stringify(o)).join(", ")}]\n` : "";
  // runc: Debian 12's crun refuses hosts with cgroups in hybrid mode.
  writeFileSync(join(cfg, "containers.conf"), `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\nruntime = "runc"\nnetwork_cmd_path = "${slirp}"\n${opts}`);
  copyFileSync("/bin/busybox", join(d, "rootfs", "bin", "busybox"));
  chmodSync(join(d, "rootfs", "bin", "busybox"), 0o755);
  symlinkSync("busybox", join(d, "rootfs", "bin", "sleep"));
  sh(["tar", "-C", join(d, "rootfs"), "-cf", join(d, "bb.tar"), "."]);
  sh(["chown", "-R", `${u.uid}:${u.gid}`, d]);
  const env = ["env", `HOME=${d}`, `XDG_CONFIG_HOME=${d}/c`, `XDG_DATA_HOME=${d}/d`, `XDG_RUNTIME_DIR=${d}/r`, `TMPDIR=${d}/t`, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"];
  const podman = [...env, "podman"];
  const r = await run(asUser(u, [...podman, "import", join(d, "bb.tar"), "localhost/skb-bb:latest"]), 120_000);
  if (r.code !== 0) throw new Error(`podman import: ${r.stderr.trim().slice(-300)}`);
  onCleanup(() => {
    shQuiet(asUser(u, [...podman, "rm", "-af", "-t", "0"]));
    const pause = shTry(["cat", `${d}/r/libpod/tmp/pause.pid`]).trim();
    if (pause) shQuiet(["kill", "-9", pause]);
  });
  return podman;
}

/** The network process of the container: the user's process running `binary` (one container at a time). */
function networkPid(uid: number, match: (argv: string[]) => boolean): number | undefined {
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (statSync(`/proc/${p}`).uid !== uid) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (match(argv)) return Number(p);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

function podmanContender(ctx: Context, key: string, label: string, withSkiff: boolean): Contender {
  let podman: string[] | undefined;
  const binary = withSkiff ? join(ctx.repo, "bin", "skiff-slirp4netns.js") : shTry(["sh", "-c", "command -v slirp4netns"]).trim();
  const match = (argv: string[]) => (withSkiff ? argv.some((a) => a.endsWith("skiff-slirp4netns.js")) : argv[0]?.endsWith("slirp4netns") === true) && argv.includes("tap0");
  return {
    key,
    label,
    tools: ["podman", "runc", "newuidmap", "setpriv", ...(withSkiff ? [] : ["slirp4netns"])],
    steps: ROOTLESS_STEPS,
    async start(mtu) {
      const u = benchUser();
      podman ??= await podmanSetup(u, key, binary, withSkiff ? ["enable_ipv6=false"] : []);
      const p = podman;
      const r = await run(asUser(u, [...p, "run", "-d", "--rm", "--network", `slirp4netns:allow_host_loopback=true,mtu=${mtu}`, "localhost/skb-bb", "sleep", "1000000"]), 60_000);
      if (r.code !== 0) throw new Error(`podman run: ${r.stderr.trim().slice(-300)}`);
      const id = r.stdout.trim();
      const cpid = Number((await run(asUser(u, [...p, "inspect", "-f", "{{.State.Pid}}", id]))).stdout.trim());
      const pid = await waitFor(`${label}'s network process`, 10_000, () => networkPid(u.uid, match));
      const alive = () => {
        try {
          return statSync(`/proc/${pid}`).uid === u.uid;
        } catch {
          return false;
        }
      };
      const s: Session = {
        nsPath: `/proc/${cpid}/ns/net`,
        hostIp: "10.0.2.2",
        pid,
        notes: [],
        alive,
        describe: () => `${label} pid ${pid} ${alive() ? "running" : "gone"}`,
        stop: async () => {
          await run(asUser(u, [...p, "rm", "-f", "-t", "0", id]), 60_000);
        },
      };
      return s;
    },
  };
}

export const podmanSkiff = (ctx: Context) => podmanContender(ctx, "podman-skiff", "Podman + skiff", true);
export const podmanSlirp = (ctx: Context) => podmanContender(ctx, "podman-slirp4netns", "Podman + slirp4netns", false);

/** The rootless rows side by side: skiff as a user next to skiff as root; Podman with skiff against Podman with slirp4netns. */
export function rootlessTable(s: Summary): string | undefined {
  const keys = ["tcp_up_1500", "tcp_down_1500", "tcp_up_65520", "tcp_down_65520", "http_c1", "http_c50"];
  const cols = [
    ["skiff", "skiff run (root)"],
    ["skiff-user", "skiff run as a user"],
    ["podman-skiff", "Podman + skiff"],
    ["podman-slirp4netns", "Podman + slirp4netns"],
  ].filter(([k]) => s[k] !== undefined);
  if (!cols.some(([k]) => k !== "skiff")) return undefined;
  const head = ["metric", "unit", ...cols.map(([, l]) => l), "Podman: skiff ÷ slirp4netns"];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`];
  for (const key of keys) {
    const m = METRICS.find((x) => x.key === key)!;
    const v = (k: string) => s[k]?.[key]?.median;
    lines.push(`| ${[m.label, m.unit, ...cols.map(([k]) => formatValue(v(k), m.unit)), formatRatio(ratio(v("podman-skiff"), v("podman-slirp4netns")))].join(" | ")} |`);
  }
  return lines.join("\n");
}
