/**
 * End to end: `skiff run --pcap FILE` with TAP offloads on (the default) records a capture in
 * which skiff's own frames and the guest kernel's carry valid TCP/UDP checksums: the partial
 * checksums of offload are completed in the recorded copy. `pcap inspect` reports no
 * bad-checksum and tshark, with checksum validation on, agrees. The file is private (0600),
 * and a refused path (a link, a device) ends skiff at once with the reason.
 */
import { expect } from "chai";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { inspectCommand } from "../../src/cli/pcap-inspect.js";
import type { InspectedFrame } from "../../src/pcap/inspect.js";
import { netnsUnavailable } from "../support/netns.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "bin", "skiff.js");

function inspect(file: string, json: boolean): string {
  let out = "";
  let err = "";
  const status = inspectCommand(file, { json }, { out: (t) => ((out += t), true), err: (t) => void (err += t) });
  expect(status, err).to.equal(0);
  return out;
}

describe("e2e: skiff run --pcap with checksum offload", function () {
  this.timeout(60_000);
  let dir: string;
  before(function () {
    const reason = netnsUnavailable(["/dev/net/tun"]);
    if (reason) {
      console.log(`    skipped: skiff run e2e: ${reason}`);
      this.skip();
    }
    expect(existsSync(join(root, "dist", "cli.js")), "dist/cli.js is built by `npm ci` (prepare) or `npm run build`").to.equal(true);
    dir = mkdtempSync(join(tmpdir(), "skiff-cap-e2e-"));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("records valid TCP/UDP checksums in both directions: inspect and tshark find none bad", async () => {
    // On :: (dual stack), so that the guest's IPv6 and IPv4 requests both reach it.
    const server = createServer((req, res) => res.end(`hello ${req.url} ${"x".repeat(5000)}\n`));
    await new Promise<void>((r) => server.listen(0, "::", () => r()));
    const port = (server.address() as { port: number }).port;
    const file = join(dir, "run.pcap");
    try {
      // Rejects (and fails the test) unless skiff and the command exit 0.
      await promisify(execFile)(process.execPath, [bin, "run", "--pcap", file, "--", "sh", "-c", `curl -4 -sS http://host.internal:${port}/a >/dev/null && curl -6 -sS http://host.internal:${port}/b >/dev/null && ping -c 1 -W 2 192.168.65.1 >/dev/null`], { timeout: 30_000 });
    } finally {
      server.close();
    }
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const frames = inspect(file, true)
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as InspectedFrame);
    const tcp = frames.filter((f) => f.layers.tcp);
    const udp = frames.filter((f) => f.layers.udp);
    // Both directions of the HTTP exchange and the DNS lookup are there, with judged checksums.
    expect(tcp.filter((f) => f.layers.ipv4?.src === "192.168.65.2").length, "skiff's TCP frames").to.be.greaterThan(2);
    expect(tcp.filter((f) => f.layers.ipv4?.dst === "192.168.65.2").length, "the guest's TCP frames").to.be.greaterThan(2);
    expect(tcp.filter((f) => f.layers.ipv6?.src === "fd73:6b69:6666::2").length, "skiff's TCP frames over IPv6").to.be.greaterThan(2);
    expect(tcp.filter((f) => f.layers.ipv6?.dst === "fd73:6b69:6666::2").length, "the guest's TCP frames over IPv6").to.be.greaterThan(2);
    expect(udp.length, "DNS over UDP").to.be.greaterThan(1);
    const judged = [...tcp.map((f) => f.layers.tcp!.checksumOk), ...udp.map((f) => f.layers.udp!.checksumOk)];
    expect(judged.filter((ok) => ok !== true), "checksums not good").to.deep.equal([]);
    expect(inspect(file, false)).to.not.contain("bad-checksum");
    if (spawnSync("tshark", ["--version"], { stdio: "ignore" }).error) {
      console.log("    (tshark not installed: its verdict is not compared)");
      return;
    }
    const t = spawnSync(
      "tshark",
      ["-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "tcp.checksum.status", "-e", "udp.checksum.status", "-e", "ip.checksum.status"],
      { encoding: "utf8" },
    );
    expect(t.status, t.stderr).to.equal(0);
    const statuses = t.stdout.split("\n").filter((l) => l !== "");
    expect(statuses.length).to.equal(frames.length);
    // tshark's status 0 is "bad".
    expect(statuses.filter((l) => l.split("\t").some((v) => v.split(",").includes("0")))).to.deep.equal([]);
  });

  it("refuses a --pcap path that is a link or a device: exit 1 with the reason, at once, the target intact", async () => {
    const target = join(dir, "target");
    writeFileSync(target, "keep");
    const link = join(dir, "link.pcap");
    symlinkSync(target, link);
    for (const [path, why] of [
      [link, /link\.pcap: is a symbolic link; refusing to follow it/],
      ["/dev/full", /\/dev\/full: is a character device/],
    ] as const) {
      // The wrapped TAP used to stay open after the refusal, and skiff never exited.
      const r = await promisify(execFile)(process.execPath, [bin, "run", "--pcap", path, "--", "true"], { timeout: 20_000 }).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code?: number; killed?: boolean; stderr?: string }) => ({ code: e.killed ? -1 : (e.code ?? -1), stderr: e.stderr ?? "" }),
      );
      expect(r.code, path).to.equal(1);
      expect(r.stderr).to.match(why);
    }
    expect(readFileSync(target, "utf8")).to.equal("keep");
  });
});
