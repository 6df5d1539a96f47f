// A test harness driving a fake guest through an in-memory link: no VM, no root, no sockets.
// The guest asks skiff's DHCP server for a lease (RFC 2131 DISCOVER/OFFER/REQUEST/ACK), then
// asks skiff's DNS server for host.internal (RFC 1035 §4.1 query over UDP port 53), using the
// Ethernet/IPv4/UDP/DHCP codecs skiff exports. Run: node examples/fake-guest.mjs
import {
  createNetwork, memoryPair, emitEthernet, emitIpv4, emitUdp, emitDhcp, dhcpLen, parseDhcp,
  messageType, u32Option, getOption, formatIpv4, parseMac, EtherType, IpProtocol, NO_IPV4_OPTIONS,
  DhcpMessageType, DhcpOption, MAC_BROADCAST, isWireError,
} from "skiff";

const MAC = parseMac("52:54:00:12:34:56");
const net = await createNetwork({ mtu: 1500 });
const [guestEnd, skiffEnd] = memoryPair({ mtu: 1500 });
net.attach(skiffEnd);

// Frames from skiff: keep the UDP payloads addressed to us, by destination port.
const waiting = new Map(); // port -> resolve
guestEnd.setReceiver((frame) => {
  if (frame.length < 42 || ((frame[12] << 8) | frame[13]) !== EtherType.IPv4 || frame[23] !== IpProtocol.UDP) return;
  const l4 = 14 + (frame[14] & 15) * 4;
  const port = (frame[l4 + 2] << 8) | frame[l4 + 3];
  const resolve = waiting.get(port);
  if (resolve) {
    waiting.delete(port);
    resolve(frame.slice(l4 + 8)); // copy: the frame is borrowed
  }
});

/** Send one UDP datagram from the guest and wait for the answer to `srcPort`. */
function udp(src, dst, dstMac, srcPort, dstPort, payload) {
  const frame = new Uint8Array(14 + 20 + 8 + payload.length);
  let o = emitEthernet({ dst: dstMac, src: MAC, ethertype: EtherType.IPv4 }, frame);
  o += emitIpv4({ src, dst, protocol: IpProtocol.UDP, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: 8 + payload.length, options: NO_IPV4_OPTIONS }, frame, o);
  emitUdp({ srcPort, dstPort, payload }, frame, o, src, dst);
  const answer = new Promise((resolve, reject) => {
    waiting.set(srcPort, resolve);
    setTimeout(() => reject(new Error(`no answer to port ${srcPort}`)), 2000).unref();
  });
  guestEnd.send(frame);
  return answer;
}

/** One DHCP client message from 0.0.0.0:68, broadcast. */
async function dhcp(type, extra = []) {
  const repr = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x1234, secs: 0, broadcast: false, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
    chaddr: MAC, sname: "", file: "", options: [{ code: DhcpOption.MessageType, data: Uint8Array.of(type) }, ...extra],
  };
  const bytes = new Uint8Array(dhcpLen(repr));
  emitDhcp(repr, bytes);
  const reply = parseDhcp(await udp(0, 0xffffffff, MAC_BROADCAST, 68, 67, bytes));
  if (isWireError(reply)) throw new Error(`bad DHCP reply: ${reply.message}`);
  return reply;
}

const offer = await dhcp(DhcpMessageType.Discover);
const server = getOption(offer, DhcpOption.ServerId);
const ack = await dhcp(DhcpMessageType.Request, [
  { code: DhcpOption.RequestedIp, data: u32Option(offer.yiaddr) },
  { code: DhcpOption.ServerId, data: server },
]);
if (messageType(ack) !== DhcpMessageType.Ack) throw new Error("no DHCPACK");
const ip = ack.yiaddr;
console.log(`lease ${formatIpv4(ip)}`);

// DNS: a query for host.internal, type A, class IN, recursion desired.
const name = "host.internal".split(".").flatMap((l) => [l.length, ...Buffer.from(l)]);
const query = Uint8Array.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...name, 0, 0, 1, 0, 1]);
const gateway = net.config.gatewayIp;
const answer = await udp(ip, gateway, net.config.gatewayMac, 40000, 53, query);
// The answer's last 4 bytes are the A record's address (one answer, name compressed).
const a = answer.subarray(answer.length - 4);
console.log(`host.internal ${a.join(".")}`);

console.log(`leases ${JSON.stringify(net.leases().map((l) => l.ip))}`);
console.log(`attachments ${net.stats().attachments.length}`);
await net.close();
