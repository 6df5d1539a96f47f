/**
 * `skiff --version` (and -V) prints the package's version and exits 0, from the built command
 * as users run it; and the version lookup walks up to skiff's own package.json.
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, root, skiff } from "../support/cli.js";
import { skiffVersion } from "../../src/cli/version.js";

describe("cli: skiff --version", function () {
  this.timeout(30_000);
  const want = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

  for (const flag of ["--version", "-V"]) {
    it(`${flag} prints ${want} (package.json's version) and exits 0`, async () => {
      const r = await skiff([flag]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(want);
    });
  }

  it("finds package.json from the built CLI's place and from the source's", () => {
    expect(skiffVersion(join(root, "dist", "cli.js"))).to.equal(want);
    expect(skiffVersion(bin)).to.equal(want);
    expect(skiffVersion("/no/such/dir/cli.js")).to.equal("unknown");
  });
});
