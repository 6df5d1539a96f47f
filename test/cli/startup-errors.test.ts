/**
 * Start-up errors of the built `skiff` command: a bad option that can only be caught after
 * something is opened (a network, a namespace, a TAP device, listening sockets), or a path that
 * cannot be used, ends the command at once with exit 1 and one line saying what is wrong — no
 * stack trace, no hang (the process used to stay alive on what it had opened), no namespace
 * left behind. Socket paths say what is wrong with them; only a live listener is "in use".
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skiff, skiffNamespaces, type SkiffResult } from "../support/cli.js";
import { netnsUnavailable } from "../support/netns.js";

/** Exit 1 within a few seconds, one line matching `msg`, no stack trace. */
function expectQuickError(r: SkiffResult, msg: RegExp): void {
  expect(r.signal, `still running after the timeout: ${r.stderr}`).to.equal(null);
  expect(r.code, r.stderr).to.equal(1);
  expect(r.ms, "ms to exit").to.be.below(4000);
  expect(r.stderr).to.match(msg);
  expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
  expect(r.stderr).to.not.match(/\n\s+at /);
}

describe("cli: start-up errors exit 1 at once with one clear line", function () {
  this.timeout(60_000);
  let dir: string;
  let live: Server;
  let livePath: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-starterr-"));
    mkdirSync(join(dir, "adir"));
    writeFileSync(join(dir, "afile"), "");
    livePath = join(dir, "live.sock");
    live = createServer();
    await new Promise<void>((r) => live.listen(livePath, () => r()));
  });
  after(() => {
    live?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("skiff serve", () => {
    const q = () => ["--qemu-stream", `unix:${join(dir, "q.sock")}`];
    it("--dns-record without =IP", async () => expectQuickError(await skiff(["serve", ...q(), "--dns-record", "foo"], 10_000), /--dns-record "foo": expected NAME=IP/));
    it("--pcap in a missing directory", async () =>
      expectQuickError(await skiff(["serve", ...q(), "--pcap", join(dir, "nope", "x.pcap")], 10_000), /--pcap .*: directory .*nope does not exist/));
    it("--pcap naming a directory", async () => expectQuickError(await skiff(["serve", ...q(), "--pcap", join(dir, "adir")], 10_000), /--pcap .*adir is a directory/));
    it("--qemu-stream in a missing directory says so (not EACCES)", async () =>
      expectQuickError(await skiff(["serve", "--qemu-stream", `unix:${join(dir, "nope", "q.sock")}`], 10_000), /--qemu-stream .*: directory .*nope does not exist/));
    it("--api-socket naming a directory says it is a directory (not 'in use')", async () => {
      const r = await skiff(["serve", ...q(), "--api-socket", join(dir, "adir")], 10_000);
      expectQuickError(r, /--api-socket .*adir is a directory/);
      expect(r.stderr).to.not.match(/in use/);
    });
    it("--vmnet naming a regular file refuses to replace it", async () =>
      expectQuickError(await skiff(["serve", "--vmnet", join(dir, "afile")], 10_000), /--vmnet .*afile exists and is not a socket/));
    it("--qemu-stream on a socket a running process listens on is 'in use by a running process', and is left alone", async () => {
      expectQuickError(await skiff(["serve", "--qemu-stream", `unix:${livePath}`], 10_000), /live\.sock is in use by a running process/);
      // The other process's socket still works.
      const { connect } = await import("node:net");
      await new Promise<void>((resolve, reject) => connect(livePath).once("connect", function (this: { destroy(): void }) {
        this.destroy();
        resolve();
      }).once("error", reject));
    });
    it("--qemu-dgram on a socket a running process holds is 'in use'", async () =>
      expectQuickError(await skiff(["serve", "--qemu-dgram", livePath], 10_000), /--qemu-dgram .*live\.sock is in use by a running process/));
  });

  describe("skiff vpnkit", () => {
    it("--ethernet in a missing directory", async () =>
      expectQuickError(await skiff(["vpnkit", "--ethernet", join(dir, "nope", "v.sock")], 10_000), /--ethernet .*: directory .*nope does not exist/));
    it("--ethernet naming a directory", async () => expectQuickError(await skiff(["vpnkit", "--ethernet", join(dir, "adir")], 10_000), /--ethernet .*adir is a directory/));
  });

  describe("skiff run (root: namespaces and TAP)", function () {
    before(function () {
      const reason = netnsUnavailable(["/dev/net/tun"]);
      if (reason) {
        console.log(`    skipped: skiff run start-up errors: ${reason}`);
        this.skip();
      }
    });
    const cases: Array<[string, () => string[], RegExp]> = [
      ["--dns-record without =IP", () => ["--dns-record", "foo"], /--dns-record "foo": expected NAME=IP/],
      ["--pcap in a missing directory", () => ["--pcap", join(dir, "nope", "x.pcap")], /--pcap .*: directory .*nope does not exist/],
      ["--pcap naming a directory", () => ["--pcap", join(dir, "adir")], /--pcap .*adir is a directory/],
      ["--subnet too small for the guest's address", () => ["--subnet", "10.0.0.0/30"], /--subnet 10\.0\.0\.0\/30: too small .* \/29 or larger/],
      ["--api-socket in a missing directory", () => ["--api-socket", join(dir, "nope", "a.sock")], /--api-socket .*: directory .*nope does not exist/],
      ["--api-socket naming a directory", () => ["--api-socket", join(dir, "adir")], /--api-socket .*adir is a directory/],
      ["--api-socket on a live listener (fails after the namespace is made)", () => ["--api-socket", livePath], /--api-socket .*live\.sock is in use by a running process/],
    ];
    for (const [what, args, msg] of cases) {
      it(`${what}: exit 1 at once, no namespace left`, async () => {
        const r = await skiff(["run", ...args(), "--", "true"], 10_000);
        expectQuickError(r, msg);
        expect(skiffNamespaces(r.pid)).to.deep.equal([]);
      });
    }
    it("a -p host port already taken (fails after the namespace and TAP are up): exit 1 at once, no namespace left", async () => {
      const taken = createServer();
      await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
      const port = (taken.address() as { port: number }).port;
      try {
        const r = await skiff(["run", "-p", `127.0.0.1:${port}:80`, "--", "true"], 10_000);
        expectQuickError(r, new RegExp(`${port}`));
        expect(skiffNamespaces(r.pid)).to.deep.equal([]);
      } finally {
        taken.close();
      }
    });
  });
});
