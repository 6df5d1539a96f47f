// Side-by-side benchmark (issue 8): skiff against slirp4netns, pasta and a kernel veth pair on this machine in one run; prints one markdown table with targets, writes bench/results/latest.json and latest.svg.
//
// Run as root: `npm run bench` (3 rounds), `npm run bench -- --quick` (1 round, short runs),
// `--rounds N` or SKB_ROUNDS=N, `--only skiff,veth` to measure some contenders only, `--steps loss,iperf3`
// to run only the steps whose name contains one of the words (e.g. `--steps loss`: the 20 MB
// transfers under random loss at MTU 1500 without offload, issue 19; `--steps ipv6`: the IPv6 rows of
// issue 18, bulk both ways at both MTUs and HTTP keep-alive, for skiff, pasta and the veth pair, in a
// table of their own). The loss rows run for
// skiff and the kernel veth; `--loss-peers` (or naming them in --only) adds slirp4netns and
// pasta, whose downloads under loss take minutes. `--steps docker` (opt-in, not in a full run: three
// VM boots) measures `skiff docker` instead: start time, idle memory, port-publish latency, image
// size (bench/peers/docker.ts); it writes bench/results/docker.json. The step "share"
// (bench/share.ts, issue 15: skiff's 9P share against QEMU's virtio-9p and diod in TCG guests) runs
// after the network steps, or alone with `--steps share`.
// Installs missing tools with apt-get, builds dist/ (npm run build:ts) so skiff is the current
// source, and skips (with the reason) a contender that is missing or does not start.

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pasta, skiff, slirp4netns, veth, type Contender } from "./peers/contenders.js";
import { plan, type Durations, type Step } from "./peers/measures.js";
import { lossSteps, startTransferServers } from "./peers/loss.js";
import { have, installSignalCleanup, onCleanup, run, runCleanups } from "./peers/proc.js";
import { evaluateTargets, ipv6Table, markdownTable, METRICS, renderSvg, summarize, targetsSection, type Samples } from "./peers/report.js";
import { pickPorts, startServers, stopServers } from "./peers/servers.js";
import { dockerBench } from "./peers/docker.js";
import { podmanSkiff, podmanSlirp, rootlessTable, skiffUser } from "./peers/rootless.js";
import { runShareBench } from "./share.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? "") : undefined;
};
const quick = args.includes("--quick");
const rounds = Number(flag("--rounds") ?? process.env.SKB_ROUNDS ?? (quick ? 1 : 3));
const only = flag("--only")?.split(",");
const dur: Durations = quick
  ? { tcp: 2, udp: 2, wrk: 2, sockperf: 2, holdConns: 10_000, lossTransfers: 1 }
  : { tcp: 5, udp: 5, wrk: 5, sockperf: 5, holdConns: 10_000, lossTransfers: 3 };
const stepFilter = flag("--steps")?.toLowerCase().split(",").filter(Boolean);
const wanted = (st: Step) => !stepFilter || stepFilter.some((w) => st.name.toLowerCase().includes(w));
const lossFor = args.includes("--loss-peers") || only ? undefined : ["skiff", "veth"];
/** One contender start per entry: the MTU, its offload switch, the steps it runs (and for whom, if not all). */
const STARTS: Array<{ mtu: number; offload?: boolean; steps: Step[]; contenders?: string[] }> = [
  { mtu: 1500, steps: plan(1500) },
  { mtu: 65520, steps: plan(65520) },
  { mtu: 1500, offload: false, steps: lossSteps(), contenders: lossFor },
]
  .map((x) => ({ ...x, steps: x.steps.filter(wanted) }))
  .filter((x) => x.steps.length > 0);
const shareWanted = !stepFilter || stepFilter.some((w) => "share".includes(w));

/** Command → Debian package. */
const TOOLS: Record<string, string> = { slirp4netns: "slirp4netns", pasta: "passt", iperf3: "iperf3", wrk: "wrk", sockperf: "sockperf", nginx: "nginx-light", nsenter: "util-linux", ip: "iproute2", ss: "iproute2", podman: "podman", runc: "runc", newuidmap: "uidmap" };

const log = (s: string) => process.stderr.write(`${s}\n`);

async function ensureTools(): Promise<void> {
  const missing = [...new Set(Object.entries(TOOLS).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg))];
  if (!missing.length) return;
  log(`installing ${missing.join(" ")}`);
  const install = () => run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", ...missing], 600_000);
  let r = await install();
  if (r.code !== 0) {
    await run(["apt-get", "update", "-q"], 300_000);
    r = await install();
  }
  if (r.code !== 0) log(`apt-get install failed (exit ${r.code}): ${r.stderr.trim().slice(-400)}`);
}

async function versions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const pkg of ["slirp4netns", "passt", "iperf3", "wrk", "sockperf", "nginx-light"]) {
    const r = await run(["dpkg-query", "-W", "-f", "${Version}", pkg]);
    if (r.code === 0) out[pkg] = r.stdout.trim();
  }
  const lib = /libslirp: (\S+)/.exec((await run(["slirp4netns", "--version"])).stdout);
  if (lib) out.libslirp = lib[1];
  const head = (await run(["git", "-C", repo, "rev-parse", "--short", "HEAD"])).stdout.trim();
  const dirty = (await run(["git", "-C", repo, "status", "--porcelain", "--", "src"])).stdout.trim();
  out.skiff = `${head}${dirty ? " + uncommitted changes in src/" : ""}`;
  return out;
}

