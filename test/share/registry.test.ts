/** The share registry and the share/volume argument forms (`--share NAME=DIR[:ro]`, `-v HOST:GUEST[:ro]`). */
import { expect } from "chai";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ShareRegistry, parseShareArg } from "../../src/share/registry.js";
import { parseVolumes, sharesAppend } from "../../src/cli/vm.js";
import { tempDir } from "./client.js";

describe("share/registry: shares by name, added and removed at run time", () => {
  it("parses NAME=HOSTDIR[:ro] and refuses malformed forms", () => {
    expect(parseShareArg("src=/home/me/src")).to.deep.equal({ name: "src", path: "/home/me/src", readOnly: false });
    expect(parseShareArg("data=/srv/a:b:ro")).to.deep.equal({ name: "data", path: "/srv/a:b", readOnly: true });
    expect(() => parseShareArg("/no/name")).to.throw(/NAME=HOSTDIR/);
    expect(() => parseShareArg("x=")).to.throw(/no host directory/);
  });

  it("adds, lists, looks up (an empty aname picks the only share), removes; refuses duplicates, bad names, non-directories", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "");
    const r = new ShareRegistry();
    r.add({ name: "a", path: dir });
    expect(r.lookup("")?.name).to.equal("a");
    r.add({ name: "b", path: dir, readOnly: true });
    expect(r.lookup("")).to.equal(undefined);
    expect(r.lookup("b")?.readOnly).to.equal(true);
    expect(r.list().map((s) => s.name)).to.deep.equal(["a", "b"]);
    expect(() => r.add({ name: "a", path: dir })).to.throw(/already exists/);
    expect(() => r.add({ name: "bad/name", path: dir })).to.throw(/share name/);
    expect(() => r.add({ name: "f", path: join(dir, "file") })).to.throw(/cannot open|not a directory/);
    expect(() => r.add({ name: "m", path: join(dir, "missing") })).to.throw(/cannot open/);
    expect(r.remove("a")).to.equal(true);
    expect(r.remove("a")).to.equal(false);
    expect(r.lookup("a")).to.equal(undefined);
    r.close();
    expect(r.list()).to.deep.equal([]);
    rmSync(dir, { recursive: true });
  });

  it("-v HOSTDIR:GUESTDIR[:ro] gives shares v0, v1… and the kernel parameter the guest's init mounts from", () => {
    const v = parseVolumes(["/home/me/src:/src", "/data:/mnt/data:ro"]);
    expect(v).to.deep.equal([
      { share: { name: "v0", path: "/home/me/src", readOnly: false }, guestDir: "/src" },
      { share: { name: "v1", path: "/data", readOnly: true }, guestDir: "/mnt/data" },
    ]);
    const [p] = sharesAppend(v);
    expect(Buffer.from(p.slice("skiff.shares=".length), "base64").toString()).to.equal("v0 /src rw\nv1 /mnt/data ro\n");
    expect(sharesAppend([])).to.deep.equal([]);
    for (const bad of ["/only", "/a:relative", "/a:/with space", ":/x"]) expect(() => parseVolumes([bad]), bad).to.throw(/HOSTDIR:GUESTDIR/);
  });
});
