/**
 * End to end (issue 7): a Linux guest built from Debian packages (`skiff vm image build`), booted
 * under QEMU with TCG, its only network skiff. The guest gets a DHCP lease, resolves
 * host.internal through skiff's DNS, downloads a file from a host HTTP server on 127.0.0.1 with
 * SHA-256 equal — over `-netdev stream` and over `-netdev dgram` — and its command's exit status
 * comes back through `skiff vm run`.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Network } from "../../src/cli/network.js";
import { QemuStreamListener } from "../../src/link/qemu-stream.js";
import { openQemuDgram } from "../../src/link/qemu-dgram.js";
import { buildImage, defaultCacheDir, type GuestImage } from "../../src/vm/image.js";
import { QEMU_BINARY, QEMU_PACKAGE, Vm, type VmNet, type VmResult } from "../../src/vm/qemu.js";
import { vmRun } from "../../src/cli/vm.js";

const log = pino({ level: "silent" });

function qemuMissing(): string | undefined {
  try {
    execFileSync(QEMU_BINARY, ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return `${QEMU_BINARY} is not installed (apt-get install ${QEMU_PACKAGE})`;
  }
}

describe("e2e: skiff vm — a QEMU (TCG) guest whose network is skiff", function () {
  this.timeout(120_000);
  const cacheDir = process.env.SKIFF_VM_CACHE ?? defaultCacheDir();
  let image: GuestImage;
  let http: Server;
  let port: number;
  // 1 MiB at /big, fetched over stream and over dgram (with the kernel's default
  // net.unix.max_dgram_qlen of 10, skiff → QEMU sends hit EAGAIN all the time; the dgram channel
  // waits for writability on its connected socket); 1 KiB at /small (one TCP segment).
  const bodies: Record<string, Buffer> = { "/big": randomBytes(1 << 20), "/small": randomBytes(1024) };
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  let dir: string;

  before(async function () {
    const missing = qemuMissing();
    if (missing) {
      console.log(`      (skipped: ${missing})`);
      this.skip();
    }
    try {
      const t0 = Date.now();
      image = buildImage({ cacheDir });
      console.log(`      image ${image.dir} ready in ${Date.now() - t0} ms`);
    } catch (e) {
      console.log(`      (skipped: the guest image cannot be built here: ${(e as Error).message})`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "skiff-vm-e2e-"));
    http = createServer((req, res) => res.end(bodies[req.url ?? ""] ?? ""));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    port = (http.address() as { port: number }).port;
  });

  after(async () => {
    if (http) await new Promise((r) => http.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Boot a guest on a fresh Network attached over `kind`, run `command`, return its result. */
  async function boot(kind: "stream" | "dgram", command: string): Promise<{ result: VmResult; readyMs: number; addr: string }> {
    const net = new Network({ mtu: 1500, log });
    const mac = kind === "stream" ? "52:54:00:65:00:21" : "52:54:00:65:00:22";
    let vmNet: VmNet;
    let close: () => Promise<void> | void;
    if (kind === "stream") {
      const path = join(dir, "stream.sock");
      const listener = await QemuStreamListener.listen(`unix:${path}`);
      listener.on("channel", (ch) => net.stack.attach(ch));
      vmNet = { kind, path, mac };
      close = () => listener.close();
    } else {
      const paths = { skiffPath: join(dir, "skiff.dgram"), qemuPath: join(dir, "qemu.dgram") };
      const ch = openQemuDgram(paths);
      net.stack.attach(ch);
      vmNet = { kind, ...paths, mac };
      close = () => ch.close();
    }
    const t0 = Date.now();
    const vm = Vm.start({ kernel: image.kernel, initrd: image.initrd, accel: "tcg", cpus: 1, memoryMiB: 256, net: vmNet, command }, { logFile: join(dir, `${kind}.console.log`) });
    const guard = setTimeout(() => void vm.stop(), 60_000);
    try {
      let readyMs = -1;
      let addr = "";
      vm.ready.then((a) => ((readyMs = Date.now() - t0), (addr = a)), () => {});
      const result = await vm.exited;
      return { result, readyMs, addr };
    } finally {
      clearTimeout(guard);
      await vm.stop();
      await close();
      net.close();
    }
  }

  for (const [kind, file] of [["stream", "/big"], ["dgram", "/big"]] as const) {
    it(`${kind}: DHCP lease, host.internal resolves to 192.168.65.2, ${file === "/big" ? "1 MiB" : "1 KiB"} download SHA-256 equal`, async () => {
      const cmd = `ip -4 addr show eth0; cat /etc/resolv.conf; nslookup host.internal; wget -qO- http://host.internal:${port}${file} | sha256sum`;
      const { result, readyMs, addr } = await boot(kind, cmd);
      const out = result.console;
      console.log(`      ${kind}: ready (lease ${addr}) ${readyMs} ms after QEMU start`);
      expect(result.status, out).to.equal(0);
      expect(addr, out).to.match(/^192\.168\.65\.\d+\/24$/);
      expect(out).to.include(`inet ${addr}`);
      expect(out).to.match(/nameserver 192\.168\.65\.1/);
      expect(out).to.match(/Name:\s+host\.internal\s+Address:\s+192\.168\.65\.2/);
      expect(out).to.include(`${sha(bodies[file])}  -`);
      expect(result.qemuCode, "QEMU exits by itself after poweroff").to.equal(0);
    });
  }

  it("skiff vm run propagates the command's exit status (exit 7)", async () => {
    const status = await vmRun({ cpus: 1, memoryMiB: 256, mtu: 1500, accel: "tcg", cacheDir, command: ["sh", "-c", "exit 7"], consoleLog: join(dir, "run.console.log"), log });
    expect(status).to.equal(7);
  });
});
