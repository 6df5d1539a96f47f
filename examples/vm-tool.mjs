// A VM tool attaching a QEMU guest: skiff listens for `-netdev stream`, QEMU connects, the guest
// gets a DHCP lease, resolves host.internal (the host's 127.0.0.1) through skiff's DNS and
// downloads from a web server on the host's loopback.
//
//   node examples/vm-tool.mjs KERNEL INITRD
//
// KERNEL/INITRD: any Linux guest whose init brings eth0 up with DHCP. The one used in skiff's
// tests is built by `skiff vm image build` (kernel + busybox initramfs from Debian packages);
// its /init runs the shell command given base64-encoded as `skiff.cmd=` on the kernel command
// line, which this example uses to run wget in the guest.
import { createNetwork } from "skiff";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [kernel, initrd] = process.argv.slice(2);
if (!kernel || !initrd) {
  console.error("usage: node vm-tool.mjs KERNEL INITRD");
  process.exit(2);
}

// The host side: a web server on 127.0.0.1 that the guest reaches as host.internal.
const web = createServer((req, res) => res.end(`hello from the host, you asked for ${req.url}\n`));
await new Promise((r) => web.listen(0, "127.0.0.1", r));
const port = web.address().port;

const dir = mkdtempSync(join(tmpdir(), "skiff-vm-tool-"));
const net = await createNetwork();
net.on("attached", (g) => console.error(`guest attached: ${g.name}`));
net.on("warning", (w) => console.error(`warning: ${w.message}`));
const sock = join(dir, "net.sock");
await net.listenQemuStream(`unix:${sock}`);

const command = `wget -qO- http://host.internal:${port}/file.txt && nslookup host.internal | grep -A1 host.internal`;
const append = `console=ttyS0 quiet panic=-1 skiff.cmd=${Buffer.from(command).toString("base64")}`;
const qemu = spawn("qemu-system-x86_64", [
  "-machine", "q35", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-monitor", "none",
  "-kernel", kernel, "-initrd", initrd, "-append", append,
  "-netdev", `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`,
  "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=",
], { stdio: ["ignore", "pipe", "inherit"] });
// The guest's console: its /init prints "SKIFF-EXIT <status>" after the command.
let status = 1;
createInterface({ input: qemu.stdout }).on("line", (line) => {
  console.log(line);
  const m = /SKIFF-EXIT (\d+)/.exec(line);
  if (m) status = Number(m[1]);
});
const guard = setTimeout(() => qemu.kill(), 120_000);
await new Promise((r) => qemu.on("exit", r));
clearTimeout(guard);

console.error(`leases: ${JSON.stringify(net.leases())}`);
console.error(`tcp flows translated: ${net.stats().tcpTranslate.connected ?? "?"}`);
await net.close();
web.close();
rmSync(dir, { recursive: true, force: true });
process.exitCode = status;
