/** The system tree's fixed times and digest (src/desktop/tree.ts): same contents, same digest; any change shows. */
import { expect } from "chai";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixTimes, treeBytes, treeDigest, treePaths } from "../../src/desktop/tree.js";

function makeTree(base: string, order: string[]): string {
  const root = mkdtempSync(join(base, "t-"));
  for (const name of order) {
    if (name === "dir") mkdirSync(join(root, "dir/sub"), { recursive: true });
    if (name === "file") writeFileSync(join(root, "dir/file"), "hello", { mode: 0o644 });
    if (name === "link") symlinkSync("file", join(root, "dir/link"));
  }
  chmodSync(join(root, "dir/file"), 0o644);
  return root;
}

describe("desktop/tree: reproducible system tree", () => {
  let base: string;
  beforeEach(() => (base = mkdtempSync(join(tmpdir(), "skiff-tree-"))));
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it("two trees made in another order at other times have the same digest once their times are fixed", async () => {
    const a = makeTree(base, ["dir", "file", "link"]);
    await new Promise((r) => setTimeout(r, 1100));
    const b = makeTree(base, ["dir", "link", "file"]);
    expect(treeDigest(a)).to.not.equal(treeDigest(b)); // directory and file mtimes differ
    for (const t of [a, b]) fixTimes(t, ["dir/file", "dir/link"], 946684800);
    expect(treeDigest(a)).to.equal(treeDigest(b));
    expect(treePaths(a)).to.deep.equal(["dir", "dir/file", "dir/link", "dir/sub"]);
    expect(treeBytes(a)).to.equal(5);
    chmodSync(join(b, "dir/file"), 0o600);
    expect(treeDigest(a)).to.not.equal(treeDigest(b));
    chmodSync(join(b, "dir/file"), 0o644);
    writeFileSync(join(b, "dir/file"), "hellO");
    fixTimes(b, ["dir/file"], 946684800);
    expect(treeDigest(a)).to.not.equal(treeDigest(b));
  });
});
