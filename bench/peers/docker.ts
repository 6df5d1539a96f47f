// The `docker` step of the benchmark (issue 16), opt-in: `npm run bench -- --steps docker`. Measures `skiff docker` as a user meets it (default options: 2 GiB guest, home and /tmp shared, TCG here) with Debian's docker CLI, per round: `start` until dockerd answers (round 1 includes making the data disk), the idle memory (VmRSS of the skiff daemon plus its QEMU after `idleSeconds` idle), `docker run --rm IMG true`, the port-publish latency (a `docker run -d -p 127.0.0.1:N:80` busybox httpd: how long before `docker run -d` returned the host port first accepted a TCP connection — dockerd runs skiff's proxy before it starts the container, so the port listens before the container runs — and when the first HTTP answer arrived after it returned; the port is polled every 5 ms from before `docker run` starts), and `stop`. Also the guest image's size. Prints a markdown table.

import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { get } from "node:http";
import { join } from "node:path";
import { parseVmRssKb } from "./parse.js";
import { run } from "./proc.js";
// A free port: a busy one would fail `docker run -p` (skiff's busy-port check).
import { freePort } from "../../test/support/ports.js";

export interface DockerBenchOptions {
  repo: string;
  tmp: string;
  rounds: number;
  /** Seconds the VM idles before its memory is read. */
  idleSeconds: number;
  log: (s: string) => void;
}

export interface DockerBenchResult {
  table: string;
  values: Record<string, number[]>;
  image: Record<string, number>;
  problems: string[];
}

const BASE = `apt-get download busybox-static && dpkg-deb --fsys-tarfile busybox-static_*.deb | docker import -c 'ENTRYPOINT ["/bin/busybox"]' -c 'CMD ["sh"]' - busybox:skiff`;

function rssKb(pid: number): number {
  try {
    return parseVmRssKb(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return NaN;
  }
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1", () => (c.destroy(), resolve(true)));
    c.on("error", () => resolve(false));
  });
}

function httpOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`http://127.0.0.1:${port}/`, (res) => (res.resume(), res.on("end", () => resolve(res.statusCode === 200))));
    req.setTimeout(5000, () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/** Sizes of the guest image in the cache (`current`), MB. */
function imageSizes(cache: string): Record<string, number> {
  const key = readFileSync(join(cache, "current"), "utf8").trim();
  const mb = (f: string) => statSync(join(cache, key, f)).size / 1e6;
  const used = (f: string) => (statSync(join(cache, key, f)).blocks * 512) / 1e6;
  return { "kernel MB": mb("vmlinuz"), "initramfs MB": mb("initrd.img"), "system disk MB (apparent)": mb("system.img"), "system disk MB (allocated)": used("system.img") };
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

export async function dockerBench(o: DockerBenchOptions): Promise<DockerBenchResult> {
  const state = join(o.tmp, "docker-state");
  const cache = join(process.env.XDG_CACHE_HOME || join(process.env.HOME ?? "/root", ".cache"), "skiff", "docker");
  const env = { ...process.env, DOCKER_CONFIG: join(o.tmp, "docker-config"), DOCKER_HOST: `unix://${join(state, "docker.sock")}`, SKIFF_LOG: "warn" };
  mkdirSync(env.DOCKER_CONFIG, { recursive: true });
  const cmd = (argv: string[], ms = 600_000, cwd?: string) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      p.stdout.on("data", (d: Buffer) => (out += d));
      p.stderr.on("data", (d: Buffer) => (err += d));
      const t = setTimeout(() => p.kill("SIGKILL"), ms);
      p.on("close", (code) => (clearTimeout(t), resolve({ code, out, err })));
    });
  const skiff = (args: string[], ms?: number) => cmd([process.execPath, join(o.repo, "bin", "skiff.js"), "docker", ...args, "--state-dir", state], ms);
  const values: Record<string, number[]> = {};
  const add = (k: string, v: number) => (values[k] ??= []).push(v);
  const problems: string[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    const tag = `[docker round ${round}/${o.rounds}]`;
    let t0 = Date.now();
    const st = await skiff(["start"]);
    if (st.code !== 0) {
      problems.push(`${tag} start failed: ${st.err.trim().slice(-400)}`);
      await skiff(["stop"]);
      continue;
    }
    add(round === 1 ? "start → dockerd answers, s (first start: new disk)" : "start → dockerd answers, s", (Date.now() - t0) / 1000);
    o.log(`${tag} started in ${((Date.now() - t0) / 1000).toFixed(1)} s; idling ${o.idleSeconds} s`);
    try {
      await new Promise((r) => setTimeout(r, o.idleSeconds * 1000));
      const [pid, qemuPid] = readFileSync(join(state, "daemon.pid"), "utf8").trim().split(" ").map(Number);
      add("idle RSS: skiff daemon, MB", rssKb(pid) / 1000);
      add("idle RSS: QEMU, MB", rssKb(qemuPid) / 1000);
      add("idle RSS: total, MB", (rssKb(pid) + rssKb(qemuPid)) / 1000);
      if ((await cmd(["docker", "image", "inspect", "busybox:skiff"])).code !== 0) {
        const imp = await cmd(["sh", "-c", BASE], 600_000, o.tmp);
        if (imp.code !== 0) throw new Error(`importing busybox:skiff failed: ${imp.err.trim().slice(-300)}`);
      }
      t0 = Date.now();
      const tr = await cmd(["docker", "run", "--rm", "busybox:skiff", "true"]);
      if (tr.code !== 0) throw new Error(`docker run true: ${tr.err.trim()}`);
      add("docker run --rm busybox true, s", (Date.now() - t0) / 1000);
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        let accepted = NaN;
        let polling = true;
        const poller = (async () => {
          while (polling) {
            if (await tryConnect(port)) return (accepted = Date.now());
            await new Promise((r) => setTimeout(r, 5));
          }
        })();
        const r = await cmd(["docker", "run", "-d", "-p", `127.0.0.1:${port}:80`, "busybox:skiff", "sh", "-c", "mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p 80 -h /w"]);
        const returned = Date.now();
        if (r.code !== 0) {
          polling = false;
          throw new Error(`docker run -p: ${r.err.trim()}`);
        }
        const deadline = returned + 60_000;
        while (!Number.isFinite(accepted) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
        polling = false;
        await poller;
        let answered = NaN;
        while (Date.now() < deadline) {
          if (await httpOk(port)) {
            answered = Date.now();
            break;
          }
          await new Promise((res) => setTimeout(res, 5));
        }
        // Positive: the host port listened before the container started (dockerd runs the proxy first).
        add("host port accepting, s before docker run -d returned", (returned - accepted) / 1000);
        add("first HTTP answer, ms after docker run -d returned", answered - returned);
        await cmd(["docker", "rm", "-f", r.out.trim()]);
      }
      add("data disk allocated after the runs, MB", (statSync(join(state, "data.img")).blocks * 512) / 1e6);
    } catch (e) {
      problems.push(`${tag} ${(e as Error).message}`);
    }
    t0 = Date.now();
    const sp = await skiff(["stop"], 120_000);
    if (sp.code !== 0) problems.push(`${tag} stop failed: ${sp.err.trim()}`);
    else add("stop, s", (Date.now() - t0) / 1000);
    o.log(`${tag} ${Object.entries(values).map(([k, v]) => `${k}=${v[v.length - 1].toFixed(1)}`).join("; ")}`);
  }
  let image: Record<string, number> = {};
  try {
    image = imageSizes(cache);
  } catch (e) {
    problems.push(`image sizes: ${(e as Error).message}`);
  }
  const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1)) : "–");
  const rows = [
    "| skiff docker (TCG here) | median | samples |",
    "|---|---:|---|",
    ...Object.entries(values).map(([k, v]) => `| ${k} | ${fmt(median(v))} | ${v.map(fmt).join(", ")} |`),
    ...Object.entries(image).map(([k, v]) => `| guest image: ${k} | ${fmt(v)} | |`),
  ];
  const probe = await run(["sh", "-c", "docker --version"]);
  return { table: rows.join("\n") + `\n\nDocker CLI: ${probe.stdout.trim()}; the port is polled every 5 ms (Lima's port watcher polls every 3 s).`, values, image, problems };
}
