import { expect } from "chai";
import fc from "fast-check";
import { execFileSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { readCpio, writeCpio, writeInitramfs, type CpioEntry } from "../../src/vm/initramfs.js";

const nameArb = fc.stringMatching(/^[a-z0-9_]{1,12}(\/[a-z0-9_.]{1,12}){0,2}$/);
const entryArb: fc.Arbitrary<CpioEntry> = fc.oneof(
  fc.record({ kind: fc.constant("dir" as const), name: nameArb }),
  fc.record({ kind: fc.constant("file" as const), name: nameArb, data: fc.uint8Array({ maxLength: 300 }), mode: fc.constantFrom(0o644, 0o755) }),
  fc.record({ kind: fc.constant("symlink" as const), name: nameArb, target: nameArb }),
);

function haveCpio(): boolean {
  try {
    execFileSync("cpio", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("vm/initramfs newc cpio writer", () => {
  it("readCpio(writeCpio(entries)) gives the entries back, sorted by name, 4-byte aligned", () => {
    fc.assert(
      fc.property(fc.uniqueArray(entryArb, { selector: (e) => e.name, maxLength: 12 }), (entries) => {
        const bytes = writeCpio(entries, 1234);
        expect(bytes.length % 4).to.equal(0);
        const back = readCpio(bytes);
        const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        expect(back.map((r) => r.name)).to.deep.equal(sorted.map((e) => e.name));
        back.forEach((r, i) => {
          const e = sorted[i];
          expect(r.mtime).to.equal(1234);
          if (e.kind === "file") {
            expect(r.mode).to.equal(0o100000 | e.mode!);
            expect(Buffer.from(r.data).equals(Buffer.from(e.data))).to.equal(true);
          } else if (e.kind === "dir") {
            expect(r.mode & 0o170000).to.equal(0o040000);
          } else if (e.kind === "symlink") {
            expect(r.mode).to.equal(0o120777);
            expect(new TextDecoder().decode(r.data)).to.equal(e.target);
          }
        });
      }),
    );
  });

  it("is reproducible: the same entries in any order give the same bytes", () => {
    const entries: CpioEntry[] = [
      { kind: "file", name: "init", data: new Uint8Array([1, 2, 3]), mode: 0o755 },
      { kind: "dir", name: "bin" },
      { kind: "symlink", name: "bin/sh", target: "busybox" },
    ];
    const a = writeInitramfs(entries);
    const b = writeInitramfs([...entries].reverse());
    expect(Buffer.from(a).equals(Buffer.from(b))).to.equal(true);
    expect(readCpio(gunzipSync(a)).map((r) => r.name)).to.deep.equal(["bin", "bin/sh", "init"]);
  });

  it("writes a character device with its rdev (dev/console 5:1)", () => {
    const bytes = writeCpio([{ kind: "chardev", name: "dev/console", major: 5, minor: 1 }]);
    const h = new TextDecoder().decode(bytes.subarray(0, 110));
    expect(parseInt(h.slice(14, 22), 16)).to.equal(0o020600); // mode
    expect(parseInt(h.slice(78, 86), 16)).to.equal(5); // rdevmajor
    expect(parseInt(h.slice(86, 94), 16)).to.equal(1); // rdevminor
  });

  it("GNU cpio lists the archive the same way", function () {
    if (!haveCpio()) {
      console.log("      (skipped: the cpio tool is not installed — apt-get install cpio)");
      this.skip();
    }
    const bytes = writeCpio([
      { kind: "dir", name: "etc" },
      { kind: "file", name: "etc/hosts", data: new TextEncoder().encode("127.0.0.1 localhost\n") },
      { kind: "symlink", name: "etc/link", target: "hosts" },
      { kind: "chardev", name: "dev/console", major: 5, minor: 1 },
    ]);
    const listed = execFileSync("cpio", ["-t", "--quiet"], { input: bytes, encoding: "utf8" });
    expect(listed.trim().split("\n")).to.deep.equal(["dev/console", "etc", "etc/hosts", "etc/link"]);
  });

  it("readCpio rejects a damaged archive instead of reading past it", () => {
    const bytes = writeCpio([{ kind: "file", name: "a", data: new Uint8Array(40) }]);
    expect(() => readCpio(bytes.subarray(0, 60))).to.throw(/truncated/);
    const bad = bytes.slice();
    bad[0] = 0x39;
    expect(() => readCpio(bad)).to.throw(/magic/);
  });
});
