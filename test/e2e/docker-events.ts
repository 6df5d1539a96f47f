/**
 * File events through `skiff docker`'s shares (issue 16, "file events reach watchers inside
 * containers"), registered into test/e2e/docker.test.ts's suite (its one VM boot): the guest's
 * agent (native/guest-agent.c, in the docker image and started for each share by stage 2) replays
 * host changes through the 9P mount, so a recursive inotify watcher in a container with a bind
 * mount of a shared directory (`skiff-agent watch`, copied into an image by `docker build`) sees
 * a host-side create, modify, rename and delete at depth 2 and more in the `start -v` share, and
 * in the default /tmp share in a directory made after more directories than the agent's pin
 * budget (the suite starts with --watch-dirs 64; pinned on demand when the container's bind
 * mount walks to it); the
 * latency from the host's change to the watcher's line (through
 * `docker run`'s output stream) is printed. A host watcher sees a container's writes. The agent
 * pins directories of the shares only (its descriptors, read in the guest through a privileged
 * container in the VM's namespaces), never the docker data disk or the guest's system. A
 * non-root container user creates a file in a directory the host made, with no `ls -ld` first.
 */
import { expect } from "chai";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentSourcePath } from "../../src/vm/agent.js";
import { DOCKER, longProc, type DockerHarness } from "./docker-cli.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Lines of a stream with their arrival times, and a wait for one after a given time. */
function lineClock(onData: (cb: (d: Buffer) => void) => void) {
  const seen: { line: string; at: number }[] = [];
  let buf = "";
  onData((d) => {
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      seen.push({ line: buf.slice(0, i), at: performance.now() });
      buf = buf.slice(i + 1);
    }
  });
  return {
    text: () => seen.map((l) => l.line).join("\n"),
    count: (re: RegExp) => seen.filter((l) => re.test(l.line)).length,
    async wait(re: RegExp, after: number, ms: number): Promise<number> {
      const t0 = Date.now();
      for (;;) {
        const hit = seen.find((l) => l.at >= after && re.test(l.line));
        if (hit) return hit.at;
        if (Date.now() - t0 > ms) throw new Error(`no line matching ${re} within ${ms} ms; lines:\n${seen.map((l) => l.line).join("\n")}`);
        await sleep(20);
      }
    },
  };
}

