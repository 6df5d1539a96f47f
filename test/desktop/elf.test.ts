/** The DT_NEEDED reader (src/desktop/elf.ts) against real binaries and broken input. */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { elfDeps, isElf } from "../../src/desktop/elf.js";

describe("desktop/elf: DT_NEEDED and PT_INTERP", () => {
  it("reads node's libraries and interpreter as readelf does", function () {
    const bin = readFileSync(process.execPath);
    const deps = elfDeps(bin);
    expect(deps).to.not.equal(undefined);
    let readelf: string;
    try {
      readelf = execFileSync("readelf", ["-d", process.execPath], { encoding: "utf8" });
    } catch {
      console.log("      (skipped the comparison: readelf (binutils) is not installed)");
      return this.skip();
    }
    const want = [...readelf.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(want.length).to.be.greaterThan(0);
    expect(deps!.needed).to.deep.equal(want);
    expect(deps!.interp).to.match(/^\/lib64\/ld-linux-x86-64\.so\.2$/);
  });

  it("a static binary has no needs and no interpreter", () => {
    const deps = elfDeps(readFileSync("/bin/busybox"));
    expect(deps).to.deep.equal({ needed: [], interp: undefined });
  });

  it("non-ELF, truncated and corrupted input give undefined, never a throw", () => {
    expect(isElf(new TextEncoder().encode("#!/bin/sh\n"))).to.equal(false);
    expect(elfDeps(new TextEncoder().encode("#!/bin/sh\n"))).to.equal(undefined);
    const bin = readFileSync(process.execPath);
    expect(elfDeps(bin.subarray(0, 40))).to.equal(undefined);
    expect(elfDeps(bin.subarray(0, 4096))).to.equal(undefined);
    const bad = Buffer.from(bin.subarray(0, 64));
    bad.writeBigUInt64LE(0xffffffffn, 0x20); // program headers beyond the end
    expect(elfDeps(bad)).to.equal(undefined);
  });
});
