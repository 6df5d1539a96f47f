/** The QEMU options the docker guest adds (src/vm/qemu.ts): virtio disks and TCG's code-cache size. */
import { expect } from "chai";
import { qemuArgs } from "../../src/vm/qemu.js";

const base = { kernel: "/k", initrd: "/i", cpus: 1, memoryMiB: 512 };

describe("vm/qemu: disks and TCG cache for the docker guest", () => {
  it("drives become virtio -drive options in order, read-only when asked, commas in paths doubled", () => {
    const a = qemuArgs({ ...base, accel: "tcg", drives: [{ path: "/c/system.img", readonly: true }, { path: "/s,x/data.img" }] });
    const drives = a.flatMap((v, i) => (v === "-drive" ? [a[i + 1]] : []));
    expect(drives).to.deep.equal(["file=/c/system.img,if=virtio,format=raw,readonly=on", "file=/s,,x/data.img,if=virtio,format=raw"]);
  });

  it("tb-size only under TCG", () => {
    const tcg = qemuArgs({ ...base, accel: "tcg", tcgCacheMiB: 128 });
    expect(tcg[tcg.indexOf("-accel") + 1]).to.equal("tcg,tb-size=128");
    const kvm = qemuArgs({ ...base, accel: "kvm", tcgCacheMiB: 128 });
    expect(kvm[kvm.indexOf("-accel") + 1]).to.equal("kvm");
    const plain = qemuArgs({ ...base, accel: "tcg" });
    expect(plain[plain.indexOf("-accel") + 1]).to.equal("tcg");
    expect(plain).to.not.include("-drive");
  });
});
