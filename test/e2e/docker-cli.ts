/**
 * The docker CLI commands of issue 16 checked against `skiff docker` (registered into
 * test/e2e/docker.test.ts's suite, so they share its one VM boot): the home/tmp default shares
 * (`docker run -v /tmp/DIR:/src` with no `start -v`, and how ownership looks inside containers),
 * `exec -it` under a pty (`script`), `logs -f` following a container until it stops, `cp` both
 * ways, `stats --no-stream`, `events` (start and die), `save`/`load`, `-P`, `-p …/udp` (a small
 * static UDP echo program built here with gcc, in an image made by `docker build`), and the
 * docker context `start` creates. Also the process helpers the suite uses.
 */
import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/ports.js";

export { freePort };

export const DOCKER = "/usr/bin/docker";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function runProc(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, input?: Buffer, cwd?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, cwd, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: "buffer" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === "number" ? ((err as unknown as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
    if (input) child.stdin!.end(input);
  });
}

export function httpGetOnce(url: string): Promise<{ status: number; body: string }> {
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

/** Poll `http://127.0.0.1:PORT/` until it answers (the container's server may still be starting). */
export async function httpUntil(port: number, ms: number): Promise<{ status: number; body: string } | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const a = await httpGetOnce(`http://127.0.0.1:${port}/`).catch(() => undefined);
    if (a) return a;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

/** A long-running process whose output is collected; `until` waits for a predicate on stdout. */
export function longProc(cmd: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (d: Buffer) => ((out += d.toString()), waiters.splice(0).forEach((w) => w())));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((r) => child.once("exit", (code, sig) => (waiters.splice(0).forEach((w) => w()), r(code ?? (sig ? -1 : 0)))));
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    exited,
    out: () => out,
    err: () => err,
    async until(pred: (s: string) => boolean, ms: number): Promise<boolean> {
      const t0 = Date.now();
      while (!pred(out)) {
        if (done || Date.now() - t0 > ms) return pred(out);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
      return true;
    },
  };
}

/** A UDP echo server, "echo:" + datagram back to the sender, built static with gcc (the busybox image has none). */
const UDP_ECHO_C = `#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1])); a.sin_addr.s_addr = INADDR_ANY;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) return 1;
  for (;;) {
    char b[1500] = "echo:"; struct sockaddr_in p; socklen_t pl = sizeof p;
    ssize_t n = recvfrom(s, b + 5, sizeof b - 5, 0, (struct sockaddr *)&p, &pl);
    if (n >= 0) sendto(s, b, n + 5, 0, (struct sockaddr *)&p, pl);
  }
}
`;

export function buildUdpEcho(dir: string): Promise<Ran> {
  writeFileSync(join(dir, "udpecho.c"), UDP_ECHO_C);
  return runProc("gcc", ["-static", "-Os", "-o", join(dir, "udpecho"), join(dir, "udpecho.c")], process.env, 120_000);
}

function udpAsk(port: number, msg: string, tries: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    let n = 0;
    const send = () => {
      if (n++ >= tries) return (clearInterval(timer), s.close(), resolve(undefined));
      s.send(msg, port, "127.0.0.1");
    };
    const timer = setInterval(send, 500);
    s.on("message", (m) => (clearInterval(timer), s.close(), resolve(m.toString())));
    s.on("error", () => undefined);
    send();
  });
}

