import { expect } from "chai";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builderHash, cachedImage, findImage, imageKey, loadOrder, moduleDepends } from "../../src/vm/image.js";

/** A fake cached image: a directory with a manifest naming `builder`, aged `ageS` seconds. */
function fakeImage(cache: string, name: string, builder: string | undefined, ageS = 0): void {
  mkdirSync(join(cache, name), { recursive: true });
  const manifest = join(cache, name, "manifest.json");
  writeFileSync(manifest, JSON.stringify({ key: name, builder, packages: { "busybox-static": "1" } }));
  const t = Date.now() / 1000 - ageS;
  utimesSync(manifest, t, t);
}

describe("vm/image builder pieces", () => {
  it("moduleDepends reads the .modinfo depends= string", () => {
    const ko = new TextEncoder().encode("\x7fELF....\0license=GPL\0depends=virtio_ring,virtio,net_failover\0retpoline=Y\0");
    expect(moduleDepends(ko)).to.deep.equal(["virtio_ring", "virtio", "net_failover"]);
    expect(moduleDepends(new TextEncoder().encode("\0depends=\0name=failover\0"))).to.deep.equal([]);
    expect(moduleDepends(new Uint8Array(16))).to.deep.equal([]);
  });

  it("loadOrder puts every dependency before its user, once", () => {
    const deps: Record<string, string[]> = {
      virtio_net: ["virtio_ring", "virtio", "net_failover"],
      net_failover: ["failover"],
      virtio: ["virtio_ring"],
      virtio_pci: ["virtio_ring", "virtio"],
      failover: [],
      virtio_ring: [],
    };
    const order = loadOrder(["virtio_pci", "virtio_net"], (m) => deps[m]);
    expect(order).to.have.members(Object.keys(deps));
    expect(order.length).to.equal(6);
    for (const [m, ds] of Object.entries(deps)) for (const d of ds) expect(order.indexOf(d)).to.be.lessThan(order.indexOf(m));
    expect(() => loadOrder(["a"], (m) => (m === "a" ? ["b"] : ["a"]))).to.throw(/cycle/);
  });

  it("imageKey changes with any package version and not with their order", () => {
    const a = imageKey({ "linux-image-6.1.0-56-amd64": "6.1.192-2", "busybox-static": "1:1.35.0-4" });
    expect(imageKey({ "busybox-static": "1:1.35.0-4", "linux-image-6.1.0-56-amd64": "6.1.192-2" })).to.equal(a);
    expect(imageKey({ "linux-image-6.1.0-56-amd64": "6.1.192-3", "busybox-static": "1:1.35.0-4" })).not.to.equal(a);
    expect(a).to.match(/^[0-9a-f]{16}$/);
  });

  it("findImage boots only an image this version built: `current` when it is ours, else our newest, never another builder's", () => {
    const cache = mkdtempSync(join(tmpdir(), "skiff-img-"));
    try {
      expect(findImage(cache), "empty cache").to.equal(undefined);
      // Found by the suite: another version's (or another builder's) image named by `current`
      // was booted, with an /init that did not mount shares.
      fakeImage(cache, "old0000000000000", "someone-elses-builder");
      writeFileSync(join(cache, "current"), "old0000000000000\n");
      expect(findImage(cache), "current names an image of another version").to.equal(undefined);
      fakeImage(cache, "legacy0000000000", undefined);
      expect(findImage(cache), "an image without a builder hash").to.equal(undefined);
      fakeImage(cache, "ours000000000001", builderHash(), 100);
      fakeImage(cache, "ours000000000002", builderHash(), 10);
      expect(findImage(cache)?.dir, "our newest").to.equal(join(cache, "ours000000000002"));
      writeFileSync(join(cache, "current"), "ours000000000001\n");
      expect(findImage(cache)?.dir, "current, ours").to.equal(join(cache, "ours000000000001"));
      writeFileSync(join(cache, "ours000000000002", "manifest.json"), "{not json");
      writeFileSync(join(cache, "current"), "ours000000000002\n");
      expect(findImage(cache)?.dir, "a broken manifest is skipped").to.equal(join(cache, "ours000000000001"));
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  describe("cachedImage", () => {
    let cache: string;
    beforeEach(() => {
      cache = join(mkdtempSync(join(tmpdir(), "skiff-cache-")), "c");
    });
    afterEach(() => rmSync(join(cache, ".."), { recursive: true, force: true }));
    const load = (dir: string): string | undefined => (existsSync(join(dir, "made")) ? readFileSync(join(dir, "made"), "utf8") : undefined);
    const build = (n: { calls: number }) => (_work: string, out: string): void => {
      n.calls++;
      mkdirSync(out);
      writeFileSync(join(out, "made"), "yes");
    };

    it("builds once into a private cache, then reuses, and points current at the key", () => {
      const n = { calls: 0 };
      expect(cachedImage(cache, "k1", load, build(n), () => {})).to.equal("yes");
      expect(cachedImage(cache, "k1", load, build(n), () => {})).to.equal("yes");
      expect(n.calls).to.equal(1);
      expect(statSync(cache).mode & 0o777).to.equal(0o700);
      expect(readFileSync(join(cache, "current"), "utf8")).to.equal("k1\n");
      expect(readdirSync(cache).filter((e) => e.startsWith("."))).to.deep.equal([]);
    });

    it("replaces a link planted at current instead of writing through it", () => {
      mkdirSync(cache, { recursive: true, mode: 0o700 });
      const victim = join(cache, "..", "victim");
      writeFileSync(victim, "untouched");
      symlinkSync(victim, join(cache, "current"));
      cachedImage(cache, "k2", load, build({ calls: 0 }), () => {});
      expect(readFileSync(victim, "utf8")).to.equal("untouched");
      expect(lstatSync(join(cache, "current")).isSymbolicLink()).to.equal(false);
    });

    it("a failed build leaves neither a work directory nor an image", () => {
      expect(() => cachedImage(cache, "k3", load, () => { throw new Error("apt failed"); }, () => {})).to.throw("apt failed");
      expect(readdirSync(cache)).to.deep.equal([]);
    });
  });
});
