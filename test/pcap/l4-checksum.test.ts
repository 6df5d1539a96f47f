/**
 * Partial (offload) TCP/UDP checksums completed in the capture: a frame sent or received with
 * only the pseudo-header sum in its checksum field is recorded with the full checksum, so
 * `pcap inspect` (and tshark) see no bad checksum where the wire has a good one; the frame the
 * network uses is not changed, and frames that cannot be completed are left alone.
 */
import { expect } from "chai";
import { CaptureChannel } from "../../src/link/capture.js";
import { RX_CSUM_VERIFIED, TX_CSUM_PARTIAL } from "../../src/common/frame-channel.js";
import { memoryPair } from "../../src/link/memory.js";
import { emitEthernet } from "../../src/ethernet/ethernet.js";
import { emitIpv4, NO_IPV4_OPTIONS } from "../../src/ipv4/ipv4.js";
import { pseudoHeaderSum } from "../../src/ipv4/checksum.js";
import { setU16 } from "../../src/common/bytes.js";
import { emitUdp } from "../../src/ipv4/udp.js";
import { emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import { completeL4Checksum } from "../../src/pcap/l4-checksum.js";
import { inspectPacket } from "../../src/pcap/inspect.js";
import { readPcap } from "../../src/pcap/reader.js";
import { PcapWriter } from "../../src/pcap/writer.js";
import { emitIpv6, pseudoHeaderSum6, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { readIpv6Addr } from "../../src/ipv6/addr.js";

const A = 0xc0a84103;
const B = 0xc0a84101;

/** An Ethernet/IPv4 frame around an L4 message emitted by `l4` (partial checksum where asked). */
function frame(protocol: number, l4len: number, l4: (b: Uint8Array, off: number) => void, opts: { vlan?: boolean; mf?: boolean } = {}): Uint8Array {
  const hl = opts.vlan ? 18 : 14;
  const b = new Uint8Array(hl + 20 + l4len);
  emitEthernet({ dst: 0x025000000001, src: 0x525400123456, ethertype: 0x0800, vlan: opts.vlan ? { id: 5, pcp: 0, dei: false } : undefined }, b);
  emitIpv4({ src: A, dst: B, ttl: 64, id: 1, tos: 0, df: true, mf: opts.mf ?? false, fragmentOffset: 0, payloadLength: l4len, protocol, options: NO_IPV4_OPTIONS }, b, hl);
  l4(b, hl + 20);
  return b;
}

function tcpFrame(partial: boolean, payload = 1000, vlan = false): Uint8Array {
  const r: TcpRepr = { srcPort: 40000, dstPort: 80, seq: 1, ack: 2, flags: TcpFlag.ACK | TcpFlag.PSH, window: 500, urgentPointer: 0, options: {}, payload: new Uint8Array(payload).map((_, i) => i * 7) };
  return frame(6, tcpLen(r), (b, o) => emitTcp(r, b, o, A, B, partial), { vlan });
}

function udpFrame(partial: boolean): Uint8Array {
  const payload = Uint8Array.of(1, 2, 3, 4, 5);
  return frame(17, 8 + payload.length, (b, o) => {
    emitUdp({ srcPort: 5000, dstPort: 53, payload }, b, o, A, B, { checksum: true });
    if (partial) setU16(b, o + 6, pseudoHeaderSum(A, B, 17, 8 + payload.length));
  });
}

/** An Ethernet/IPv6 TCP (6) or UDP (17) frame, its checksum partial (the pseudo-header sum) or full. */
function ipv6Frame(protocol: 6 | 17, partial: boolean): Uint8Array {
  const l4len = protocol === 6 ? 20 + 700 : 8 + 9;
  const b = new Uint8Array(14 + 40 + l4len);
  const addrs = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 0xfd) & 0xff);
  const src = readIpv6Addr(addrs, 0);
  const dst = readIpv6Addr(addrs, 16);
  emitEthernet({ dst: 0x025000000001, src: 0x525400123456, ethertype: 0x86dd }, b);
  emitIpv6({ src, dst, nextHeader: protocol, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: l4len }, b, 14);
  const l4 = 54;
  for (let i = 0; i < l4len; i++) b[l4 + i] = (i * 13) & 0xff;
  const at = protocol === 6 ? 16 : 6;
  if (protocol === 6) b[l4 + 12] = 5 << 4;
  else setU16(b, l4 + 4, l4len);
  setU16(b, l4 + at, 0);
  setU16(b, l4 + at, partial ? pseudoHeaderSum6(src, dst, protocol, l4len) : upperLayerChecksum6(b, l4, l4len, src, dst, protocol));
  return b;
}