export interface DockerHarness {
  state: () => string;
  shared: () => string;
  docker: (args: string[], timeoutMs?: number, input?: Buffer) => Promise<Ran>;
  env: () => NodeJS.ProcessEnv;
  /** The image the build test made (busybox plus /udpecho). */
  builtImage: string;
  baseImage: string;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export function dockerCliChecks(h: DockerHarness): void {
  const { docker } = h;

  it("home and /tmp are shared by default: `docker run -v /tmp/DIR:/src` without `start -v`; files keep the host user as owner, a container user sees itself as a file's owner", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-pwd-"));
    try {
      const token = randomBytes(8).toString("hex");
      writeFileSync(join(dir, "in.txt"), token);
      const r = await docker(["run", "--rm", "-v", `${dir}:/src`, "-w", "/src", h.baseImage, "sh", "-c", "cat in.txt && echo made-inside > out.txt && stat -c %u in.txt out.txt"]);
      expect(r.code, r.stderr).to.equal(0);
      // in.txt has no newline: the token runs into the first uid.
      expect(r.stdout).to.equal(`${token}0\n0\n`);
      expect(readFileSync(join(dir, "out.txt"), "utf8")).to.equal("made-inside\n");
      expect(statSync(join(dir, "out.txt")).uid).to.equal(process.getuid!());
      // Another container user sees itself as the owner of a file (the osxfs rule of src/share/ownership.ts).
      chmodSync(dir, 0o755);
      const u = await docker(["run", "--rm", "--user", "1234", "-v", `${dir}:/src`, h.baseImage, "sh", "-c", "stat -c %u /src/in.txt && cat /src/in.txt"]);
      expect(u.code, u.stderr).to.equal(0);
      expect(u.stdout).to.equal(`1234\n${token}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the docker context `skiff` reaches dockerd without DOCKER_HOST", async () => {
    const env = { ...h.env() };
    delete env.DOCKER_HOST;
    const r = await runProc(DOCKER, ["--context", "skiff", "version", "--format", "{{.Server.Os}}"], env, 60_000);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal("linux");
    const ls = await runProc(DOCKER, ["context", "inspect", "--format", "{{.Endpoints.docker.Host}}", "skiff"], env, 60_000);
    expect(ls.stdout.trim()).to.equal(`unix://${join(h.state(), "docker.sock")}`);
  });

  {
    // One running container for exec, cp and stats (the image with busybox's applets installed,
    // so `docker exec … sh` finds a shell); the stats check, last, removes it. Not a nested
    // describe: mocha would run it after the suite's stop/start and crash checks.
    let running: Promise<string> | undefined;
    const name = `skiff-e2e-${randomBytes(4).toString("hex")}`;
    const container = () =>
      (running ??= docker(["run", "-d", "--name", name, h.builtImage, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]).then((r) => {
        expect(r.code, r.stderr).to.equal(0);
        return r.stdout.trim();
      }));

    it("`docker exec -it` under a pty: a shell with a terminal, its input and exit status", async () => {
      const id = await container();
      const p = longProc("script", ["-qefc", `${DOCKER} exec -it ${id} sh`, "/dev/null"], h.env());
      p.child.stdin.write("tty; echo in-$((6*7)); exit 5\n");
      const timer = setTimeout(() => p.child.kill(), 120_000);
      const code = await p.exited;
      clearTimeout(timer);
      p.child.stdin.destroy();
      expect(p.out(), p.err()).to.match(/\/dev\/pts\/\d+/);
      expect(p.out()).to.include("in-42");
      expect(code).to.equal(5);
    });

    it("`docker cp` both ways (1 MiB, SHA-256 equal)", async () => {
      const id = await container();
      const dir = mkdtempSync(join(tmpdir(), "skiff-cp-"));
      try {
        const blob = randomBytes(1 << 20);
        writeFileSync(join(dir, "in.bin"), blob);
        const cin = await docker(["cp", join(dir, "in.bin"), `${id}:/in.bin`]);
        expect(cin.code, cin.stderr).to.equal(0);
        const sum = await docker(["exec", id, "sha256sum", "/in.bin"]);
        expect(sum.stdout.split(/\s+/)[0]).to.equal(sha(blob));
        const mk = await docker(["exec", id, "sh", "-c", "head -c 1048576 /dev/urandom > /out.bin && sha256sum /out.bin"]);
        expect(mk.code, mk.stderr).to.equal(0);
        const cout = await docker(["cp", `${id}:/out.bin`, join(dir, "out.bin")]);
        expect(cout.code, cout.stderr).to.equal(0);
        expect(sha(readFileSync(join(dir, "out.bin")))).to.equal(mk.stdout.split(/\s+/)[0]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("`docker stats --no-stream` shows the container's memory and processes", async () => {
      const id = await container();
      const r = await docker(["stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}", id]);
      await docker(["rm", "-f", id]);
      expect(r.code, r.stderr).to.equal(0);
      const [n, mem, pids] = r.stdout.trim().split("|");
      expect(n).to.equal(name);
      expect(mem).to.match(/^\d+(\.\d+)?[KMG]i?B \/ \d+(\.\d+)?[KMG]i?B$/);
      expect(Number(pids)).to.be.greaterThan(0);
    });
  }

  it("`docker logs -f` follows a container while it writes and returns when it stops", async () => {
    const run = await docker(["run", "-d", "-v", `${h.shared()}:/data`, h.baseImage, "sh", "-c", "echo first; while [ ! -e /data/go ]; do sleep 0.2; done; echo last"]);
    expect(run.code, run.stderr).to.equal(0);
    const id = run.stdout.trim();
    try {
      const p = longProc(DOCKER, ["logs", "-f", id], h.env());
      expect(await p.until((s) => s.includes("first\n"), 60_000), p.err()).to.equal(true);
      // Still following: the container waits for the file.
      expect(p.out()).to.equal("first\n");
      writeFileSync(join(h.shared(), "go"), "");
      const timer = setTimeout(() => p.child.kill(), 60_000);
      expect(await p.exited).to.equal(0);
      clearTimeout(timer);
      expect(p.out()).to.equal("first\nlast\n");
    } finally {
      rmSync(join(h.shared(), "go"), { force: true });
      await docker(["rm", "-f", id]);
    }
  });

  it("`docker events` reports a container's create, start and die", async () => {
    const name = `skiff-ev-${randomBytes(4).toString("hex")}`;
    const since = String(Math.floor(Date.now() / 1000) - 60);
    const r = await docker(["run", "--name", name, h.baseImage, "true"]);
    expect(r.code, r.stderr).to.equal(0);
    const ev = longProc(DOCKER, ["events", "--since", since, "--filter", `container=${name}`, "--format", "{{.Action}}"], h.env());
    const seen = await ev.until((s) => /^die$/m.test(s), 60_000);
    ev.child.kill();
    await docker(["rm", "-f", name]);
    expect(seen, ev.out() + ev.err()).to.equal(true);
    const actions = ev.out().trim().split("\n");
    for (const a of ["create", "start", "die"]) expect(actions, ev.out()).to.include(a);
    expect(actions.indexOf("start")).to.be.lessThan(actions.indexOf("die"));
  });

  it("`docker save` then `docker load` of an image removed in between; it runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-load-"));
    try {
      const tag = "skiff-test/loaded:1";
      expect((await docker(["tag", h.baseImage, tag])).code).to.equal(0);
      const s = await docker(["save", "-o", join(dir, "img.tar"), tag]);
      expect(s.code, s.stderr).to.equal(0);
      expect((await docker(["rmi", tag])).code).to.equal(0);
      expect((await docker(["image", "inspect", tag])).code).to.not.equal(0);
      const l = await docker(["load", "-i", join(dir, "img.tar")]);
      expect(l.code, l.stderr).to.equal(0);
      expect(l.stdout).to.include(`Loaded image: ${tag}`);
      const r = await docker(["run", "--rm", tag, "sh", "-c", "echo loaded-ok"]);
      expect(r.stdout.trim(), r.stderr).to.equal("loaded-ok");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("-P publishes the exposed port on the host (docker port names it) and it answers, over IPv4 and IPv6", async () => {
    const run = await docker(["run", "-d", "-P", "--expose", "80", h.baseImage, "sh", "-c", "mkdir -p /www && echo hello-P > /www/index.html && exec httpd -f -p 80 -h /www"]);
    expect(run.code, run.stderr).to.equal(0);
    const id = run.stdout.trim();
    try {
      const port = await docker(["port", id, "80/tcp"]);
      const m = /0\.0\.0\.0:(\d+)/.exec(port.stdout);
      expect(m, port.stdout + port.stderr).to.not.equal(null);
      expect(await httpUntil(Number(m![1]), 60_000)).to.deep.equal({ status: 200, body: "hello-P\n" });
      // dockerd binds [::] beside 0.0.0.0 (the guest has IPv6): the host's ::1 answers as well.
      const m6 = /(?:\[::\]|:::?):(\d+)/.exec(port.stdout);
      expect(m6, `docker port shows no IPv6 binding: ${port.stdout}`).to.not.equal(null);
      expect(await httpGetOnce(`http://[::1]:${m6![1]}/`)).to.deep.equal({ status: 200, body: "hello-P\n" });
    } finally {
      await docker(["rm", "-f", id]);
    }
  });

  it("-p 127.0.0.1:N:7/udp: datagrams reach the container's UDP server and its answers come back; rm -f frees the port", async () => {
    const port = await freePort("udp");
    const run = await docker(["run", "-d", "-p", `127.0.0.1:${port}:7/udp`, "--entrypoint", "/udpecho", h.builtImage, "7"]);
    expect(run.code, run.stderr).to.equal(0);
    const id = run.stdout.trim();
    try {
      expect(await udpAsk(port, "ping-udp", 60)).to.equal("echo:ping-udp");
    } finally {
      await docker(["rm", "-f", id]);
    }
    const s = createSocket("udp4");
    await new Promise<void>((resolve, reject) => (s.once("error", reject), s.bind(port, "127.0.0.1", resolve)));
    s.close();
  });
}
