/**
 * The CLI's on-demand loading (src/cli/main.ts, issue 20: idle memory): `skiff --help` and
 * `skiff help` still list every subcommand, the lazily loaded ones (forward, vm, docker, pcap)
 * run, and a `skiff run` command line loads neither their modules' Node built-ins (node:zlib,
 * node:http) nor the control API server. Runs the built CLI (bin/skiff.js, dist/cli.cjs).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "bin", "skiff.js");

function skiff(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe("cli: subcommands loaded on demand", () => {
  before(() => {
    expect(existsSync(join(root, "dist", "cli.cjs")), "dist/cli.cjs is built by `npm ci` (prepare) or `npm run build`").to.equal(true);
  });

  it("--help and help list every subcommand", () => {
    for (const args of [["--help"], ["help"]]) {
      const r = skiff(...args);
      expect(r.status, r.out).to.equal(0);
      for (const c of ["run", "vpnkit", "serve", "slirp4netns", "forward", "vm", "docker", "pcap"]) expect(r.out, `${args.join(" ")} lists ${c}`).to.match(new RegExp(`^  ${c}\\b`, "m"));
    }
  });

  it("the lazily loaded subcommands run (help of vm, docker, forward, pcap inspect)", () => {
    for (const args of [["vm", "--help"], ["docker", "--help"], ["forward", "--help"], ["pcap", "inspect", "--help"]]) {
      const r = skiff(...args);
      expect(r.status, `${args.join(" ")}: ${r.out}`).to.equal(0);
      expect(r.out).to.include(`Usage: skiff ${args.slice(0, -1).join(" ")}`);
    }
  });

  it("a `skiff run` command line loads neither node:zlib nor node:http", () => {
    const script = `
      const { main } = require(${JSON.stringify(join(root, "dist", "cli.cjs"))});
      main(["node", "skiff", "run", "--help"]).then((status) => {
        const loaded = process.moduleLoadList.filter((m) => /^NativeModule (zlib|http|_http_server)$/.test(m));
        process.stderr.write("\\nLOADED " + JSON.stringify({ status, loaded }) + "\\n");
      });`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 30_000 });
    const line = /LOADED (.*)/.exec(r.stderr);
    expect(line, r.stdout + r.stderr).to.not.equal(null);
    expect(JSON.parse(line![1])).to.deep.equal({ status: 0, loaded: [] });
  });
});
