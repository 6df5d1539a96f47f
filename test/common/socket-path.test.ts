/**
 * Socket paths skiff binds (common/socket-path.ts): each unusable path is refused with a
 * message saying what is wrong with it; a live socket (stream listener, or a bound datagram
 * socket) is "in use by a running process" and left alone; a stale socket file is replaced.
 */
import { expect } from "chai";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, lstatSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSocketPath, prepareSocketPath, socketInUse } from "../../src/common/socket-path.js";

/** A Unix socket file bound by python3 (`kind` dgram or stream), not listening, then left behind. */
function boundSocketFile(path: string, kind: "DGRAM" | "STREAM"): void {
  execFileSync("python3", ["-c", `import socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_${kind}); s.bind(${JSON.stringify(path)})`]);
}

describe("common/socket-path: paths for Unix sockets skiff binds", function () {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-sockpath-"));
    mkdirSync(join(dir, "adir"));
    writeFileSync(join(dir, "afile"), "x");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a missing directory, a file as directory, a directory as the path, another kind of file: each says so", () => {
    expect(() => checkSocketPath(join(dir, "nope", "s.sock"), "--opt")).to.throw(`--opt ${join(dir, "nope", "s.sock")}: directory ${join(dir, "nope")} does not exist`);
    expect(() => checkSocketPath(join(dir, "afile", "s.sock"))).to.throw(/afile is not a directory/);
    expect(() => checkSocketPath(join(dir, "adir"))).to.throw(/adir is a directory/);
    expect(() => checkSocketPath(join(dir, "afile"))).to.throw(/afile exists and is not a socket/);
    expect(checkSocketPath(join(dir, "new.sock"))).to.equal(false);
  });

  it("a stale socket file (nobody holds it) is replaced", async () => {
    const p = join(dir, "stale.sock");
    boundSocketFile(p, "STREAM");
    expect(lstatSync(p).isSocket()).to.equal(true);
    expect(await socketInUse(p)).to.equal(false);
    await prepareSocketPath(p);
    expect(existsSync(p)).to.equal(false);
  });

  it("a stream listener of a running process is in use, and its file stays", async () => {
    const p = join(dir, "live.sock");
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(p, () => r()));
    try {
      let err: Error | undefined;
      await prepareSocketPath(p, "--vmnet").catch((e: Error) => (err = e));
      expect(err?.message).to.equal(`--vmnet ${p} is in use by a running process`);
      expect(existsSync(p)).to.equal(true);
    } finally {
      srv.close();
    }
  });

  it("a datagram socket a running process holds is in use too", async () => {
    const p = join(dir, "live.dgram");
    let child: ChildProcess | undefined;
    try {
      child = spawn("python3", ["-c", `import socket,time,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(${JSON.stringify(p)}); print("ok", flush=True); time.sleep(30)`], { stdio: ["ignore", "pipe", "inherit"] });
      await new Promise<void>((r) => child!.stdout!.once("data", () => r()));
      expect(await socketInUse(p)).to.equal(true);
    } finally {
      child?.kill("SIGKILL");
    }
    await new Promise((r) => setTimeout(r, 50));
    // Its holder gone, the file is stale.
    expect(await socketInUse(p)).to.equal(false);
  });
});
