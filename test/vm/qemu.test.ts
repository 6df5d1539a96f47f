import { expect } from "chai";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QemuMissingError, Vm, kernelAppend, netdevArg, qemuArgs, shellJoin, type VmConfig } from "../../src/vm/qemu.js";
import { chooseAccel, type AccelFacts } from "../../src/vm/accel.js";
import { exitWithVmRunning, processRunning } from "../support/qemu.js";
import { until } from "../support/wait.js";

const base: VmConfig = { kernel: "/k/vmlinuz", initrd: "/k/initrd.img", accel: "tcg", cpus: 2, memoryMiB: 384 };
const after = (args: string[], flag: string) => {
  const i = args.indexOf(flag);
  expect(i, `${flag} present`).to.be.greaterThan(-1);
  return args[i + 1];
};

describe("vm/qemu argv builder", () => {
  it("stream: QEMU connects to skiff's Unix socket, virtio-net with the MAC", () => {
    const args = qemuArgs({ ...base, net: { kind: "stream", path: "/tmp/s.sock", mac: "52:54:00:00:00:01" } });
    expect(after(args, "-netdev")).to.equal("stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/s.sock");
    expect(after(args, "-device")).to.equal("virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,romfile=");
    expect(after(args, "-machine")).to.equal("q35");
    expect(after(args, "-accel")).to.equal("tcg");
    expect(after(args, "-m")).to.equal("384");
    expect(after(args, "-smp")).to.equal("2");
    expect(after(args, "-kernel")).to.equal("/k/vmlinuz");
    expect(after(args, "-initrd")).to.equal("/k/initrd.img");
    expect(after(args, "-serial")).to.equal("stdio");
    expect(after(args, "-monitor")).to.equal("none");
    expect(args).to.include("-no-reboot");
    expect(args).not.to.include("-cpu");
  });

  it("dgram: QEMU binds its own path and sends to skiff's", () => {
    const net = { kind: "dgram" as const, qemuPath: "/tmp/q", skiffPath: "/tmp/s", mac: "52:54:00:00:00:02" };
    expect(netdevArg(net)).to.equal("dgram,id=n0,local.type=unix,local.path=/tmp/q,remote.type=unix,remote.path=/tmp/s");
    expect(after(qemuArgs({ ...base, net }), "-netdev")).to.equal(netdevArg(net));
  });

  it("no network: -nic none; kvm adds -cpu host; interactive multiplexes the monitor", () => {
    const args = qemuArgs({ ...base, accel: "kvm", interactive: true });
    expect(after(args, "-nic")).to.equal("none");
    expect(after(args, "-cpu")).to.equal("host");
    expect(after(args, "-serial")).to.equal("mon:stdio");
    expect(args).not.to.include("-monitor");
  });

  it("extraArgs are appended as given; bringing their own -netdev, they replace -nic none", () => {
    const extra = ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0", "-virtfs", "local,path=/d,mount_tag=t,security_model=mapped-xattr"];
    const args = qemuArgs({ ...base, extraArgs: extra });
    expect(args.slice(-extra.length)).to.deep.equal(extra);
    expect(args).not.to.include("-nic");
    expect(after(qemuArgs({ ...base, extraArgs: ["-virtfs", "local,path=/d,mount_tag=t,security_model=none"] }), "-nic")).to.equal("none");
  });

  it("the command travels base64-encoded on the kernel command line", () => {
    const cmd = "echo 'a b' && exit 7";
    const append = kernelAppend({ command: cmd });
    expect(append).to.match(/^console=ttyS0 /);
    const m = /skiff\.cmd=(\S+)/.exec(append)!;
    expect(Buffer.from(m[1], "base64").toString("utf8")).to.equal(cmd);
    expect(kernelAppend({})).not.to.include("skiff.cmd");
    expect(() => kernelAppend({ command: "x".repeat(3000) })).to.throw(/too long/);
  });

  it("shellJoin quotes what the shell would split or expand", () => {
    expect(shellJoin(["wget", "-qO-", "http://host.internal:80/"])).to.equal("wget -qO- http://host.internal:80/");
    expect(shellJoin(["sh", "-c", "echo it's $HOME"])).to.equal(`sh -c 'echo it'\\''s $HOME'`);
  });
});

describe("vm/qemu launcher without QEMU", () => {
  it("a missing binary is a QemuMissingError naming the Debian package; stop() still settles", async () => {
    const vm = Vm.start(base, { binary: "/nonexistent/qemu-system-x86_64" });
    let err: unknown;
    await vm.exited.catch((e) => (err = e));
    expect(err).to.be.instanceOf(QemuMissingError);
    expect((err as Error).message).to.match(/install the Debian package qemu-system-x86/);
    await vm.ready.catch((e) => (err = e));
    expect(err).to.be.instanceOf(QemuMissingError);
    expect(await vm.stop()).to.equal(undefined);
  });
});

