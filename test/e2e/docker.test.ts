/**
 * End to end (issue 16): `skiff docker` under TCG with Debian's docker CLI (/usr/bin/docker from
 * docker.io) on the host. The real CLI runs as separate processes (`node --import tsx
 * test/desktop/skiff-cli.ts docker …`): `start` boots the guest in the background and returns
 * once dockerd answers through docker.sock, with home and /tmp shared and a docker context made;
 * then `docker version` shows the server; the README's one command imports a base image from
 * busybox-static's files (no registry) and `docker run … exit 3` returns 3; a container downloads
 * 20 MiB from a host HTTP server on 127.0.0.1 through `host.docker.internal` (SHA-256 equal); a
 * host directory shared with `start -v` is read and written both ways through a container's `-v`;
 * `docker build` from that local base; a published port (`-p 127.0.0.1:N:80`) answers on the
 * host as soon as `docker run -d` returns and is freed after `docker rm -f`, and a host port
 * already in use fails `docker run` itself with skiff's message; the CLI commands of
 * docker-cli.ts (exec -it, logs -f, cp, stats, events, load, -P, /udp, default shares, context);
 * the file events of docker-events.ts (host changes reach a container's watcher and back);
 * a second `start` says it is running; `stop` then `start` keeps the image (persistent disk);
 * `stop` leaves no process, socket, mount, pid file or context behind; crash recovery.
 *
 * One VM for the whole file (boots take ~1 min under TCG on 2 shared cores); the suite's timeout
 * is long. The first run also builds the guest image (~70 MB of packages, ~1 min).
 */
import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect as tcpConnect, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultDockerCacheDir } from "../../src/desktop/image.js";
import { buildUdpEcho, DOCKER, dockerCliChecks, freePort, httpGetOnce, runProc, type Ran } from "./docker-cli.js";
import { dockerEventChecks } from "./docker-events.js";

const CLI = join(import.meta.dirname, "..", "desktop", "skiff-cli.ts");
/** The README's one command for an offline base image (run as written, in an empty directory). */
const BASE_IMAGE_COMMAND = `apt-get download busybox-static && dpkg-deb --fsys-tarfile busybox-static_*.deb | docker import -c 'ENTRYPOINT ["/bin/busybox"]' -c 'CMD ["sh"]' - busybox:skiff`;

