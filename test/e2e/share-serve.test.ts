/**
 * End to end (issue 15): `skiff serve --share NAME=DIR` and the control API's /shares, with a
 * QEMU TCG guest attached over -netdev stream (a guest "started by another tool": skiff only
 * serves the network). A share added over the API at run time is mountable, a removed one is
 * not, a read-only one refuses writes, and the guest's writes land in the host directory.
 */
import { expect } from "chai";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestImageOrSkip } from "../support/qemu.js";
import type { GuestImage } from "../../src/vm/image.js";
import { Vm } from "../../src/vm/qemu.js";
import { startServe } from "../support/serve.js";
import { apiRequest } from "../../src/forward/client.js";

describe("e2e: skiff serve --share and the control API's /shares, QEMU guest over -netdev stream", function () {
  this.timeout(300_000);
  let image: GuestImage;
  let dir: string;

  before(function () {
    image = guestImageOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), "skiff-share-serve-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("mounts a --share and an API-added read-only share; a removed share is refused", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(b, "ro.txt"), "from b");
    const sock = join(dir, "net.sock");
    const api = join(dir, "api.sock");
    const { done, stop } = await startServe({ qemuStream: [`unix:${sock}`], shares: [`a=${a}`], apiSocket: api });
    try {
      expect((await apiRequest(api, "POST", "/shares", { name: "b", path: b, mode: "ro" })).status).to.equal(201);
      expect((await apiRequest(api, "POST", "/shares", { name: "c", path: a })).status).to.equal(201);
      expect((await apiRequest(api, "DELETE", "/shares/c")).status).to.equal(200);
      const bad = await apiRequest(api, "POST", "/shares", { name: "d", path: join(dir, "missing") });
      expect(bad.status).to.equal(400);
      const list = await apiRequest(api, "GET", "/shares");
      expect((list.body as { name: string }[]).map((s) => s.name)).to.deep.equal(["a", "b"]);
      const o = "trans=tcp,port=564,version=9p2000.L";
      const script = [
        "mkdir -p /a /b /c",
        `mount -t 9p -o ${o},aname=a 192.168.65.1 /a && echo MOUNT_A=ok`,
        `mount -t 9p -o ${o},aname=b 192.168.65.1 /b && echo MOUNT_B=ok`,
        `mount -t 9p -o ${o},aname=c 192.168.65.1 /c 2>/dev/null && echo MOUNT_C=ok || echo MOUNT_C=refused`,
        "echo hi > /a/from-guest && echo WRITE_A=ok",
        "echo B=$(cat /b/ro.txt)",
        "touch /b/x 2>/dev/null && echo WRITE_B=ok || echo WRITE_B=refused",
      ].join("\n");
      const vm = Vm.start({ kernel: image.kernel, initrd: image.initrd, accel: "tcg", cpus: 1, memoryMiB: 256, net: { kind: "stream", path: sock, mac: "52:54:00:65:00:31" }, command: script }, { logFile: join(dir, "console.log") });
      const guard = setTimeout(() => void vm.stop(), 120_000);
      const r = await vm.exited;
      clearTimeout(guard);
      const out = r.console;
      expect(r.status, out).to.equal(0);
      for (const want of ["MOUNT_A=ok", "MOUNT_B=ok", "MOUNT_C=refused", "WRITE_A=ok", "B=from b", "WRITE_B=refused"]) expect(out, want).to.include(want);
      expect(readFileSync(join(a, "from-guest"), "utf8")).to.equal("hi\n");
      expect(existsSync(join(b, "x"))).to.equal(false);
      const stats = await apiRequest(api, "GET", "/stats");
      expect((stats.body as { shares: { connections: number } }).shares.connections).to.be.at.least(2);
    } finally {
      stop();
      await done;
    }
  });
});
