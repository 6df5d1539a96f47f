import { expect } from "chai";
import { TX_CSUM_PARTIAL, txGsoMeta } from "../../src/common/frame-channel.js";
import { emitVnetHeader, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_HDR_LEN } from "../../src/link/vnet.js";

/** An Ethernet + IPv4 (IHL words) + L4 frame with `proto` and a TCP data offset of `tcpWords`. */
function frame(proto: number, ihl = 5, tcpWords = 8, payload = 100): Uint8Array {
  const f = new Uint8Array(14 + ihl * 4 + tcpWords * 4 + payload);
  f[12] = 0x08;
  f[13] = 0x00;
  f[14] = 0x40 | ihl;
  f[14 + 9] = proto;
  f[14 + ihl * 4 + 12] = tcpWords << 4;
  return f;
}

const le16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);

describe("link/vnet: virtio-net header for TAP offload", () => {
  it("plain frame: all zero", () => {
    const h = new Uint8Array(VNET_HDR_LEN).fill(0xee);
    expect(emitVnetHeader(h, frame(6), 0)).to.equal(true);
    expect(Array.from(h)).to.deep.equal(new Array(10).fill(0));
  });

  it("TCP partial checksum: NEEDS_CSUM, csum_start after the IP header (with options), offset 16", () => {
    const h = new Uint8Array(VNET_HDR_LEN);
    expect(emitVnetHeader(h, frame(6, 6), TX_CSUM_PARTIAL)).to.equal(true);
    expect(h[0]).to.equal(VNET_F_NEEDS_CSUM);
    expect(h[1]).to.equal(0);
    expect(le16(h, 6)).to.equal(14 + 24);
    expect(le16(h, 8)).to.equal(16);
  });

  it("UDP partial checksum: offset 6", () => {
    const h = new Uint8Array(VNET_HDR_LEN);
    expect(emitVnetHeader(h, frame(17), TX_CSUM_PARTIAL)).to.equal(true);
    expect(le16(h, 6)).to.equal(34);
    expect(le16(h, 8)).to.equal(6);
  });

  it("TCP super-segment: GSO TCPv4, gso_size = MSS, hdr_len = Ethernet + IP + TCP header", () => {
    const h = new Uint8Array(VNET_HDR_LEN);
    expect(emitVnetHeader(h, frame(6, 5, 8, 20_000), txGsoMeta(1448))).to.equal(true);
    expect(h[0]).to.equal(VNET_F_NEEDS_CSUM);
    expect(h[1]).to.equal(VNET_GSO_TCPV4);
    expect(le16(h, 2)).to.equal(14 + 20 + 32);
    expect(le16(h, 4)).to.equal(1448);
    expect(le16(h, 6)).to.equal(34);
    expect(le16(h, 8)).to.equal(16);
  });

  it("IPv6: partial checksum and GSO TCPv6 after the 40-byte header", () => {
    const f = new Uint8Array(14 + 40 + 32 + 20_000);
    f[12] = 0x86;
    f[13] = 0xdd;
    f[14] = 0x60;
    f[14 + 6] = 6;
    f[14 + 40 + 12] = 8 << 4;
    const h = new Uint8Array(VNET_HDR_LEN);
    expect(emitVnetHeader(h, f, txGsoMeta(1428))).to.equal(true);
    expect([h[0], h[1], le16(h, 2), le16(h, 4), le16(h, 6), le16(h, 8)]).to.deep.equal([VNET_F_NEEDS_CSUM, VNET_GSO_TCPV6, 14 + 40 + 32, 1428, 54, 16]);
    f[14 + 6] = 17;
    expect(emitVnetHeader(h, f, TX_CSUM_PARTIAL)).to.equal(true);
    expect([h[1], le16(h, 6), le16(h, 8)]).to.deep.equal([0, 54, 6]);
    f[14 + 6] = 58;
    expect(emitVnetHeader(h, f, TX_CSUM_PARTIAL)).to.equal(false);
  });

  it("refuses metadata that cannot apply: GSO on UDP, partial checksum on ICMP or on a non-IPv4 frame", () => {
    const h = new Uint8Array(VNET_HDR_LEN);
    expect(emitVnetHeader(h, frame(17), txGsoMeta(1400))).to.equal(false);
    expect(emitVnetHeader(h, frame(1), TX_CSUM_PARTIAL)).to.equal(false);
    const arp = frame(6);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(emitVnetHeader(h, arp, TX_CSUM_PARTIAL)).to.equal(false);
    expect(emitVnetHeader(h, new Uint8Array(20), TX_CSUM_PARTIAL)).to.equal(false);
  });
});
