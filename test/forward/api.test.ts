/**
 * The control API over its Unix socket: owner-only mode, forwards added, listed and removed,
 * DNS records, leases, captures, and a 400 naming the problem for every bad request — with
 * the state unchanged afterwards. No guest is needed: forwards only listen here.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { ForwardManager } from "../../src/forward/manager.js";
import { ApiServer } from "../../src/forward/api.js";
import { apiRequest } from "../../src/forward/client.js";
import { RecordStore } from "../../src/dns/records.js";
import { CaptureChannel } from "../../src/link/capture.js";
import { RecordingChannel } from "../support/stack.js";
import { until } from "../support/wait.js";

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
      defaultGuest6: "fd73:6b69:6666::3",
      leases: () => [{ mac: "52:54:00:65:00:03", ip: "192.168.65.3", static: true }],
      dns: records,
      stats: () => ({ stack: stack.counters.snapshot(), forwards: fm.stats() }),
      capture: {
        start: (p) => capture.startFile(p),
        status: () => capture.status(),
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

  it("IPv6: a forward to a guest's IPv6 address; on an IPv6 host address without guestAddr, the default guest's IPv6 address with IPv4 fallback", async () => {
    const a = await call("POST", "/forwards", { hostAddr: "::1", hostPort: 0, guestAddr: "fd73:6b69:6666::9", guestPort: 80 });
    expect(a.status, JSON.stringify(a.body)).to.equal(201);
    expect(a.body).to.deep.include({ proto: "tcp", hostAddr: "::1", guestAddr: "fd73:6b69:6666::9", guestPort: 80 });
    const b = await call("POST", "/forwards", { hostAddr: "::1", hostPort: 0, guestPort: 81 });
    expect(b.body).to.deep.include({ guestAddr: "fd73:6b69:6666::3", guestAddrFallback: "192.168.65.3", guestPort: 81 });
    const u = await call("POST", "/forwards", { proto: "udp", hostAddr: "::1", hostPort: 0, guestPort: 53 });
    expect(u.body).to.deep.include({ proto: "udp", guestAddr: "192.168.65.3" });
    expect((await call("GET", "/forwards")).body).to.deep.equal([a.body, b.body, u.body]);
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
        [{ hostAddr: "999.1.1.1", hostPort: 0, guestPort: 2 }, /hostAddr: not an IPv4 or IPv6 address/],
        [{ hostPort: -1, guestPort: 2 }, /hostPort: expected an integer in 0\.\.65535/],
        [{ hostPort: 0, guestPort: 70000 }, /guestPort/],
        [{ proto: "icmp", hostPort: 0, guestPort: 2 }, /proto/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "8.8.8.8" }, /guestAddr: 8\.8\.8\.8 is not a guest address/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "192.168.65.1" }, /not a guest address/],
        [{ hostPort: busyPort, guestPort: 2 }, new RegExp(`port ${busyPort} is already in use`)],
        [{ hostPort: 0, guestPort: 2, guestAddr: "2001:db8::1" }, /guestAddr: 2001:db8::1 is not a guest address of the network/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "fd73:6b69:6666::1" }, /guestAddr: fd73:6b69:6666::1 is not a guest address/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "fd73:6b69:6666::2" }, /is not a guest address/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "fe80::1%sk0" }, /guestAddr: not an IPv4 or IPv6 address/],
        [{ hostPort: 0, guestPort: 2, guestAddr: "fd73:6b69:6666::9", guestAddrFallback: "8.8.8.8" }, /guestAddrFallback: 8\.8\.8\.8 is not a guest address/],
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

  it("refuses a capture path that is a device, a FIFO or a link with 400 and the reason", async () => {
    const fifo = join(dir, "fifo.pcap");
    expect(spawnSync("mkfifo", [fifo]).status).to.equal(0);
    const link = join(dir, "link.pcap");
    symlinkSync(join(dir, "target"), link);
    for (const [path, why] of [
      ["/dev/full", /\/dev\/full: is a character device/],
      [fifo, /is a FIFO/],
      [link, /is a symbolic link/],
    ] as const) {
      const r = await call("POST", "/capture", { path });
      expect(r.status, path).to.equal(400);
      expect((r.body as { error: string }).error, path).to.match(why);
    }
    expect(existsSync(join(dir, "target"))).to.equal(false);
    expect(capture.capturing).to.equal(undefined);
  });

  it("GET /capture: running, the file, packets written and dropped", async () => {
    const file = join(dir, "cap.pcap");
    expect((await call("POST", "/capture", { path: file })).status).to.equal(201);
    stack.requestArp(0xc0a84103);
    const st = (await call("GET", "/capture")).body as { running: boolean; path: string; packetsWritten: number; packetsDropped: number };
    expect([st.running, st.path, st.packetsWritten, st.packetsDropped]).to.deep.equal([true, file, 1, 0]);
    expect((await call("DELETE", "/capture")).status).to.equal(200);
    expect(((await call("GET", "/capture")).body as { running: boolean }).running).to.equal(false);
  });

  it("answers a body over 64 KiB with 413 and an error, not a reset (declared and chunked)", async () => {
    const big = JSON.stringify({ path: "x".repeat(100 * 1024) });
    const r = await call("POST", "/capture", big);
    expect(r.status).to.equal(413);
    expect((r.body as { error: string }).error).to.match(/larger than 65536 bytes/);
    // Without Content-Length: the limit is found while reading.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ socketPath: sock, method: "POST", path: "/dns/records", headers: { "content-type": "application/json" } }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      for (let i = 0; i < 10; i++) req.write("x".repeat(16 * 1024));
      req.end();
    });
    expect(chunked.status).to.equal(413);
    expect(JSON.parse(chunked.body).error).to.match(/larger than/);
    // The API still answers.
    expect((await call("GET", "/forwards")).status).to.equal(200);
  });

  it("answers a malformed percent-encoding with 400 and an error", async () => {
    for (const path of ["/forwards/%E0%A4%A", "/dns/records/%zz", "/forwards/%"]) {
      const r = await call("DELETE", path);
      expect(r.status, path).to.equal(400);
      expect((r.body as { error: string }).error, path).to.match(/malformed percent-encoding/);
    }
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

/** Raw connections to a Unix socket, for the resource limits. */
function rawConnect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Resolves with true when `s` closes within `ms`, false otherwise. */
function closesWithin(s: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    s.once("close", () => {
      clearTimeout(t);
      resolve(true);
    });
    s.on("error", () => {});
    s.resume();
  });
}

