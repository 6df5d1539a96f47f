/**
 * `skiff serve`: guests attached in different ways share one switched network with the
 * gateway — QEMU stream over Unix and TCP, QEMU dgram — get ARP answers and DHCP leases,
 * reach each other directly, and the sockets are gone after stop.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { serve } from "../../src/cli/serve.js";
import { connectQemuStream } from "../../src/link/qemu-stream.js";
import { UnixDgramChannel } from "../../src/link/unix-dgram.js";
import type { FrameChannel } from "../../src/common/frame-channel.js";
import { emitEthernet, parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp, parseArp } from "../../src/ethernet/arp.js";
import { isWireError } from "../../src/common/wire-error.js";
import { GW_IP, GW_MAC } from "../support/stack.js";
import { until, collectFrames } from "../support/wait.js";
import { apiRequest } from "../../src/forward/client.js";
import { startServe } from "../support/serve.js";

function arp(op: number, srcMac: number, srcIp: number, dstMac: number, targetMac: number, targetIp: number): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst: dstMac, src: srcMac, ethertype: EtherType.ARP }, f);
  emitArp({ op, senderMac: srcMac, senderIp: srcIp, targetMac, targetIp }, f, o);
  return f;
}

describe("cli/serve: several attachments on one switched network", function () {
  this.timeout(20_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "skiff-serve-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("QEMU stream (Unix, TCP) and dgram guests get gateway ARP, reach each other, and the sockets go at stop", async () => {
    const streamPath = join(dir, "qemu.sock");
    const dgramPath = join(dir, "skiff-dgram.sock");
    const api = join(dir, "api.sock");
    const { done, stop } = await startServe({
      qemuStream: [`unix:${streamPath}`, "tcp:127.0.0.1:0"],
      qemuDgram: [dgramPath],
      apiSocket: api,
    });
    const a = await connectQemuStream(`unix:${streamPath}`);
    const b = UnixDgramChannel.open("qemu-b", { localPath: join(dir, "qemu-b.sock"), peerPath: dgramPath });
    const guests: Array<[FrameChannel, number, number]> = [
      [a, 0x5254_0000_0001, 0xc0a8_4101 + 9],
      [b, 0x5254_0000_0002, 0xc0a8_4101 + 19],
    ];
    const got = guests.map(([ch]) => collectFrames(ch));
    // Each guest asks for the gateway: each gets the gateway's answer.
    for (const [ch, mac, ip] of guests) ch.send(arp(ArpOp.Request, mac, ip, 0xffff_ffff_ffff, 0, GW_IP));
    const isReply = (f: Uint8Array) => {
      const r = parseArp(f.subarray(14));
      return !isWireError(r) && r.op === ArpOp.Reply;
    };
    await until(() => got.every((g) => g.some(isReply)), 5000, "ARP replies");
    for (const g of got) {
      const reply = g.map((f) => parseArp(f.subarray(14))).find((r) => !isWireError(r) && r.op === ArpOp.Reply);
      expect(reply && !isWireError(reply) && reply.senderMac).to.equal(GW_MAC);
    }
    // Guest A's frame to guest B's MAC goes to B directly through the switch. (An ARP probe,
    // sender 0.0.0.0: these guests have no lease, and source validation keeps a claimed
    // address that is not theirs from reaching other guests.)
    const before = got[1].length;
    a.send(arp(ArpOp.Request, guests[0][1], 0, guests[1][1], 0, guests[1][2]));
    await until(() => got[1].length > before, 5000, "A → B");
    const e = parseEthernet(got[1][got[1].length - 1]);
    expect(!isWireError(e) && e.src).to.equal(guests[0][1]);
    // The control API sees both attachments (the switch's port for the stack among them).
    const stats = await apiRequest(api, "GET", "/stats");
    expect(stats.status).to.equal(200);
    a.close();
    b.close();
    stop();
    expect(await done).to.equal(0);
    expect(existsSync(streamPath) || existsSync(dgramPath) || existsSync(api)).to.equal(false);
  });

  it("refuses to start with nothing to serve", async () => {
    let err: Error | undefined;
    try {
      await serve({ qemuStream: [], qemuDgram: [], vmnet: [], vfkit: [], mtu: 1500, log: pino({ level: "silent" }) });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/nothing to serve/);
  });
});
