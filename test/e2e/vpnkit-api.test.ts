/**
 * `skiff vpnkit --api-socket PATH`: the control API next to the vmnet socket (owner-only),
 * and both sockets gone after SIGTERM.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { apiRequest } from "../../src/forward/client.js";
import { until } from "../support/wait.js";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "skiff.js");

describe("e2e: skiff vpnkit --api-socket", function () {
  this.timeout(20_000);
  it("serves the API owner-only, refuses a forward without guestAddr, and removes both sockets on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-vk-"));
    const eth = join(dir, "eth.sock");
    const api = join(dir, "api.sock");
    const p = spawn(process.execPath, [bin, "vpnkit", "--ethernet", eth, "--mtu", "1500", "--api-socket", api, "--log-level", "warn"], { stdio: "ignore" });
    try {
      await until(() => existsSync(api) && existsSync(eth), 10_000, "sockets created");
      expect(statSync(api).mode & 0o777).to.equal(0o600);
      const stats = await apiRequest(api, "GET", "/stats");
      expect(stats.status).to.equal(200);
      expect(stats.body).to.have.property("attachments");
      const bad = await apiRequest(api, "POST", "/forwards", { proto: "tcp", hostPort: 0, guestPort: 80 });
      expect(bad.status).to.equal(400);
      expect(JSON.stringify(bad.body)).to.match(/guestAddr/);
      p.kill("SIGTERM");
      const code = await new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
      expect(code).to.equal(0);
      expect(existsSync(api) || existsSync(eth)).to.equal(false);
    } finally {
      p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