interface Problem {
  round: number;
  contender: string;
  mtu?: number;
  step?: string;
  message: string;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    log("npm run bench needs root (network namespaces, TAP devices, apt-get)");
    return 1;
  }
  installSignalCleanup();
  const tmp = mkdtempSync("/tmp/skb-");
  if (!process.env.SKB_KEEP) onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  const dockerCode = stepFilter?.includes("docker") ? await runDockerStep(tmp) : undefined;
  if (STARTS.length === 0) {
    if (shareWanted) return runShareBench({ rounds: quick ? 1 : rounds, mtu: 65520, log });
    if (dockerCode !== undefined) return dockerCode;
    log(`no step matches --steps ${stepFilter?.join(",")}`);
    return 1;
  }
  await ensureTools();
  const ctx = { tmp, repo };
  const all: Contender[] = [skiff(ctx), slirp4netns(ctx), pasta(ctx), veth(), skiffUser(ctx), podmanSkiff(ctx), podmanSlirp(ctx)];
  const contenders = all.filter((c) => !only || only.includes(c.key));
  const skipped = new Map<string, string>();
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const extra: Record<string, Record<string, unknown[]>> = {};

  log("building dist/ (npm run build:ts)");
  const build = await run(["npm", "run", "build:ts", "--prefix", repo], 300_000);
  if (build.code !== 0) skipped.set("skiff", `npm run build:ts failed: ${(build.stderr || build.stdout).trim().slice(-400)}`);
  for (const c of contenders) {
    const lacking = c.tools.filter((t) => !have(t));
    if (lacking.length) skipped.set(c.key, `missing ${lacking.join(", ")}`);
    else if (c.setup) {
      try {
        c.setup();
      } catch (e) {
        skipped.set(c.key, `set-up failed: ${(e as Error).message}`);
      }
    }
  }
  const addrs = ["127.0.0.1", ...contenders.filter((c) => c.serverAddr && !skipped.has(c.key)).map((c) => c.serverAddr!)];
  // The IPv6 rows' servers: ::1 (skiff's and pasta's host mapping) and the veth's IPv6 address.
  const addrs6 = ["::1", ...contenders.filter((c) => c.serverAddr6 && !skipped.has(c.key)).map((c) => c.serverAddr6!)];
  const ports = pickPorts();
  log(`host servers on ${[...addrs, ...addrs6].join(", ")}: ${JSON.stringify(ports)}`);
  const servers = [...(await startServers(tmp, addrs, ports, addrs6)), await startTransferServers(tmp, addrs, ports.transfer)];
  const env = { ports, dur, tmp };
  const samples: Samples = {};
  const started = new Set<string>();
  const t0 = Date.now();

  for (let round = 1; round <= rounds; round++) {
    // Alternate: each round starts with the next contender.
    const order = contenders.map((_, i) => contenders[(i + round - 1) % contenders.length]);
    for (const c of order) {
      for (const { mtu, offload, steps, contenders: who } of STARTS) {
        if (skipped.has(c.key)) break;
        if (who && !who.includes(c.key)) continue;
        const tag = `[round ${round}/${rounds} ${c.key} MTU ${mtu}${offload === false ? " no offload" : ""}]`;
        let s;
        try {
          s = await c.start(mtu, { offload });
          started.add(c.key);
        } catch (e) {
          const message = `start failed: ${(e as Error).message}`;
          log(`${tag} ${message}`);
          if (!started.has(c.key)) skipped.set(c.key, message);
          else problems.push({ round, contender: c.key, mtu, message });
          continue;
        }
        for (const step of steps) {
          if ((step.needsPid && s.pid === undefined) || (c.steps && !c.steps(step.name))) continue;
          if (step.needsIpv6 && s.hostIp6 === undefined) {
            const n = `${c.key}: no IPv6 path to the host, no IPv6 rows`;
            if (!c.steps && !warnings.includes(n)) warnings.push(n);
            continue;
          }
          const t1 = Date.now();
          try {
            const r = await step.run(s, env);
            for (const [k, v] of Object.entries(r.values)) ((samples[c.key] ??= {})[k] ??= []).push(v);
            for (const [k, v] of Object.entries(r.extra ?? {})) ((extra[c.key] ??= {})[k] ??= []).push(v);
            for (const w of r.warnings ?? []) warnings.push(`round ${round} ${c.key} MTU ${mtu}: ${w}`);
            log(`${tag} ${step.name}: ${Object.entries(r.values).map(([k, v]) => `${k}=${v.toFixed(3)}`).join(" ")} (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
          } catch (e) {
            const message = (e as Error).message;
            log(`${tag} ${step.name} FAILED: ${message}`);
            problems.push({ round, contender: c.key, mtu, step: step.name, message });
          }
          if (!s.alive()) {
            problems.push({ round, contender: c.key, mtu, step: step.name, message: `process ended during the run: ${s.describe()}` });
            log(`${tag} contender process ended: ${s.describe()}`);
            break;
          }
        }
        const t2 = Date.now();
        await s.stop();
        if (Date.now() - t2 > 3000) warnings.push(`round ${round} ${c.key} MTU ${mtu}: stopping took ${((Date.now() - t2) / 1000).toFixed(1)} s`);
        for (const n of s.notes) if (!warnings.some((w) => w.endsWith(`${c.key}: ${n}`))) warnings.push(`${c.key}: ${n}`);
      }
    }
  }
  await stopServers(servers);
  for (const c of contenders) c.teardown?.();

  const shown = contenders.filter((c) => samples[c.key]).map((c) => ({ key: c.key, label: c.label }));
  const summary = summarize(samples);
  // With --steps, only the targets of what was measured.
  const targets = evaluateTargets(summary).filter((t) => !stepFilter || t.pass !== undefined);
  const table = markdownTable(summary, shown);
  const minutes = ((Date.now() - t0) / 60_000).toFixed(1);
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const ver = await versions();

  const out: string[] = [];
  out.push(`skiff vs peers: medians of ${rounds} round(s)${quick ? " (quick)" : ""}, ${machine.cpus} CPUs (${machine.cpu}), kernel ${machine.kernel}; ${minutes} min`);
  // With --steps ipv6 alone the main table has no row (only its header) and there is no target.
  if (table.split("\n").length > 2) out.push("", table);
  out.push("", "↑ higher is better, ↓ lower is better; the last columns are skiff's figure divided by the other's. Latency is sockperf's average (half round trip). CPU is utime+stime of the contender's process per GB received; RSS is VmRSS.");
  if (targets.length) out.push("", targetsSection(targets));
  const v6 = ipv6Table(summary, shown);
  if (v6) out.push("", "IPv6 (issue 18): the host servers on ::1 through skiff's host alias fd73:6b69:6666::2 and pasta's gateway mapping, on the veth's own IPv6 address", "", v6);
  const rootless = rootlessTable(summary);
  if (rootless) out.push("", "Rootless (issue 17): bulk and HTTP only", "", rootless);
  for (const [k, why] of skipped) out.push(`\nSkipped ${k}: ${why}`);
  if (warnings.length) out.push("", "Notes:", ...warnings.map((w) => `- ${w}`));
  if (problems.length) out.push("", "Errors:", ...problems.map((p) => `- round ${p.round} ${p.contender}${p.mtu ? ` MTU ${p.mtu}` : ""}${p.step ? ` ${p.step}` : ""}: ${p.message}`));
  console.log(out.join("\n"));

  const results = join(repo, "bench", "results");
  mkdirSync(results, { recursive: true });
  const json = {
    generatedAt: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    rounds,
    durationsSeconds: dur,
    machine,
    versions: ver,
    metrics: METRICS,
    contenders: contenders.map((c) => ({ key: c.key, label: c.label, ...(skipped.has(c.key) ? { skipped: skipped.get(c.key) } : {}) })),
    results: summary,
    extra,
    targets,
    notes: warnings,
    errors: problems,
    table,
  };
  writeFileSync(join(results, "latest.json"), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(results, "latest.svg"), renderSvg(summary, shown, METRICS, `skiff and its peers (medians of ${rounds} round${rounds > 1 ? "s" : ""}, ${machine.cpus} CPUs)`));
  log(`wrote ${join(results, "latest.json")} and latest.svg`);
  if (shareWanted) await runShareBench({ rounds: quick ? 1 : rounds, mtu: 65520, log });
  return 0;
}

/** The opt-in docker step: its own table and bench/results/docker.json. */
async function runDockerStep(tmp: string): Promise<number> {
  log("building dist/ (npm run build:ts)");
  const build = await run(["npm", "run", "build:ts", "--prefix", repo], 300_000);
  if (build.code !== 0) {
    log(`npm run build:ts failed: ${(build.stderr || build.stdout).trim().slice(-400)}`);
    return 1;
  }
  const r = await dockerBench({ repo, tmp, rounds, idleSeconds: quick ? 10 : 30, log });
  const machine = `${cpus().length} CPUs (${cpus()[0]?.model}), kernel ${release()}`;
  console.log([`skiff docker: ${rounds} round(s), ${machine}`, "", r.table, ...(r.problems.length ? ["", "Errors:", ...r.problems.map((p) => `- ${p}`)] : [])].join("\n"));
  const results = join(repo, "bench", "results");
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, "docker.json"), `${JSON.stringify({ generatedAt: new Date().toISOString(), rounds, machine, values: r.values, image: r.image, errors: r.problems, table: r.table }, null, 2)}\n`);
  return r.problems.length ? 1 : 0;
}

main()
  .then((code) => {
    runCleanups();
    process.exit(code);
  })
  .catch((e: Error) => {
    log(`bench failed: ${e.stack ?? e.message}`);
    runCleanups();
    process.exit(1);
  });
