/**
 * hyperkit argv builder. hyperkit runs on Intel Macs only: these tests check the exact argv
 * against hyperkit's option parsing (src/hyperkit.c, pci_virtio_net_vpnkit.c, uart_emul.c)
 * and cannot boot anything here.
 */
import { expect } from "chai";
import { hyperkitArgs, type HyperkitConfig } from "../../src/vm/hyperkit.js";
import { itRefuses } from "./refusals.js";

const UUID = "4e2f8b66-1c5a-4d0e-9a39-0b7f3c2d1e10";
const base: HyperkitConfig = {
  kernel: "/img/vmlinuz",
  initrd: "/img/initrd.img",
  cmdline: "console=ttyS0 quiet",
  cpus: 2,
  memoryMiB: 512,
  pidFile: "/tmp/hk/hyperkit.pid",
  vpnkit: { socketPath: "/tmp/hk/vmnet.sock", uuid: UUID },
  console: { autopty: "/tmp/hk/tty", ring: "/tmp/hk/console-ring" },
};

describe("vm/hyperkit argv builder", () => {
  it("the exact argv: ACPI, UTC, pidfile, resources, bridge + LPC, vpnkit VIF, rng, com1 pty + ring, kexec", () => {
    expect(hyperkitArgs(base)).to.deep.equal([
      "-A", "-u",
      "-F", "/tmp/hk/hyperkit.pid",
      "-c", "2",
      "-m", "512M",
      "-s", "0:0,hostbridge",
      "-s", "31,lpc",
      "-s", `1:0,virtio-vpnkit,path=/tmp/hk/vmnet.sock,uuid=${UUID}`,
      "-s", "2,virtio-rnd",
      "-l", "com1,autopty=/tmp/hk/tty,log=/tmp/hk/console-ring",
      "-f", "kexec,/img/vmlinuz,/img/initrd.img,console=ttyS0 quiet",
    ]);
  });

  it("the command line is passed verbatim after the third comma: commas, spaces and quotes kept, never wrapped in quotes", () => {
    const cmdline = `console=ttyS0 skiff.x="a b" opt=1,2,3`;
    const args = hyperkitArgs({ ...base, cmdline });
    expect(args[args.length - 1]).to.equal(`kexec,/img/vmlinuz,/img/initrd.img,${cmdline}`);
  });

  it("stdio console without a ring, a VM UUID, a preferred address, no pidfile", () => {
    const args = hyperkitArgs({ ...base, pidFile: undefined, vmUuid: UUID, console: { stdio: true }, vpnkit: { socketPath: "/s", uuid: UUID, preferredIpv4: "192.168.65.9" } });
    expect(args).not.to.include("-F");
    expect(args).to.include.members(["com1,stdio", `1:0,virtio-vpnkit,path=/s,uuid=${UUID},preferred_ipv4=192.168.65.9`]);
    expect(args[args.indexOf("-U") + 1]).to.equal(UUID);
  });

  it("no network: no virtio-vpnkit slot", () => {
    expect(hyperkitArgs({ ...base, vpnkit: undefined }).some((a) => a.includes("virtio-vpnkit"))).to.equal(false);
  });

  itRefuses(hyperkitArgs, base, [
    ["a comma in the kernel path", { kernel: "/a,b" }, /^hyperkit: kernel "\/a,b" contains ","/],
    ["a comma in the initrd path (it would shift the command line)", { initrd: "/i,x" }, /^hyperkit: initrd/],
    ["an empty command line", { cmdline: "" }, /^hyperkit: cmdline is empty/],
    ["a malformed VIF UUID", { vpnkit: { socketPath: "/s", uuid: "not-a-uuid" } }, /^hyperkit: vpnkit\.uuid "not-a-uuid" is not a UUID/],
    ["a comma in the vmnet socket path", { vpnkit: { socketPath: "/s,t", uuid: UUID } }, /^hyperkit: vpnkit\.socketPath/],
    ["a bad preferred address", { vpnkit: { socketPath: "/s", uuid: UUID, preferredIpv4: "192.168.65.300" } }, /^hyperkit: vpnkit\.preferredIpv4/],
    ["a console with only a ring log", { console: { ring: "/r" } as HyperkitConfig["console"] }, /^hyperkit: console needs stdio or autopty/],
    ["65 CPUs", { cpus: 65 }, /^hyperkit: cpus must be an integer in 1\.\.64 \(got 65\)/],
    ["too little memory", { memoryMiB: 16 }, /^hyperkit: memoryMiB must be an integer in 64\.\./],
    ["a malformed VM UUID", { vmUuid: "1234" }, /^hyperkit: vmUuid/],
  ]);
});
