/** skiff docker's state directory (src/desktop/state.ts): one instance, stale detection, private files. */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanStale, ensureStateDir, openPrivate, readPid, runningDaemon, writePid } from "../../src/desktop/state.js";

describe("desktop/state: the state directory", () => {
  let base: string;
  beforeEach(() => (base = mkdtempSync(join(tmpdir(), "skiff-state-"))));
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it("is created 0700; a symlink in its place is refused", () => {
    const p = ensureStateDir(join(base, "a", "docker"));
    expect(statSync(p.dir).mode & 0o777).to.equal(0o700);
    symlinkSync(p.dir, join(base, "link"));
    expect(() => ensureStateDir(join(base, "link"))).to.throw(/not a directory/);
  });

  it("the pid file is exclusive and private; openPrivate never follows a planted link", () => {
    const p = ensureStateDir(join(base, "d"));
    writePid(p, { pid: 123, qemuPid: 0 }, true);
    expect(() => writePid(p, { pid: 124, qemuPid: 0 }, true)).to.throw(/EEXIST/);
    expect(statSync(p.pid).mode & 0o777).to.equal(0o600);
    writePid(p, { pid: 123, qemuPid: 456 }, false);
    expect(readPid(p)).to.deep.equal({ pid: 123, qemuPid: 456 });
    writeFileSync(join(base, "target"), "x");
    symlinkSync(join(base, "target"), p.consoleLog);
    expect(() => openPrivate(p.consoleLog)).to.throw(/ELOOP/);
  });

  it("a dead daemon's pid file is stale: cleaned with its sockets", async () => {
    const p = ensureStateDir(join(base, "d"));
    const child = spawn(process.execPath, ["-e", "0"]);
    const pid = child.pid!;
    await new Promise((r) => child.once("exit", r));
    writePid(p, { pid, qemuPid: 0 }, true);
    writeFileSync(p.dockerSock, "");
    expect(runningDaemon(p)).to.equal(undefined);
    expect(cleanStale(p)).to.equal(`stale state of daemon ${pid}`);
    expect(existsSync(p.pid)).to.equal(false);
    expect(existsSync(p.dockerSock)).to.equal(false);
  });

  it("a live process that is not a skiff docker daemon (a reused pid) does not count as running", async () => {
    const p = ensureStateDir(join(base, "d"));
    const child = spawn("sleep", ["30"]);
    try {
      writePid(p, { pid: child.pid!, qemuPid: 0 }, true);
      expect(runningDaemon(p)).to.equal(undefined);
      expect(cleanStale(p)).to.match(/^stale state/);
    } finally {
      child.kill();
    }
  });

  it("a live skiff docker daemon is running and is left alone", async () => {
    const p = ensureStateDir(join(base, "d"));
    // A process whose command line reads like the daemon's.
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)", "docker", "daemon", "--state-dir", p.dir]);
    try {
      await new Promise((r) => setTimeout(r, 100));
      writePid(p, { pid: child.pid!, qemuPid: 0 }, true);
      expect(runningDaemon(p)).to.deep.equal({ pid: child.pid, qemuPid: 0 });
      expect(cleanStale(p)).to.equal(undefined);
      expect(existsSync(p.pid)).to.equal(true);
    } finally {
      child.kill();
    }
  });
});