/** Processes whose command line names `dir` (a daemon or QEMU left behind). */
function processesNaming(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(dir)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The agents' pin budget per share: small, so that the default /tmp share holds more directories (docker-events.ts). */
const WATCH_DIRS = 64;

describe("e2e: skiff docker (TCG, Debian's docker CLI)", function () {
  this.timeout(900_000);
  let state: string;
  let sock: string;
  let env: NodeJS.ProcessEnv;
  // The docker CLI's configuration (and so the context `start` makes) stays in the state directory.
  const skiff = (args: string[], timeoutMs = 600_000) => runProc(process.execPath, ["--import", "tsx", CLI, "docker", ...args, "--state-dir", state], { ...process.env, SKIFF_LOG: "warn", DOCKER_CONFIG: join(state, "docker-config") }, timeoutMs);
  const docker = (args: string[], timeoutMs = 300_000, input?: Buffer) => runProc(DOCKER, args, env, timeoutMs, input);
  let shared: string;
  /** `start`'s stderr, with the daemon's log when it failed (the state directory is gone after the suite). */
  const why = (r: Ran) => (r.code === 0 ? r.stderr : `${r.stderr}\n--- daemon.log:\n${(() => { try { return readFileSync(join(state, "daemon.log"), "utf8").slice(-3000); } catch { return "(none)"; } })()}`);
  const startArgs = () => ["start", "--accel", "tcg", "--memory", "1024", "--disk-size", "2048", "--watch-dirs", String(WATCH_DIRS), "-v", shared, "--cache", process.env.SKIFF_DOCKER_CACHE ?? defaultDockerCacheDir()];

  before(async function () {
    const missing = [DOCKER, "/usr/bin/qemu-system-x86_64", "/usr/sbin/mkfs.ext4"].filter((p) => !existsSync(p));
    if (missing.length > 0) {
      console.log(`      (skipped: missing ${missing.join(", ")}: run scripts/setup.sh)`);
      this.skip();
    }
    state = mkdtempSync(join(tmpdir(), "skiff-docker-e2e-"));
    // Inside /tmp, one of the default shares: the `start -v` share is nested in it, as a user's
    // project under home or /tmp is (each share's agent replays only events of its own mount).
    shared = mkdtempSync(join(tmpdir(), "skiff-docker-share-"));
    sock = join(state, "docker.sock");
    env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(state, "docker-config"), DOCKER_BUILDKIT: "0" };
    const t0 = Date.now();
    const r = await skiff(startArgs());
    console.log(`      (start → dockerd answering: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    expect(r.code, why(r)).to.equal(0);
    expect(r.stdout.trim()).to.equal(`export DOCKER_HOST=unix://${sock}`);
    expect(r.stderr).to.include(`shared at the same paths: `);
    expect(r.stderr).to.include(`docker context skiff points at unix://${sock}`);
  });

  after(async function () {
    if (!state) return;
    await skiff(["stop"], 120_000);
    rmSync(state, { recursive: true, force: true });
    rmSync(shared, { recursive: true, force: true });
  });

  it("docker.sock is private (0600) and `docker version` shows the server", async () => {
    expect(statSync(sock).mode & 0o777).to.equal(0o600);
    const r = await docker(["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.match(/^20\.10\.\S+ linux$/);
  });

  it("a second start says it is running; env and status agree", async () => {
    const again = await skiff(startArgs(), 60_000);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/already running \(pid \d+\)/);
    const envOut = await skiff(["env"]);
    expect(envOut.stdout.trim()).to.equal(`export DOCKER_HOST=unix://${sock}`);
    const st = await skiff(["status", "--json"]);
    expect(st.code).to.equal(0);
    expect(JSON.parse(st.stdout)).to.include({ running: true, answering: true });
  });

  it("the README's one command imports a base image from Debian's busybox-static; docker run returns the container's status (3)", async () => {
    const work = mkdtempSync(join(tmpdir(), "skiff-bb-"));
    try {
      const imp = await runProc("sh", ["-c", BASE_IMAGE_COMMAND], env, 300_000, undefined, work);
      expect(imp.code, imp.stderr).to.equal(0);
      expect((await docker(["tag", "busybox:skiff", "skiff-test/busybox:1"])).code).to.equal(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const r = await docker(["run", "--rm", "skiff-test/busybox:1", "sh", "-c", "exit 3"]);
    expect(r.code, r.stderr).to.equal(3);
  });

  it("docker build FROM the imported base (a 4 MiB context and a static binary streamed through the socket)", async () => {
    const ctx = mkdtempSync(join(tmpdir(), "skiff-build-"));
    try {
      const token = randomBytes(8).toString("hex");
      writeFileSync(join(ctx, "hello.txt"), token + "\n");
      const blob = randomBytes(4 << 20);
      writeFileSync(join(ctx, "blob.bin"), blob);
      const cc = await buildUdpEcho(ctx);
      expect(cc.code, cc.stderr).to.equal(0);
      // The exec form needs no /bin/sh: busybox installs its applets, then the shell form works.
      writeFileSync(join(ctx, "Dockerfile"), 'FROM skiff-test/busybox:1\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCOPY hello.txt blob.bin udpecho /\nRUN cat /hello.txt > /copy.txt\n');
      const b = await docker(["build", "-q", "-t", "skiff-test/built:1", ctx]);
      expect(b.code, b.stderr).to.equal(0);
      const r = await docker(["run", "--rm", "skiff-test/built:1", "sh", "-c", "cat /copy.txt && sha256sum /blob.bin"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(`${token}\n${createHash("sha256").update(blob).digest("hex")}  /blob.bin\n`);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
  });

  it("-p 127.0.0.1:N:80 listens on the host before `docker run -d` returns, answers, and is freed by `docker rm -f`; a busy host port fails `docker run`", async () => {
    const port = await freePort();
    const run = await docker(["run", "-d", "-p", `127.0.0.1:${port}:80`, "skiff-test/busybox:1", "sh", "-c", "mkdir -p /www && echo hello-skiff > /www/index.html && exec httpd -f -p 80 -h /www"]);
    expect(run.code, run.stderr).to.equal(0);
    const id = run.stdout.trim();
    const t0 = Date.now();
    // The host port is already listening: no connection is refused.
    await new Promise<void>((resolve, reject) => {
      const c = tcpConnect(port, "127.0.0.1", () => (c.destroy(), resolve()));
      c.on("error", reject);
    });
    let answer: { status: number; body: string } | undefined;
    while (!answer && Date.now() - t0 < 120_000) {
      answer = await httpGetOnce(`http://127.0.0.1:${port}/`).catch(() => undefined);
      if (!answer) await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`      (docker run -d returned → host port accepting: 0 ms; → first HTTP answer: ${Date.now() - t0} ms)`);
    expect(answer).to.deep.equal({ status: 200, body: "hello-skiff\n" });
    const rm = await docker(["rm", "-f", id]);
    expect(rm.code, rm.stderr).to.equal(0);
    const after = await new Promise<string>((resolve) => {
      const c = tcpConnect(port, "127.0.0.1", () => (c.destroy(), resolve("connected")));
      c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    });
    expect(after).to.equal("ECONNREFUSED");

    const busy = createTcpServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const busyPort = (busy.address() as { port: number }).port;
    try {
      const fail = await docker(["run", "--rm", "-p", `127.0.0.1:${busyPort}:80`, "skiff-test/busybox:1", "true"]);
      expect(fail.code).to.not.equal(0);
      expect(fail.stderr).to.include(`port ${busyPort} is already in use`);
    } finally {
      busy.close();
    }
  });

  it("-v: a host directory shared with `start -v` is read and written both ways by a container's `-v`", async () => {
    const token = randomBytes(8).toString("hex");
    writeFileSync(join(shared, "in.txt"), token);
    const r = await docker(["run", "--rm", "-v", `${shared}:/data`, "skiff-test/busybox:1", "sh", "-c", "cat /data/in.txt && cat /data/in.txt /data/in.txt > /data/out.txt"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(token);
    expect(readFileSync(join(shared, "out.txt"), "utf8")).to.equal(token + token);
  });

  it("a container downloads 20 MiB from a host server through host.docker.internal (SHA-256 equal)", async () => {
    const blob = randomBytes(20 << 20);
    const want = createHash("sha256").update(blob).digest("hex");
    const server: Server = createServer((_req, res) => res.end(blob));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await docker(["run", "--rm", "skiff-test/busybox:1", "sh", "-c", `wget -qO- http://host.docker.internal:${port}/blob | sha256sum`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim().split(/\s+/)[0]).to.equal(want);
    } finally {
      server.close();
    }
  });

  const harness = {
    state: () => state,
    shared: () => shared,
    env: () => env,
    docker: (args: string[], timeoutMs?: number, input?: Buffer) => docker(args, timeoutMs, input),
    baseImage: "skiff-test/busybox:1",
    builtImage: "skiff-test/built:1",
  };
  dockerCliChecks(harness);
  dockerEventChecks({ ...harness, watchImage: "skiff-test/watch:1" });

  it("stop then start keeps the imported image (persistent disk); stop leaves no process, socket, mount or docker context", async () => {
    const pid = Number(readFileSync(join(state, "daemon.pid"), "utf8").split(" ")[0]);
    const qemuPid = Number(readFileSync(join(state, "daemon.pid"), "utf8").trim().split(" ")[1]);
    const stop = await skiff(["stop"], 120_000);
    expect(stop.code, stop.stderr).to.equal(0);
    for (const f of ["docker.sock", "api.sock", "net.sock", "daemon.pid"]) expect(existsSync(join(state, f)), f).to.equal(false);
    for (const p of [pid, qemuPid]) expect(existsSync(`/proc/${p}`), `process ${p}`).to.equal(false);
    expect(processesNaming(state), "processes naming the state directory").to.deep.equal([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).to.not.include(state);
    expect(stop.stderr).to.include("docker context skiff removed");
    const ctx = await docker(["context", "inspect", "skiff"]);
    expect(ctx.code, "the context is gone").to.not.equal(0);
    const st = await skiff(["status"]);
    expect(st.code).to.equal(3);
    const t0 = Date.now();
    const r = await skiff(startArgs());
    console.log(`      (second start → dockerd answering: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    expect(r.code, why(r)).to.equal(0);
    const img = await docker(["image", "inspect", "--format", "{{.Id}}", "skiff-test/busybox:1"]);
    expect(img.code, img.stderr).to.equal(0);
    expect(img.stdout.trim()).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it("`logs` prints the daemon's log and the console with dockerd's", async () => {
    const r = await skiff(["logs"]);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.include(`==> daemon (${join(state, "daemon.log")}) <==`);
    expect(r.stdout).to.include(`==> console (${join(state, "console.log")}) <==`);
    expect(r.stdout).to.include("SKIFF-DOCKER-UP 192.168.65.3/24");
    expect(r.stdout).to.match(/API listen on \[::\]:2375/);
  });

  it("after a crash (the daemon killed with SIGKILL) start detects the stale state, kills the orphaned QEMU and starts again", async () => {
    const [pid, qemuPid] = readFileSync(join(state, "daemon.pid"), "utf8").trim().split(" ").map(Number);
    process.kill(pid, "SIGKILL");
    const t0 = Date.now();
    while (existsSync(`/proc/${pid}`) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(`/proc/${pid}`), "the killed daemon is gone").to.equal(false);
    expect(existsSync(`/proc/${qemuPid}`), "QEMU outlives its daemon").to.equal(true);
    const st = await skiff(["status"]);
    expect(st.code).to.equal(3);
    const r = await skiff(startArgs());
    expect(r.code, why(r)).to.equal(0);
    expect(r.stderr).to.include(`cleaned stale state of daemon ${pid}, its QEMU ${qemuPid} killed`);
    expect(existsSync(`/proc/${qemuPid}`)).to.equal(false);
    const v = await docker(["image", "inspect", "--format", "{{.Id}}", "skiff-test/busybox:1"]);
    expect(v.code, v.stderr).to.equal(0);
  });
});
