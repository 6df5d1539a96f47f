/**
 * The Unix-socket forward (src/forward/unix.ts), driven frame by frame with a recording channel
 * as the guest: the socket file is private (0600) and a live one is refused; a connection
 * becomes an ARP request then a SYN to the guest port (RFC 9293 §3.10.1); the guest's RST
 * (closed port) closes the host client (a Unix socket has no reset); SYN-ACK then data from the
 * client reaches the guest; `close` removes the socket file.
 */
import { expect } from "chai";
import { connect, type Socket } from "node:net";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { NeighborResolver } from "../../src/forward/neighbor.js";
import { UnixForward } from "../../src/forward/unix.js";
import { emitEthernet, EthernetFrame, EtherType } from "../../src/ethernet/ethernet.js";
import { ArpOp, emitArp } from "../../src/ethernet/arp.js";
import { parseIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { parseTcp, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import { isWireError } from "../../src/common/wire-error.js";
import { GUEST_MAC, GW_MAC, GUEST_IP, GW_IP, RecordingChannel, guestSegment } from "../support/stack.js";

function arpReply(): Uint8Array {
  const f = new Uint8Array(60);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.ARP }, f);
  emitArp({ op: ArpOp.Reply, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: GW_MAC, targetIp: GW_IP }, f, o);
  return f;
}

function segments(ch: RecordingChannel): Array<{ src: number; dst: number; seg: TcpRepr }> {
  const out = [];
  for (const frame of ch.sent) {
    const eth = new EthernetFrame(frame);
    if (eth.ethertype !== EtherType.IPv4) continue;
    const ip = parseIpv4(eth.payload);
    if (isWireError(ip) || ip.protocol !== IpProtocol.TCP) continue;
    const seg = parseTcp(eth.payload.subarray(20, 20 + ip.payloadLength), ip.src, ip.dst);
    if (!isWireError(seg)) out.push({ src: ip.src, dst: ip.dst, seg });
  }
  return out;
}

async function until<T>(f: () => T | undefined, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() - t0 > 3000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("forward/unix: a host Unix socket forwarded to a guest TCP port", () => {
  let dir: string;
  let stack: NetworkStack;
  let tcp: TcpLayer;
  let ch: RecordingChannel;
  let fwd: UnixForward;
  let client: Socket | undefined;
  const path = () => join(dir, "docker.sock");

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-unixfwd-"));
    stack = new NetworkStack({});
    ch = new RecordingChannel();
    stack.attach(ch);
    tcp = new TcpLayer(stack);
    fwd = await UnixForward.listen(tcp, new NeighborResolver(stack), path(), GUEST_IP, 2375, { label: "docker socket" });
  });
  afterEach(async () => {
    client?.destroy();
    await fwd.destroy();
    tcp.close();
    stack.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is 0600, refuses a second listener on a live socket, and close removes the file", async () => {
    expect(statSync(path()).mode & 0o777).to.equal(0o600);
    let err: Error | undefined;
    await UnixForward.listen(tcp, new NeighborResolver(stack), path(), GUEST_IP, 2375, { label: "docker socket" }).catch((e: Error) => (err = e));
    expect(err?.message).to.equal(`docker socket ${path()} is in use by a running process`);
    await fwd.close();
    expect(existsSync(path())).to.equal(false);
  });

  it("ARP, then a SYN to the guest port; the guest's RST closes the host client", async () => {
    const port = stack.attached[0];
    client = connect(path());
    const closed = new Promise<boolean>((r) => client!.once("close", r));
    client.on("error", () => {});
    await until(() => (ch.sent.length > 0 ? true : undefined), "the ARP request");
    stack.receive(port, arpReply());
    const syn = await until(() => segments(ch).find((s) => s.seg.flags & TcpFlag.SYN), "the SYN");
    expect(syn.dst).to.equal(GUEST_IP);
    expect(syn.seg.dstPort).to.equal(2375);
    stack.receive(port, guestSegment(GUEST_IP, syn.src, { srcPort: 2375, dstPort: syn.seg.srcPort, seq: 0, ack: (syn.seg.seq + 1) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK, window: 0, urgentPointer: 0, options: {}, payload: new Uint8Array(0) }));
    await closed;
    expect(fwd.counters).to.deep.include({ accepted: 1, refused: 1, connected: 0 });
  });

  it("after the guest's SYN-ACK the client's bytes reach the guest", async () => {
    const port = stack.attached[0];
    client = connect(path());
    client.on("error", () => {});
    await until(() => (ch.sent.length > 0 ? true : undefined), "the ARP request");
    stack.receive(port, arpReply());
    const syn = await until(() => segments(ch).find((s) => s.seg.flags & TcpFlag.SYN), "the SYN");
    stack.receive(port, guestSegment(GUEST_IP, syn.src, { srcPort: 2375, dstPort: syn.seg.srcPort, seq: 1000, ack: (syn.seg.seq + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535, urgentPointer: 0, options: { mss: 1460 }, payload: new Uint8Array(0) }));
    client.write("GET /_ping HTTP/1.1\r\n\r\n");
    const data = await until(() => segments(ch).find((s) => s.seg.payload.length > 0), "the client's bytes");
    expect(Buffer.from(data.seg.payload).toString()).to.equal("GET /_ping HTTP/1.1\r\n\r\n");
    expect(fwd.counters).to.deep.include({ accepted: 1, connected: 1 });
  });
});
