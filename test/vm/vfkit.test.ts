/**
 * vfkit argv builder. vfkit runs on macOS only: these tests check the exact argv against
 * vfkit's documented syntax (doc/usage.md) and cannot boot anything here.
 */
import { expect } from "chai";
import { vfkitArgs, type VfkitConfig } from "../../src/vm/vfkit.js";
import { itRefuses } from "./refusals.js";
import { kernelAppend } from "../../src/vm/qemu.js";

const base: VfkitConfig = {
  kernel: "/img/vmlinuz",
  initrd: "/img/initrd.img",
  cmdline: "console=hvc0 quiet",
  cpus: 2,
  memoryMiB: 512,
  net: { socketPath: "/tmp/skiff/vfkit.sock", mac: "52:54:00:65:00:30" },
  console: { logFile: "/tmp/skiff/console.log" },
};

describe("vm/vfkit argv builder", () => {
  it("the exact argv: resources, linux bootloader, skiff's socket with the MAC, console to a file, rng", () => {
    expect(vfkitArgs(base)).to.deep.equal([
      "--cpus", "2",
      "--memory", "512",
      "--bootloader", `linux,kernel=/img/vmlinuz,initrd=/img/initrd.img,cmdline="console=hvc0 quiet"`,
      "--device", "virtio-net,unixSocketPath=/tmp/skiff/vfkit.sock,mac=52:54:00:65:00:30",
      "--device", "virtio-serial,logFilePath=/tmp/skiff/console.log",
      "--device", "virtio-rng",
    ]);
  });

  it("the command line is quoted once inside the option, commas and '=' kept (vfkit splits only outside quotes)", () => {
    const cmdline = kernelAppend({ command: "echo a,b=c" }, "hvc0");
    const boot = vfkitArgs({ ...base, cmdline })[5];
    expect(boot).to.equal(`linux,kernel=/img/vmlinuz,initrd=/img/initrd.img,cmdline="${cmdline}"`);
    expect(cmdline).to.match(/^console=hvc0 /);
  });

  it("no network: no virtio-net; console on stdio; REST API when asked", () => {
    const args = vfkitArgs({ ...base, net: undefined, console: "stdio", restfulUri: "unix:///tmp/vfkit-rest.sock" });
    expect(args.filter((a) => a.startsWith("virtio-net"))).to.deep.equal([]);
    expect(args).to.include("virtio-serial,stdio");
    expect(args.slice(-2)).to.deep.equal(["--restful-uri", "unix:///tmp/vfkit-rest.sock"]);
  });

  itRefuses(vfkitArgs, base, [
    ["a quote in the command line", { cmdline: `skiff.x="a b"` }, /^vfkit: cmdline contains '"'/],
    ["an empty command line", { cmdline: " " }, /^vfkit: cmdline is empty/],
    ["a comma in the kernel path", { kernel: "/a,b/vmlinuz" }, /^vfkit: kernel "\/a,b\/vmlinuz" contains ","/],
    ["a quote in the initrd path", { initrd: `/a"b` }, /^vfkit: initrd .* contains "\\""/],
    ["a missing initrd", { initrd: "" }, /^vfkit: initrd is missing/],
    ["a comma in the socket path", { net: { socketPath: "/t/a,b.sock", mac: "52:54:00:00:00:01" } }, /^vfkit: net\.socketPath .* contains ","/],
    ["a malformed MAC", { net: { socketPath: "/t/s", mac: "52:54:00:00:01" } }, /^vfkit: net\.mac "52:54:00:00:01" is not a MAC address/],
    ["a multicast MAC", { net: { socketPath: "/t/s", mac: "01:00:5e:00:00:01" } }, /^vfkit: net\.mac .* multicast/],
    ["zero CPUs", { cpus: 0 }, /^vfkit: cpus must be an integer in 1\.\.64 \(got 0\)/],
    ["fractional memory", { memoryMiB: 256.5 }, /^vfkit: memoryMiB must be an integer/],
    ["a comma in the console log path", { console: { logFile: "/t/a,b.log" } }, /^vfkit: console\.logFile/],
  ]);
});
