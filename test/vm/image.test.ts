import { expect } from "chai";
import { imageKey, loadOrder, moduleDepends } from "../../src/vm/image.js";

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
});