describe("vm/qemu launcher console plumbing (a stand-in for QEMU that echoes its stdin)", () => {
  let dir: string;
  let fake: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-vm-unit-"));
    fake = join(dir, "fake-qemu");
    // Ignores QEMU's arguments; the "console" is whatever is written to it, line by line.
    writeFileSync(fake, "#!/bin/sh\nwhile IFS= read -r l; do echo \"$l\"; done\n");
    chmodSync(fake, 0o755);
  });
  // (`after` is this file's argv helper; mocha's hook is `globalThis.after`.)
  globalThis.after(() => rmSync(dir, { recursive: true, force: true }));

  it("write() reaches the console; waitFor matches from an offset; markers give ready and status", async () => {
    const lines: string[] = [];
    const vm = Vm.start(base, { binary: fake, onLine: (l) => lines.push(l) });
    vm.write("prompt-1\n");
    await vm.waitFor(/prompt-1/);
    const from = vm.console.length;
    const later = vm.waitFor(/prompt-(\d)/, from);
    vm.write("SKIFF-READY 192.168.65.3/24\nprompt-2\nSKIFF-EXIT 5\n");
    expect((await later)[1], "the match after the offset, not the earlier one").to.equal("2");
    expect(await vm.ready).to.equal("192.168.65.3/24");
    await vm.waitFor(/SKIFF-EXIT 5\n/);
    const r = await vm.stop();
    expect(r!.status).to.equal(5);
    expect(lines).to.deep.equal(["prompt-1", "SKIFF-READY 192.168.65.3/24", "prompt-2", "SKIFF-EXIT 5"]);
  });

  it("waitFor rejects when the VM exits without a match (then and later)", async () => {
    const vm = Vm.start(base, { binary: fake });
    const never = vm.waitFor(/never/);
    await vm.stop();
    let err: unknown;
    await never.catch((e) => (err = e));
    expect((err as Error).message).to.match(/QEMU exited/);
    err = undefined;
    await vm.waitFor(/never/).catch((e) => (err = e));
    expect((err as Error).message).to.match(/QEMU exited/);
  });
});

describe("vm/qemu launcher: QEMU does not outlive the process that started it", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "skiff-vm-exit-"))));
  globalThis.after(() => rmSync(dir, { recursive: true, force: true }));

  it("process.exit with the VM running: the stand-in QEMU is gone within 5 s", async () => {
    // A stand-in that, like QEMU, keeps running when its stdin closes and nobody reads its output.
    const fake = join(dir, "fake-qemu");
    writeFileSync(fake, "#!/bin/sh\necho started\nexec sleep 300\n");
    chmodSync(fake, 0o755);
    const { children, code, output } = await exitWithVmRunning({ VM_EXIT_CHILD_BINARY: fake }, 30_000);
    try {
      expect(code, output).to.equal(0);
      expect(children.map((c) => c.name), output).to.deep.equal(["sleep"]);
      await until(() => !processRunning(children[0].pid), 5000, `the stand-in QEMU (pid ${children[0].pid}) gone`);
    } finally {
      for (const { pid } of children) if (processRunning(pid)) process.kill(pid, "SIGKILL");
    }
  });
});

describe("vm/accel auto decision", () => {
  const linux: AccelFacts = { platform: "linux", kvmUsable: true, nested: false, trustNestedKvm: false };
  it("an explicit choice is kept", () => {
    expect(chooseAccel("tcg", linux).accel).to.equal("tcg");
    expect(chooseAccel("kvm", { ...linux, kvmUsable: false }).accel).to.equal("kvm");
  });
  it("auto: KVM on a bare-metal Linux host with /dev/kvm", () => {
    expect(chooseAccel("auto", linux).accel).to.equal("kvm");
  });
  it("auto: TCG when /dev/kvm cannot be opened", () => {
    expect(chooseAccel("auto", { ...linux, kvmUsable: false }).accel).to.equal("tcg");
  });
  it("auto: TCG when nested (KVM opens but may hang), unless trusted", () => {
    const r = chooseAccel("auto", { ...linux, nested: true });
    expect(r.accel).to.equal("tcg");
    expect(r.reason).to.match(/nested/);
    expect(chooseAccel("auto", { ...linux, nested: true, trustNestedKvm: true }).accel).to.equal("kvm");
  });
  it("auto: hvf on macOS, TCG elsewhere", () => {
    expect(chooseAccel("auto", { ...linux, platform: "darwin" }).accel).to.equal("hvf");
    expect(chooseAccel("auto", { ...linux, platform: "win32" }).accel).to.equal("tcg");
  });
});