/** Inspect every record of a memory writer. */
function inspectAll(w: PcapWriter) {
  const r = readPcap(w.bytes());
  if (!("packets" in r)) throw r;
  return r.packets.map((p, i) => inspectPacket(p, i + 1, false));
}

describe("pcap: partial (offload) checksums completed in the capture", () => {
  it("completes TCP (also behind 802.1Q) and UDP partial checksums, over IPv4 and IPv6, to what a full emit gives", () => {
    for (const [partial, full] of [
      [tcpFrame(true), tcpFrame(false)],
      [tcpFrame(true, 3, true), tcpFrame(false, 3, true)],
      [udpFrame(true), udpFrame(false)],
      [ipv6Frame(6, true), ipv6Frame(6, false)],
      [ipv6Frame(17, true), ipv6Frame(17, false)],
    ]) {
      expect(Buffer.from(partial).equals(Buffer.from(full))).to.equal(false);
      expect(completeL4Checksum(partial)).to.equal(true);
      expect(Buffer.from(partial).toString("hex")).to.equal(Buffer.from(full).toString("hex"));
    }
  });

  it("leaves alone what cannot be completed: a cut datagram, a fragment, no UDP checksum, not IPv4", () => {
    const cut = tcpFrame(true).subarray(0, 100);
    const before = Buffer.from(cut).toString("hex");
    expect(completeL4Checksum(cut)).to.equal(false);
    expect(Buffer.from(cut).toString("hex")).to.equal(before);
    const frag = frame(6, 40, () => {}, { mf: true });
    expect(completeL4Checksum(frag)).to.equal(false);
    const noSum = udpFrame(false);
    setU16(noSum, 14 + 20 + 6, 0);
    expect(completeL4Checksum(noSum)).to.equal(false);
    const arp = new Uint8Array(42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(completeL4Checksum(arp)).to.equal(false);
    expect(completeL4Checksum(new Uint8Array(5))).to.equal(false);
  });

  it("the capture wrapper records offloaded frames (both directions) with good checksums, and leaves the frames alone", async () => {
    const [a, b] = memoryPair();
    const seenByPeer: string[] = [];
    b.setReceiver((f) => seenByPeer.push(Buffer.from(f).toString("hex")));
    const w = PcapWriter.toMemory();
    const cap = new CaptureChannel(a, w);
    cap.setReceiver(() => {});
    const sent = tcpFrame(true);
    const copy = Buffer.from(sent).toString("hex");
    cap.send(sent, TX_CSUM_PARTIAL);
    expect(Buffer.from(sent).toString("hex")).to.equal(copy);
    for (let i = 0; i < 50 && seenByPeer.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(seenByPeer).to.deep.equal([copy]);
    // Received from a TAP with offloads: the guest kernel left the checksum partial.
    (a as unknown as { deliver(f: Uint8Array, flags: number): void }).deliver(udpFrame(true), RX_CSUM_VERIFIED);
    // Without a flag a bad checksum stays bad: it is what the wire had.
    cap.send(tcpFrame(true), 0);
    const frames = inspectAll(w);
    expect(frames.map((f) => f.layers.tcp?.checksumOk ?? f.layers.udp?.checksumOk)).to.deep.equal([true, true, false]);
    cap.close();
  });
});
