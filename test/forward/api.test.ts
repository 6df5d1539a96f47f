/**
 * The control API over its Unix socket: owner-only mode, forwards added, listed and removed,
 * DNS records, leases, captures, and a 400 naming the problem for every bad request — with
 * the state unchanged afterwards. No guest is needed: forwards only listen here.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { ForwardManager } from "../../src/forward/manager.js";
import { ApiServer } from "../../src/forward/api.js";
import { apiRequest } from "../../src/forward/client.js";
import { RecordStore } from "../../src/dns/records.js";
import { CaptureChannel } from "../../src/link/capture.js";
import { PcapWriter } from "../../src/pcap/writer.js";
import { RecordingChannel } from "../support/stack.js";

describe("forward/api: the control API on a Unix socket", () => {
  let dir: string;
  let sock: string;
  let stack: NetworkStack;
  let tcp: TcpLayer;
  let fm: ForwardManager;
  let api: ApiServer;
  let records: RecordStore;
  let capture: CaptureChannel;
  const call = (method: string, path: string, body?: unknown) => apiRequest(sock, method, path, body);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-api-"));
    sock = join(dir, "api.sock");
    stack = new NetworkStack();
    capture = new CaptureChannel(new RecordingChannel());
    stack.attach(capture);
    tcp = new TcpLayer(stack);
    fm = new ForwardManager(stack, tcp);
    records = new RecordStore(stack.config);
    api = await ApiServer.listen(sock, {
      forwards: fm,
      defaultGuest: "192.168.65.3",
      leases: () => [{ mac: "52:54:00:65:00:03", ip: "192.168.65.3", static: true }],
      dns: records,
      stats: () => ({ stack: stack.counters.snapshot(), forwards: fm.stats() }),
      capture: {
        start: (p) => capture.startCapture(PcapWriter.toFile(p)),
        stop: () => {
          const was = capture.capturing !== undefined;
          capture.stopCapture();
          return was;
        },
      },
    });
  });

  afterEach(async () => {
    await api.close();
    fm.closeAll();
    tcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates the socket owner-only (mode 0600)", () => {
    const st = statSync(sock);
    expect(st.isSocket()).to.equal(true);
    expect(st.mode & 0o777).to.equal(0o600);
  });

  it("adds, lists and removes a forward", async () => {
    expect((await call("GET", "/forwards")).body).to.deep.equal([]);
    const r = await call("POST", "/forwards", { proto: "tcp", hostAddr: "127.0.0.1", hostPort: 0, guestPort: 80 });
    expect(r.status).to.equal(201);
    const f = r.body as { id: string; hostPort: number; guestAddr: string };
    expect(f.id).to.be.a("string");
    expect(f.hostPort).to.be.above(0);
    expect(f.guestAddr).to.equal("192.168.65.3");
    expect((await call("GET", "/forwards")).body).to.deep.equal([f]);
    expect((await call("DELETE", `/forwards/${f.id}`)).status).to.equal(200);
    expect((await call("GET", "/forwards")).body).to.deep.equal([]);
    expect((await call("DELETE", `/forwards/${f.id}`)).status).to.equal(404);
  });

  it("answers every bad forward request with 400 naming the problem, and changes nothing", async () => {
    const kept = (await call("POST", "/forwards", { hostPort: 0, guestPort: 22 })).body;
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const busyPort = (busy.address() as { port: number }).port;
    try {
      for (const [body, why] of [
        ["{not json", /malformed JSON/],
        ["", /expected JSON/],
        [{ hostPort: 1, guestPort: 2, colour: "red" }, /unknown field "colour"/],
        [{ hostAddr: "999.1.1.1", hostPort: 0, guestPort: 2 }, /hostAddr: not an IPv4 address/],
        [{ hostPort: -1, guestPort: 2 }, /hostPort: expected an integer in 0\.\.65535/],
        [{ hostPort: 0, guestPort: 70000 }, /guestPort/],
        [{ proto: "icmp", hostPort: 0, guestPort: 2 }, /proto/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "8.8.8.8" }, /guestAddr: 8\.8\.8\.8 is not a guest address/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "192.168.65.1" }, /not a guest address/],
        [{ hostPort: busyPort, guestPort: 2 }, new RegExp(`port ${busyPort} is already in use`)],
      ] as const) {
        const r = await call("POST", "/forwards", body);
        expect(r.status, JSON.stringify(body)).to.equal(400);
        expect((r.body as { error: string }).error, JSON.stringify(body)).to.match(why);
        expect((await call("GET", "/forwards")).body).to.deep.equal([kept]);
      }
    } finally {
      busy.close();
    }
  });

  it("404 for unknown paths, 405 for a known path with another method", async () => {
    const r = await call("GET", "/nope");
    expect(r.status).to.equal(404);
    expect((r.body as { error: string }).error).to.match(/no such endpoint: \/nope/);
    expect((await call("GET", "/forwards/1/extra")).status).to.equal(404);
    expect((await call("PUT", "/forwards")).status).to.equal(405);
  });

  it("DNS records: add, list, remove; bad names and addresses are 400", async () => {
    expect((await call("POST", "/dns/records", { name: "app.test", ip: "192.168.65.3" })).status).to.equal(201);
    const list = (await call("GET", "/dns/records")).body as Array<{ name: string; ip: string }>;
    expect(list.some((r) => r.name === "app.test" && r.ip === "192.168.65.3")).to.equal(true);
    for (const body of [{ name: "app.test", ip: "nope" }, { name: "app.test" }, { name: "x", ip: "1.2.3.4", ttl: 5 }, { name: 5, ip: "1.2.3.4" }, "[]"]) {
      expect((await call("POST", "/dns/records", body)).status, JSON.stringify(body)).to.equal(400);
    }
    expect(records.list().filter((r) => !r.builtin)).to.have.length(1);
    expect((await call("DELETE", "/dns/records/app.test")).status).to.equal(200);
    expect((await call("DELETE", "/dns/records/app.test")).status).to.equal(404);
  });

  it("leases and stats", async () => {
    expect((await call("GET", "/leases")).body).to.deep.equal([{ mac: "52:54:00:65:00:03", ip: "192.168.65.3", static: true }]);
    const st = (await call("GET", "/stats")).body as { stack: { rxFrames: number } };
    expect(st.stack.rxFrames).to.equal(0);
  });

  it("starts and stops a capture; a relative or unwritable path is 400", async () => {
    const file = join(dir, "cap.pcap");
    expect((await call("POST", "/capture", { path: "rel.pcap" })).status).to.equal(400);
    expect((await call("POST", "/capture", { path: "/nonexistent-dir/x.pcap" })).status).to.equal(400);
    expect(capture.capturing).to.equal(undefined);
    expect((await call("POST", "/capture", { path: file })).status).to.equal(201);
    stack.requestArp(0xc0a84103);
    expect((await call("DELETE", "/capture")).status).to.equal(200);
    expect(existsSync(file)).to.equal(true);
    expect(statSync(file).size).to.equal(24 + 16 + 60); // header + one ARP frame
    expect((await call("DELETE", "/capture")).status).to.equal(404);
  });

  it("refuses a socket in use, and a path that is not a socket", async () => {
    let msg = "";
    await ApiServer.listen(sock, { forwards: fm }).catch((e: Error) => (msg = e.message));
    expect(msg).to.match(/in use/);
    await api.close();
    writeFileSync(join(dir, "plain"), "x");
    await ApiServer.listen(join(dir, "plain"), { forwards: fm }).catch((e: Error) => (msg = e.message));
    expect(msg).to.match(/plain/);
  });
});
