/**
 * End to end: TCP through skiff under random loss (issue 19). The Linux kernel's TCP in a
 * namespace talks to servers on the host through skiff's engine while nftables drops 5% of the
 * frames each way (test/support/lossy-link.ts: the guest sits behind a bridged veth whose two
 * ingresses drop; this kernel has no sch_netem). Correctness only — SHA-256 equal both ways, the
 * loss really applied, and skiff's RACK-TLP (RFC 8985) doing the repairs; speed is the bench's.
 */
import { expect } from "chai";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireNetns, run } from "../support/netns.js";
import { startGuest, type Guest } from "../support/guest.js";
import { inNs, lossLink, type LossLink } from "../support/lossy-link.js";
import { until } from "../support/wait.js";
import { answerBodyHash } from "../support/upload.js";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const SIZE = 4 * 1000 * 1000;
const LOSS_PCT = 5;

describe(`e2e: TCP through skiff with ${LOSS_PCT}% random loss each way (MTU 1500, no offload)`, function () {
  this.timeout(180_000);
  requireNetns(["/dev/net/tun"]);

  let guest: Guest;
  let link: LossLink | undefined;
  let http: HttpServer;
  let port: number;
  let dir: string;
  const blob = randomBytes(SIZE);
  const upload = randomBytes(SIZE);

  before(async function () {
    for (const tool of ["nft", "ethtool", "curl"]) {
      if ((await run(["sh", "-c", `command -v ${tool}`])).code !== 0) {
        console.log(`    skipped: ${tool} is not installed (scripts/setup.sh installs it)`);
        this.skip();
      }
    }
    dir = mkdtempSync(join(tmpdir(), "skiff-tcp-loss-"));
    writeFileSync(join(dir, "upload.bin"), upload, { mode: 0o600 });
    // GET /blob sends the blob; POST /sink answers "<bytes> <sha256>" of the body.
    http = createHttpServer((req, res) => {
      if (req.method === "GET" && req.url === "/blob") {
        res.writeHead(200, { "content-length": blob.length });
        res.end(blob);
        return;
      }
      answerBodyHash(req, res);
    });
    port = await new Promise<number>((resolve) => http.listen(0, "127.0.0.1", () => resolve((http.address() as { port: number }).port)));
    guest = await startGuest("skiff-e2e-loss", { mtu: 1500, offload: false });
    link = lossLink({ nsPath: guest.ns.path }, LOSS_PCT);
  });

  after(async () => {
    link?.undo();
    await guest?.close();
    http?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Run in the lossy guest namespace. */
  const inGuest = (argv: string[]) => run(inNs(link!.nsPath, argv), 150_000);

  it(`downloads ${SIZE / 1e6} MB (skiff sends): SHA-256 equal; frames were dropped both ways; RACK-TLP repaired the losses`, async () => {
    const before = link!.dropped();
    const r = await inGuest(["sh", "-c", `curl -sS --max-time 140 http://192.168.65.2:${port}/blob | sha256sum`]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.split(" ")[0]).to.equal(sha256(blob));
    const after = link!.dropped();
    // 5% of ~2,800 data frames and ~1,400 ACKs: both far above zero.
    expect(after.toGuest - before.toGuest).to.be.above(20);
    expect(after.fromGuest - before.fromGuest).to.be.above(5);
    await until(() => guest.tcp.counters.flowsClosed >= 1, 10_000, "the flow to close");
    const c = guest.tcp.counters;
    expect(c.rackRecoveries + c.lossProbes, JSON.stringify(c)).to.be.above(0);
  });

  it(`uploads ${SIZE / 1e6} MB (skiff receives, SACK): SHA-256 equal at the host`, async () => {
    const before = link!.dropped();
    const r = await inGuest(["curl", "-sS", "--max-time", "140", "--data-binary", `@${join(dir, "upload.bin")}`, "-H", "Content-Type: application/octet-stream", `http://192.168.65.2:${port}/sink`]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal(`${upload.length} ${sha256(upload)}`);
    const after = link!.dropped();
    expect(after.fromGuest - before.fromGuest).to.be.above(20);
  });
});