export function dockerEventChecks(h: DockerHarness & { watchImage: string }): void {
  const { docker } = h;
  let built: Promise<void> | undefined;
  /** An image with the agent (its `watch` mode) at /usr/bin/skiff-agent, built once. */
  const watchImage = () =>
    (built ??= (async () => {
      const ctx = mkdtempSync(join(tmpdir(), "skiff-watch-img-"));
      try {
        execFileSync("cc", ["-static", "-Os", "-o", join(ctx, "skiff-agent"), agentSourcePath()!]);
        writeFileSync(join(ctx, "Dockerfile"), `FROM ${h.builtImage}\nCOPY skiff-agent /usr/bin/skiff-agent\n`);
        const b = await docker(["build", "-q", "-t", h.watchImage, ctx]);
        expect(b.code, b.stderr).to.equal(0);
      } finally {
        rmSync(ctx, { recursive: true, force: true });
      }
    })());

  /** Host changes at depth ≥ 2 of `hostDir` reach a watcher in a container that bind-mounts it. */
  async function hostToContainer(hostDir: string, what: string): Promise<void> {
    await watchImage();
    const deep = join(hostDir, "a", "b");
    mkdirSync(join(deep, "c"), { recursive: true });
    writeFileSync(join(deep, "f.txt"), "one\n");
    const name = `skiff-watch-${Date.now().toString(36)}`;
    const p = longProc(DOCKER, ["run", "--rm", "--name", name, "-v", `${hostDir}:/w`, "--entrypoint", "/usr/bin/skiff-agent", h.watchImage, "watch", "/w"], h.env());
    const lines = lineClock((cb) => p.child.stdout.on("data", cb));
    try {
      const gone = p.exited.then((code) => Promise.reject(new Error(`the watcher's container exited (${code}): ${p.err()}`)));
      gone.catch(() => {});
      await Promise.race([lines.wait(/^WATCHING/, 0, 120_000), gone]);
      await sleep(500);
      const steps: [string, () => void, RegExp[]][] = [
        ["create", () => writeFileSync(join(deep, "new.txt"), "x"), [/^EV CREATE \/w\/a\/b\/new\.txt$/]],
        ["modify", () => appendFileSync(join(deep, "f.txt"), "two\n"), [/^EV MODIFY \/w\/a\/b\/f\.txt$/]],
        ["rename", () => renameSync(join(deep, "new.txt"), join(deep, "c", "moved.txt")), [/^EV MOVED_FROM \/w\/a\/b\/new\.txt$/, /^EV MOVED_TO \/w\/a\/b\/c\/moved\.txt$/]],
        ["delete", () => rmSync(join(deep, "c", "moved.txt")), [/^EV DELETE \/w\/a\/b\/c\/moved\.txt$/]],
        ["mkdir", () => mkdirSync(join(deep, "d")), [/^EV CREATE,ISDIR \/w\/a\/b\/d$/]],
        ["create in it (depth 3)", () => writeFileSync(join(deep, "d", "g.txt"), "g"), [/^EV CREATE \/w\/a\/b\/d\/g\.txt$/]],
      ];
      const latencies: string[] = [];
      for (const [step, act, expected] of steps) {
        const t0 = performance.now();
        act();
        let worst = 0;
        for (const re of expected) worst = Math.max(worst, (await lines.wait(re, t0, 20_000)) - t0);
        latencies.push(`${step} ${worst.toFixed(0)} ms`);
        await sleep(200);
      }
      await sleep(1000);
      console.log(`      (${what}: host change → container watcher's line, TCG: ${latencies.join(", ")}; lines for the create: ${lines.count(/^EV CREATE \/w\/a\/b\/new\.txt$/)})`);
    } finally {
      await docker(["rm", "-f", name]);
      p.child.kill();
    }
  }

  it("host → container (the `start -v` share): create, modify, rename, delete at depth ≥ 2 reach an inotify watcher in a container within seconds", async () => {
    const dir = join(h.shared(), `ev-${Date.now().toString(36)}`);
    mkdirSync(dir);
    await hostToContainer(dir, "-v share");
  });

  it("host → container in the default /tmp share (no `start -v`), in a directory made after 100 others (past the agents' --watch-dirs 64: pinned on demand)", async () => {
    const top = mkdtempSync(join(tmpdir(), "skiff-docker-deep-"));
    try {
      for (let i = 0; i < 100; i++) mkdirSync(join(top, `f${i}`));
      // The agent replays the creations first (each pins its directory, recycling the least
      // recently used pins); a walk waits at most 500 ms for its pin behind such a burst.
      await sleep(15_000);
      const dir = join(top, "late");
      mkdirSync(dir);
      await hostToContainer(dir, "default /tmp share, beyond the pin budget");
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it("container → host: a container's writes at depth 2 reach an inotify watcher on the host", async () => {
    const dir = join(h.shared(), `g2h-${Date.now().toString(36)}`);
    mkdirSync(join(dir, "a", "b"), { recursive: true });
    const bin = join(mkdtempSync(join(tmpdir(), "skiff-hw-")), "watch");
    execFileSync("cc", ["-O2", "-o", bin, agentSourcePath()!]);
    const w = spawn(bin, ["watch", dir], { stdio: ["ignore", "pipe", "inherit"] });
    const host = lineClock((cb) => w.stdout!.on("data", cb));
    try {
      await host.wait(/^WATCHING/, 0, 10_000);
      const r = await docker(["run", "--rm", "-v", `${dir}:/w`, h.baseImage, "sh", "-c", "echo hi > /w/a/b/c.txt && mv /w/a/b/c.txt /w/a/b/d.txt && rm /w/a/b/d.txt"]);
      expect(r.code, r.stderr).to.equal(0);
      const H = `${dir}/a/b`;
      for (const re of [new RegExp(`^EV CREATE ${H}/c\\.txt$`), new RegExp(`^EV MODIFY ${H}/c\\.txt$`), new RegExp(`^EV MOVED_TO ${H}/d\\.txt$`), new RegExp(`^EV DELETE ${H}/d\\.txt$`)]) await host.wait(re, 0, 10_000);
    } finally {
      w.kill();
      rmSync(join(bin, ".."), { recursive: true, force: true });
    }
  });

  it("the agent pins directories of the shares only (not /var/lib/docker or the guest's system)", async () => {
    // A privileged container in the VM's PID and mount namespaces lists the agents' descriptors.
    const script = "for p in $(pidof skiff-agent); do readlink /proc/$p/cwd; for f in /proc/$p/fd/*; do readlink $f; done; done";
    const r = await docker(["run", "--rm", "--privileged", "--pid=host", h.baseImage, "nsenter", "-t", "1", "-m", "--", "/bin/busybox", "sh", "-c", script]);
    expect(r.code, r.stderr).to.equal(0);
    const paths = r.stdout.trim().split("\n").filter((l) => l.startsWith("/"));
    const mounts = (await docker(["run", "--rm", "--privileged", "--pid=host", h.baseImage, "nsenter", "-t", "1", "-m", "--", "/bin/busybox", "cat", "/proc/mounts"])).stdout;
    const shares = mounts.split("\n").filter((l) => / 9p /.test(l)).map((l) => l.split(" ")[1]);
    expect(shares.length, mounts).to.be.greaterThan(0);
    const pinned = paths.filter((p) => p !== "/" && !p.startsWith("/dev/"));
    expect(pinned.length, r.stdout).to.be.greaterThan(0);
    const outside = pinned.filter((p) => !shares.some((s) => p === s || p.startsWith(s + "/")));
    expect(outside, `descriptors outside the shares (${shares.join(", ")})`).to.deep.equal([]);
    expect(pinned.filter((p) => p.startsWith("/var/lib/docker"))).to.deep.equal([]);
    console.log(`      (agents: ${pinned.length} directories pinned in ${shares.length} 9P mounts)`);
  });

  it("a non-root container user (--user 1234) creates a file in a shared directory the host made (no `ls -ld` first)", async () => {
    const dir = join(h.shared(), `uid-${Date.now().toString(36)}`);
    mkdirSync(join(dir, "sub"), { recursive: true, mode: 0o755 });
    await sleep(1000);
    const r = await docker(["run", "--rm", "--user", "1234", "-v", `${dir}:/w`, h.baseImage, "sh", "-c", "touch /w/sub/u.txt; echo rc=$?; ls -ld /w/sub; touch /w/sub/u2.txt; echo rc2=$?"]);
    console.log(`      (--user 1234: ${JSON.stringify(r.stdout + r.stderr)})`);
    expect(r.stdout, r.stderr).to.match(/^rc=0$/m);
  });
}
