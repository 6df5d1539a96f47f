/**
 * End to end: port forwarding from the host's ::1 into a guest's IPv6 address. The Linux
 * kernel in a namespace behind TAP is the guest; its servers (Python asyncio) are reached only
 * through forwards. A forward to the guest's IPv6 address opens over IPv6 (`TcpLayer.connect6`,
 * after a neighbour solicitation: the guest has not sent from that address yet) and the guest
 * sees the IPv6 host alias as its peer; a guest that refuses over IPv6 is tried again over
 * IPv4 when the forward has a fallback address; without one the host client is reset; UDP
 * datagrams reach the guest over IPv6 from the gateway's ULA and the replies come back.
 */
import { expect } from "chai";
import type { ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { createSocket } from "node:dgram";
import { createHash, randomBytes } from "node:crypto";
import { requireNetns } from "../support/netns.js";
import { exchange } from "../support/ports.js";
import { startGuest, startGuestServers, type Guest } from "../support/guest.js";
import { ForwardManager } from "../../src/forward/manager.js";
import type { ForwardSpec } from "../../src/forward/spec.js";
import { parseIpv6Address } from "../../src/ipv6/addr.js";

const GUEST_SERVERS = `
import asyncio, hashlib, socket
async def sink6(r, w):
    peer = w.get_extra_info("peername")[0]
    h = hashlib.sha256(); n = 0
    while True:
        d = await r.read(1 << 16)
        if not d: break
        h.update(d); n += len(d)
    w.write(f"{peer} {n} {h.hexdigest()}\\n".encode()); await w.drain(); w.close()
async def only4(r, w):
    w.write(f"v4 from {w.get_extra_info('peername')[0]}\\n".encode()); await w.drain(); w.close()
class UdpPeer(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr): self.t.sendto(data.upper() + b" from " + addr[0].encode(), addr)
async def main():
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s6.bind(("::", 9010)); s6.listen(64)
    await asyncio.start_server(sink6, sock=s6)
    await asyncio.start_server(only4, "0.0.0.0", 9011)
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u6.bind(("::", 9012))
    await asyncio.get_running_loop().create_datagram_endpoint(UdpPeer, sock=u6)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
`;

const GUEST4 = "192.168.65.3";
const GUEST6 = "fd73:6b69:6666::3";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function spec(proto: "tcp" | "udp", guestPort: number, more: Partial<ForwardSpec> = {}): ForwardSpec {
  return { proto, hostAddr: "::1", hostPort: 0, guestAddr: GUEST6, guestPort, ...more };
}


describe("e2e: port forwarding from [::1] into the guest's IPv6 address", function () {
  this.timeout(120_000);
  requireNetns(["/dev/net/tun"]);

  let guest: Guest;
  let fm: ForwardManager;
  let servers: ChildProcess | undefined;

  before(async () => {
    guest = await startGuest("skiff-e2e-fwd6", { mtu: 1500, offload: true, ipv6: GUEST6 });
    // A static IPv6 address (no DAD: nothing is sent from it yet).
    fm = new ForwardManager(guest.stack, guest.tcp, { connectTimeoutMs: 3000 });
    servers = await startGuestServers(guest, GUEST_SERVERS);
  });

  after(async () => {
    fm?.closeAll();
    servers?.kill("SIGKILL");
    await guest?.close();
  });

  it("TCP: a client of [::1]:PORT reaches the guest's IPv6 server, which sees the IPv6 host alias; 8 MB SHA-256 equal", async () => {
    expect(guest.stack.ipv6!.neighbors.lookup(parseIpv6Address(GUEST6)!), "not heard from yet: found by neighbour solicitation").to.equal(undefined);
    const [f] = await fm.add([spec("tcp", 9010)]);
    const data = randomBytes(8 * 1000 * 1000);
    const out = await exchange(f.hostPort, data, { host: "::1" });
    expect(out.toString()).to.equal(`fd73:6b69:6666::2 ${data.length} ${sha256(data)}\n`);
    await fm.remove(f.id);
  });

  it("TCP: a guest that refuses over IPv6 is reached over IPv4 when the forward has a fallback", async () => {
    const [f] = await fm.add([spec("tcp", 9011, { guestAddrFallback: GUEST4 })]);
    const out = await exchange(f.hostPort, new Uint8Array(0), { host: "::1" });
    expect(out.toString()).to.equal("v4 from 192.168.65.2\n");
    expect(fm.stats()[0].counters).to.include({ fellBack: 1, connected: 1 });
    await fm.remove(f.id);
  });

  it("TCP: without a fallback the refusal resets the host client promptly", async () => {
    const [f] = await fm.add([spec("tcp", 9011)]);
    const t0 = Date.now();
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = connect({ host: "::1", port: f.hostPort });
      s.on("error", (e) => resolve(e));
      s.on("close", () => resolve(undefined));
    });
    expect(err?.code).to.equal("ECONNRESET");
    expect(Date.now() - t0).to.be.below(2000);
    expect(fm.stats()[0].counters).to.include({ refused: 1 });
    await fm.remove(f.id);
  });

  it("UDP: datagrams to [::1]:PORT reach the guest over IPv6 (from the gateway's ULA) and the replies come back", async () => {
    const [f] = await fm.add([spec("udp", 9012)]);
    const sock = createSocket("udp6");
    try {
      await new Promise<void>((r) => sock.bind(0, "::1", () => r()));
      const replies: string[] = [];
      sock.on("message", (m) => replies.push(m.toString()));
      for (let i = 0; i < 20 && replies.length < 2; i++) {
        sock.send(`ping ${i}`, f.hostPort, "::1");
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(replies.length).to.be.at.least(2);
      expect(replies[0]).to.match(/^PING \d+ from fd73:6b69:6666::1$/);
    } finally {
      sock.close();
      await fm.remove(f.id);
    }
  });

  it("refuses a guest address outside the guest prefix, naming it", async () => {
    let err: Error | undefined;
    await fm.add([spec("tcp", 9010, { guestAddr: "2001:db8::1" })]).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/guestAddr: 2001:db8::1 is not a guest address of the network/);
    expect(fm.checkGuest("fd73:6b69:6666::1")).to.match(/not a guest address/);
    expect(fm.checkGuest(GUEST6, "fd73::1")).to.match(/guestAddrFallback: not an IPv4 or IPv6|guestAddrFallback: fd73::1/);
  });
});
