/**
 * Issue 19, "resources": file descriptors. A child skiff process runs under a lowered open-file
 * limit (`prlimit --nofile=300:400`): its soft limit is the hard one (Node raises it at start;
 * fd-budget.ts would otherwise; its unit test covers that), its
 * guest opens TCP connections to a server in this process until the budget (limit - reserve -
 * what was open) is spent, and then new guest connections are refused cleanly (RST), counted,
 * and logged once, while the control API and the DNS server keep answering. Before the fix the
 * flows took every descriptor and the API's accept() failed (EMFILE), with nothing logged.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";

const CHILD = fileURLToPath(new URL("../support/fd-child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

describe("e2e: the file-descriptor budget (child process under prlimit)", function () {
  this.timeout(60_000);
  let server: Server;
  const accepted: Socket[] = [];
  let dir: string;

  before(function () {
    if (spawnSync("prlimit", ["--version"]).status !== 0) {
      console.log("    skipped: prlimit (util-linux) is not installed");
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "skiff-fd-"));
  });
  after(() => {
    for (const s of accepted) s.destroy();
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs at the hard limit, refuses guest connections past the budget with RST, logs once, and the API and DNS still answer", async () => {
    // The child resets its host connections when it closes (TcpLayer.close): expected here.
    server = createServer((s) => {
      s.on("error", () => {});
      accepted.push(s);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const child = spawn("prlimit", ["--nofile=300:400", process.execPath, "--import", "tsx", CHILD], {
      cwd: ROOT,
      env: { ...process.env, FD_CHILD_PORT: String(port), FD_CHILD_API: join(dir, "api.sock"), FD_CHILD_SYNS: "600" },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code, `child failed: ${err.slice(-2000)}`).to.equal(0);
    const res = JSON.parse(out.trim().split("\n").pop()!);
    const logs = err
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(res.nofile, "soft limit raised to the hard one").to.deep.equal([400, 400]);
    expect(logs.filter((l) => /fd budget: host sockets/.test(l.msg)).map((l) => (l as unknown as { limit: number }).limit)).to.deep.equal([400]);
    expect(res.budget).to.be.a("number").and.be.greaterThan(0).and.below(400 - 256);
    expect(res.synAcks, "connections accepted up to the budget").to.equal(res.budget);
    expect(res.tcpTranslate.fdBudgetRefused).to.equal(600 - res.budget);
    expect(res.rsts).to.equal(600 - res.budget);
    expect(logs.filter((l) => /file descriptors for host sockets are spent/.test(l.msg)), "warned once").to.have.length(1);
    expect(res.apiStatus, "control API").to.equal(200);
    expect(res.fdBudgetStats.refused).to.equal(600 - res.budget);
    expect(res.dnsAnswered, "DNS").to.equal(true);
  });
});
