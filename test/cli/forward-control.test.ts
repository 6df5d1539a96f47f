/**
 * `startControl` (src/cli/forward.ts) wired to a capture: POST /capture goes through the safe
 * open (a device is a 400 with the reason, not a 201), GET /capture and GET /stats show the
 * capture's counters, and a write error stops the capture, is logged once and is shown by
 * GET /capture.
 */
import { expect } from "chai";
import { closeSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { NetworkServices as Network } from "../../src/network/services.js";
import { startControl, type Control } from "../../src/network/control.js";
import { apiRequest } from "../../src/forward/client.js";
import { CaptureChannel } from "../../src/link/capture.js";
import { memoryPair } from "../../src/link/memory.js";
import type { FileSinkIo } from "../../src/pcap/file-sink.js";

describe("cli/forward: startControl and the capture", () => {
  let dir: string;
  let net: Network;
  let control: Control | undefined;
  let capture: CaptureChannel;
  const logs: Array<{ msg: string; path?: string; err?: string }> = [];

  /** A logger whose JSON lines land in `logs`. */
  const logger = () =>
    pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line));
          cb();
        },
      }),
    );

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-control-"));
    logs.length = 0;
    net = new Network({ mtu: 1500, log: logger() });
    const [a, b] = memoryPair();
    b.setReceiver(() => {});
    capture = new CaptureChannel(a);
    net.stack.attach(capture);
  });
  afterEach(async () => {
    await control?.close();
    control = undefined;
    net.close();
    capture.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("POST /capture of a device is 400 with the reason; of a new file 201, with counters in GET /capture and /stats", async () => {
    const sock = join(dir, "api.sock");
    control = await startControl(net, { apiSocket: sock, capture, log: logger() });
    const refused = await apiRequest(sock, "POST", "/capture", { path: "/dev/full" });
    expect(refused.status).to.equal(400);
    expect((refused.body as { error: string }).error).to.equal("path: /dev/full: is a character device; only a new or regular file can hold a capture");
    const file = join(dir, "c.pcap");
    expect((await apiRequest(sock, "POST", "/capture", { path: file })).status).to.equal(201);
    net.stack.requestArp(0xc0a84103);
    const st = (await apiRequest(sock, "GET", "/capture")).body as Record<string, unknown>;
    expect(st).to.deep.include({ running: true, path: file, packetsWritten: 1, packetsDropped: 0 });
    const stats = (await apiRequest(sock, "GET", "/stats")).body as { capture: Record<string, unknown>; api: Record<string, unknown> };
    expect(stats.capture).to.deep.include({ running: true, packetsWritten: 1 });
    expect(stats.api).to.deep.include({ connectionsRefused: 0 });
  });

  it("a write error stops the capture, is logged once, and GET /capture shows it", async () => {
    const sock = join(dir, "api.sock");
    const io: FileSinkIo & { calls: number } = {
      calls: 0,
      writev: (_fd, _b, _p, cb) => {
        io.calls++;
        const e = Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
        setImmediate(() => cb(e, 0));
      },
      writeSync: (_fd, _b, _o, len) => len,
      close: (fd) => closeSync(fd),
    };
    control = await startControl(net, { apiSocket: sock, capture, log: logger() });
    const file = join(dir, "c.pcap");
    capture.startFile(file, { io });
    for (let i = 0; i < 5; i++) net.stack.requestArp(0xc0a84103 + i);
    for (let i = 0; i < 20 && capture.capturing; i++) await new Promise((r) => setImmediate(r));
    expect(capture.capturing).to.equal(undefined);
    for (let i = 0; i < 5; i++) net.stack.requestArp(0xc0a84110 + i);
    const st = (await apiRequest(sock, "GET", "/capture")).body as Record<string, unknown>;
    expect(st).to.deep.include({ running: false, path: file, error: "EIO: i/o error, write" });
    const errors = logs.filter((l) => l.msg === "capture stopped: write error");
    expect(errors).to.have.length(1);
    expect(errors[0]).to.deep.include({ path: file, err: "EIO: i/o error, write" });
  });

  it("passes apiLimits to the API: beyond maxConnections, an idle connection makes room", async () => {
    const sock = join(dir, "api.sock");
    control = await startControl(net, { apiSocket: sock, capture, log: logger(), apiLimits: { maxConnections: 1 } });
    // At the cap of 1, a second connection takes the place of the idle first one (api-connections.ts).
    const first = connect(sock);
    first.on("error", () => {});
    await new Promise((r) => first.once("connect", r));
    const closed = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 2000);
      first.once("close", () => {
        clearTimeout(t);
        resolve(true);
      });
      first.resume();
    });
    const second = connect(sock);
    second.on("error", () => {});
    const wasClosed = await closed;
    second.destroy();
    expect(wasClosed, "the idle first connection made room").to.equal(true);
  });
});
