/**
 * scripts/setup.sh (the CI entry's first step): it stops at once, saying how to get a new
 * enough Node.js, when the node on PATH is older than 20.19 (Debian 12's is 18) — before
 * touching apt or npm — and its package list provides the tools that tests skip without
 * (so CI runs those tests instead of skipping them).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root } from "../support/cli.js";

const setup = join(root, "scripts", "setup.sh");

/**
 * Run setup.sh with fake `node` (reporting `version`), `apt-get`, `dpkg-query` and `npm` first
 * on PATH; the fakes record that they ran in `ran` (nothing is installed or built).
 */
function runSetup(version: string): { code: number | null; stderr: string; ran: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "skiff-setup-"));
  try {
    const log = join(dir, "ran.log");
    const fake = (name: string, body: string) => {
      writeFileSync(join(dir, name), `#!/bin/sh\necho ${name} >> ${log}\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    };
    fake("node", `echo ${version}`);
    fake("apt-get", "exit 0");
    fake("dpkg-query", "printf 'install ok installed'");
    fake("npm", "exit 0");
    const r = spawnSync("bash", [setup], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: "utf8", timeout: 20_000 });
    const ran = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
    return { code: r.status, stderr: r.stderr, ran };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Debian package that owns `path` (merged /usr: dpkg may know it as /bin/... or /sbin/...). */
function debianPackageOf(path: string): string {
  for (const p of [path, path.replace(/^\/usr\//, "/")]) {
    const r = spawnSync("dpkg", ["-S", p], { encoding: "utf8" });
    if (r.status === 0) return r.stdout.split(":")[0];
  }
  return "(none)";
}

describe("scripts/setup.sh", function () {
  this.timeout(30_000);

  for (const old of ["18.19.0", "20.18.1"]) {
    it(`refuses node ${old} first, naming how to get >= 20.19, and runs neither apt nor npm`, () => {
      const r = runSetup(old);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.match(new RegExp(`node ${old.replace(/\./g, "\\.")} is too old \\(skiff needs >= 20\\.19\\)`));
      expect(r.stderr).to.match(/NodeSource/);
      expect(r.stderr).to.match(/nodejs\.org/);
      expect(r.ran).to.deep.equal(["node"]);
    });
  }

  it("goes on with node 20.19.0 (checks packages, then npm ci)", () => {
    const r = runSetup("20.19.0");
    expect(r.code, r.stderr).to.equal(0);
    expect(r.ran[0]).to.equal("node");
    expect(r.ran).to.include("npm");
  });

  it("installs the tools whose tests would otherwise skip (socat for the unbound-sender test, cpio, tshark, QEMU)", function () {
    const which = spawnSync("dpkg", ["--version"]);
    if (which.status !== 0) {
      console.log("      (skipped: not a Debian system: no dpkg to ask which package provides a tool)");
      this.skip();
    }
    const text = readFileSync(setup, "utf8");
    const list = /PACKAGES=\(([^)]*)\)/.exec(text);
    expect(list, "PACKAGES=(...) in setup.sh").to.not.equal(null);
    const packages = new Set(list![1].split(/\s+/).filter(Boolean));
    // Tool → the test that skips without it.
    const tools: Array<[string, string]> = [
      ["socat", "test/native/addon.test.ts"],
      ["cpio", "test/vm/initramfs.test.ts"],
      ["tshark", "test/pcap/inspect-tshark.test.ts"],
      ["qemu-system-x86_64", "test/e2e/vm.test.ts"],
    ];
    for (const [tool, test] of tools) {
      const path = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
      expect(path, `${tool} (needed by ${test}) is not installed`).to.not.equal("");
      const owner = debianPackageOf(spawnSync("readlink", ["-f", path], { encoding: "utf8" }).stdout.trim());
      expect(packages.has(owner), `${tool} comes from Debian package ${owner}, which setup.sh does not install (${test} skips without it)`).to.equal(true);
    }
  });
});
