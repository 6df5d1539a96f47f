/**
 * Options every command shares, through the built `skiff` command: one `--mtu` range
 * (576..65521, args.ts) with one message, and one `--log-level` default (warn), so a normal
 * start prints nothing (serve and vpnkit used to print a JSON line at every start) unless
 * asked with `--log-level info`.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, skiff } from "../support/cli.js";
import { until } from "../support/wait.js";

/** Start a long-running command, wait for `ready` (a path) to appear, stop it with SIGTERM. */
async function startAndStop(args: string[], ready: string): Promise<{ code: number | null; stderr: string }> {
  const p = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  p.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
  try {
    await until(() => existsSync(ready), 10_000, `${ready} to appear`);
    p.kill("SIGTERM");
    return { code: await exited, stderr };
  } finally {
    p.kill("SIGKILL");
  }
}

describe("cli: options shared by every command", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "skiff-opts-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const commands: Array<[string, string[]]> = [
    ["run", ["run", "--mtu", "MTU", "--", "true"]],
    ["serve", ["serve", "--mtu", "MTU", "--qemu-stream", "unix:/nonexistent/q.sock"]],
    ["vpnkit", ["vpnkit", "--mtu", "MTU", "--ethernet", "/nonexistent/v.sock"]],
    ["vm run", ["vm", "run", "--mtu", "MTU", "--", "true"]],
  ];
  for (const [name, args] of commands) {
    it(`skiff ${name}: --mtu outside 576..65521 is a usage error naming that range`, async () => {
      for (const bad of ["575", "65522"]) {
        const r = await skiff(args.map((a) => (a === "MTU" ? bad : a)), 10_000);
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stderr).to.match(/--mtu.*expected an integer in 576\.\.65521/);
      }
    });
    it(`skiff ${name}: --log-level takes pino's levels only`, async () => {
      const r = await skiff([...args.slice(0, args.indexOf("--mtu")), "--log-level", "loud", ...args.slice(args.indexOf("--mtu"))].map((a) => (a === "MTU" ? "1500" : a)), 10_000);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(/--log-level.*expected one of fatal, error, warn, info, debug, trace, silent/);
    });
  }

  it("skiff serve at MTU 65521 starts and stops printing nothing; --log-level info prints its start", async () => {
    const sock = join(dir, "q.sock");
    const quiet = await startAndStop(["serve", "--mtu", "65521", "--qemu-stream", `unix:${sock}`], sock);
    expect(quiet.code, quiet.stderr).to.equal(0);
    expect(quiet.stderr).to.equal("");
    const loud = await startAndStop(["serve", "--log-level", "info", "--qemu-stream", `unix:${sock}`], sock);
    expect(loud.code, loud.stderr).to.equal(0);
    expect(loud.stderr).to.match(/"msg":"serve: ready"/);
  });

  it("skiff vpnkit starts and stops printing nothing", async () => {
    const sock = join(dir, "v.sock");
    const r = await startAndStop(["vpnkit", "--ethernet", sock], sock);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal("");
  });
});
