/**
 * End to end (issue 16): `skiff docker` under TCG with Debian's docker CLI (/usr/bin/docker from
 * docker.io) on the host. The real CLI runs as separate processes (`node --import tsx
 * test/desktop/skiff-cli.ts docker …`): `start` boots the guest in the background and returns
 * once dockerd answers through docker.sock; then `docker version` shows the server; an image
 * imported from busybox-static's files (`docker import`, no registry) runs `sh -c 'exit 3'` and
 * `docker run` returns 3; a container downloads 20 MiB from a host HTTP server on 127.0.0.1
 * through `host.docker.internal` (SHA-256 equal); a host directory shared with `start -v` is read
 * and written both ways through a container's `-v`; `docker build` from that local base; a published port (`-p 127.0.0.1:N:80`) answers
 * on the host as soon as `docker run -d` returns and is freed after `docker rm -f`, and a host
 * port already in use fails `docker run` itself with skiff's message; a second
 * `start` says it is running; `stop` then `start` keeps the image (persistent disk); `stop`
 * leaves no process, socket or pid file behind.
 *
 * One VM for the whole file (boots take ~1 min under TCG on 2 shared cores); the suite's timeout
 * is long. The first run also builds the guest image (~70 MB of packages, ~1 min).
 */
import { expect } from "chai";
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, get as httpGet, type Server } from "node:http";
import { connect as tcpConnect, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultDockerCacheDir } from "../../src/desktop/image.js";

const DOCKER = "/usr/bin/docker";
const CLI = join(import.meta.dirname, "..", "desktop", "skiff-cli.ts");

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function runProc(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, input?: Buffer): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: "buffer" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === "number" ? ((err as unknown as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
    if (input) child.stdin!.end(input);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function httpGetOnce(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

describe("e2e: skiff docker (TCG, Debian's docker CLI)", function () {
  this.timeout(900_000);
  let state: string;
  let sock: string;
  let env: NodeJS.ProcessEnv;
  const skiff = (args: string[], timeoutMs = 600_000) => runProc(process.execPath, ["--import", "tsx", CLI, "docker", ...args, "--state-dir", state], { ...process.env, SKIFF_LOG: "warn" }, timeoutMs);
  const docker = (args: string[], timeoutMs = 300_000, input?: Buffer) => runProc(DOCKER, args, env, timeoutMs, input);
  let shared: string;
  /** `start`'s stderr, with the daemon's log when it failed (the state directory is gone after the suite). */
  const why = (r: Ran) => (r.code === 0 ? r.stderr : `${r.stderr}\n--- daemon.log:\n${(() => { try { return readFileSync(join(state, "daemon.log"), "utf8").slice(-3000); } catch { return "(none)"; } })()}`);
  const startArgs = () => ["start", "--accel", "tcg", "--memory", "1024", "--disk-size", "2048", "-v", shared, "--cache", process.env.SKIFF_DOCKER_CACHE ?? defaultDockerCacheDir()];

  before(async function () {
    const missing = [DOCKER, "/usr/bin/qemu-system-x86_64", "/usr/sbin/mkfs.ext4"].filter((p) => !existsSync(p));
    if (missing.length > 0) {
      console.log(`      (skipped: missing ${missing.join(", ")}: run scripts/setup.sh)`);
      this.skip();
    }
    state = mkdtempSync(join(tmpdir(), "skiff-docker-e2e-"));
    shared = mkdtempSync(join(tmpdir(), "skiff-docker-share-"));
    sock = join(state, "docker.sock");
    env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(state, "docker-config"), DOCKER_BUILDKIT: "0" };
    const t0 = Date.now();
    const r = await skiff(startArgs());
    console.log(`      (start → dockerd answering: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    expect(r.code, why(r)).to.equal(0);
    expect(r.stdout.trim()).to.equal(`export DOCKER_HOST=unix://${sock}`);
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

  it("docker import of busybox-static's files, then docker run returns the container's status (3)", async () => {
    const work = mkdtempSync(join(tmpdir(), "skiff-bb-"));
    try {
      execFileSync("apt-get", ["download", "-qq", "busybox-static"], { cwd: work, stdio: "ignore" });
      const deb = readdirSync(work).find((f) => f.endsWith(".deb"))!;
      const tar = execFileSync("dpkg-deb", ["--fsys-tarfile", join(work, deb)], { maxBuffer: 64 << 20 });
      const imp = await docker(["import", "-c", 'ENTRYPOINT ["/bin/busybox"]', "-c", 'CMD ["sh"]', "-", "skiff-test/busybox:1"], 120_000, tar);
      expect(imp.code, imp.stderr).to.equal(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const r = await docker(["run", "--rm", "skiff-test/busybox:1", "sh", "-c", "exit 3"]);
    expect(r.code, r.stderr).to.equal(3);
  });

  it("docker build FROM the imported base (context streamed through the socket)", async () => {
    const ctx = mkdtempSync(join(tmpdir(), "skiff-build-"));
    try {
      const token = randomBytes(8).toString("hex");
      writeFileSync(join(ctx, "hello.txt"), token + "\n");
      // The exec form needs no /bin/sh: busybox installs its applets, then the shell form works.
      writeFileSync(join(ctx, "Dockerfile"), 'FROM skiff-test/busybox:1\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy.txt\n');
      const b = await docker(["build", "-q", "-t", "skiff-test/built:1", ctx]);
      expect(b.code, b.stderr).to.equal(0);
      const r = await docker(["run", "--rm", "skiff-test/built:1", "cat", "/copy.txt"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(token + "\n");
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

  it("stop then start keeps the imported image (persistent disk); stop leaves no process or socket", async () => {
    const pid = Number(readFileSync(join(state, "daemon.pid"), "utf8").split(" ")[0]);
    const qemuPid = Number(readFileSync(join(state, "daemon.pid"), "utf8").trim().split(" ")[1]);
    const stop = await skiff(["stop"], 120_000);
    expect(stop.code, stop.stderr).to.equal(0);
    for (const f of ["docker.sock", "api.sock", "net.sock", "daemon.pid"]) expect(existsSync(join(state, f)), f).to.equal(false);
    for (const p of [pid, qemuPid]) expect(existsSync(`/proc/${p}`), `process ${p}`).to.equal(false);
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