/** One HTTP/1.1 request on a raw connection; resolves with the status line. */
function rawGet(s: Socket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes("\r\n\r\n")) {
        s.off("data", onData);
        resolve(got.split("\r\n")[0]);
      }
    };
    s.on("data", onData);
    s.write(`GET ${path} HTTP/1.1\r\nhost: skiff\r\n\r\n`);
  });
}

describe("forward/api: resource limits", () => {
  let dir: string;
  let stack: NetworkStack;
  let tcp: TcpLayer;
  let fm: ForwardManager;
  let api: ApiServer | undefined;
  const held: Socket[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-api-lim-"));
    stack = new NetworkStack();
    tcp = new TcpLayer(stack);
    fm = new ForwardManager(stack, tcp);
  });
  afterEach(async () => {
    for (const s of held.splice(0)) s.destroy();
    await api?.close();
    fm.closeAll();
    tcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("at maxConnections, a new connection replaces the oldest one without a request in progress: slowloris clients cannot lock the API out", async () => {
    const sock = join(dir, "api.sock");
    api = await ApiServer.listen(sock, { forwards: fm }, { maxConnections: 4 });
    // Four clients that never finish their headers hold every slot.
    for (let i = 0; i < 4; i++) {
      const s = await rawConnect(sock);
      s.write("GET /forwards HTTP/1.1\r\nhost: sk");
      held.push(s);
    }
    await until(() => api!.counters.connections === 4, 2000, "4 connections");
    // A well-behaved client still gets its answer; the oldest slow one made room.
    expect((await apiRequest(sock, "GET", "/forwards")).status).to.equal(200);
    expect(await closesWithin(held[0], 2000), "the oldest slow client is closed").to.equal(true);
    expect(api.counters.connectionsEvicted).to.be.at.least(1);
    expect(api.counters.connections).to.be.at.most(4);
  });

  it("at maxConnections with every connection mid-request, a new one is closed at once and counted; the others are served", async () => {
    const sock = join(dir, "api.sock");
    api = await ApiServer.listen(sock, { forwards: fm }, { maxConnections: 4 });
    // Four requests in progress: headers sent, the body not yet.
    for (let i = 0; i < 4; i++) {
      const s = await rawConnect(sock);
      s.write("POST /forwards HTTP/1.1\r\nhost: skiff\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n{");
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 100));
    const extra: Socket[] = [];
    for (let i = 0; i < 3; i++) extra.push(await rawConnect(sock));
    for (const s of extra) expect(await closesWithin(s, 2000), "a connection beyond the cap is closed").to.equal(true);
    expect(api.counters.connectionsRefused).to.equal(3);
    expect(api.counters.connectionsEvicted).to.equal(0);
    // The requests in progress complete.
    held[0].write(`"proto":"tcp"}`.padEnd(39));
    const status = await new Promise<string>((resolve) => {
      let got = "";
      held[0].on("data", (d: Buffer) => {
        got += d.toString();
        if (got.includes("\r\n")) resolve(got.split("\r\n")[0]);
      });
    });
    expect(status, "the request in progress is answered (400: no guest address given)").to.match(/^HTTP\/1.1 400/);
  });

  it("closes a connection that does not finish its headers in time, and one that stays idle", async () => {
    const sock = join(dir, "api.sock");
    api = await ApiServer.listen(sock, { forwards: fm }, { headersTimeoutMs: 200, idleTimeoutMs: 400 });
    const slow = await rawConnect(sock);
    held.push(slow);
    slow.write("GET /forwards HTTP/1.1\r\nhost: sk");
    const silent = await rawConnect(sock);
    held.push(silent);
    const t0 = Date.now();
    expect(await closesWithin(slow, 3000), "slow headers closed").to.equal(true);
    expect(await closesWithin(silent, 3000), "idle connection closed").to.equal(true);
    expect(Date.now() - t0).to.be.below(3000);
    expect((await apiRequest(sock, "GET", "/forwards")).status).to.equal(200);
  });

  it("refuses limits that are not positive integers", async () => {
    let msg = "";
    await ApiServer.listen(join(dir, "x.sock"), { forwards: fm }, { maxConnections: 0 }).catch((e: Error) => (msg = e.message));
    expect(msg).to.match(/maxConnections must be a positive integer/);
  });
});
