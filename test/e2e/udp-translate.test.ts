/**
 * End to end: guest UDP through skiff's flow table to host sockets, and replies back.
 */
import { expect } from "chai";
import { createSocket, type Socket } from "node:dgram";
import { requireNetns } from "../support/netns.js";
import { startGuest, type Guest } from "../support/guest.js";
import { until } from "../support/wait.js";

// Host sockets from the addon's epoll set (the default) and Node's dgram.
for (const hostSockets of ["native", "node"] as const) {
describe(`e2e: guest UDP to host sockets through skiff (${hostSockets === "native" ? "addon sockets" : "Node dgram"})`, function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);
  let guest: Guest;
  let echo: Socket;
  let echoPort: number;
  const seenFrom: string[] = [];

  before(async () => {
    echo = createSocket("udp4");
    echo.on("message", (m, r) => {
      seenFrom.push(`${r.address}`);
      echo.send(Buffer.concat([Buffer.from("echo:"), m]), r.port, r.address);
    });
    await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
    echoPort = echo.address().port;
    guest = await startGuest("skiff-e2e-udp", { udp: { idleMs: 1500, hostSockets } });
  });
  after(async () => {
    await guest?.close();
    echo?.close();
  });

  it("round-trips datagrams to a host UDP echo server through 192.168.65.2", async () => {
    const script = [
      "import socket",
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
      "s.settimeout(3)",
      "out = []",
      "for i in range(5):",
      `    s.sendto(b"ping%d" % i + b"x" * 300 * i, ("192.168.65.2", ${echoPort}))`,
      "    d, a = s.recvfrom(65535)",
      "    out.append('%s:%d %d %s' % (a[0], a[1], len(d), d[:10].decode()))",
      "print('\\n'.join(out))",
    ].join("\n");
    const r = await guest.ns.exec(["python3", "-c", script]);
    expect(r.code, `${r.stderr} ${JSON.stringify(guest.udp.counters)} ${JSON.stringify(guest.stack.counters.snapshot())} seen=${seenFrom}`).to.equal(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).to.have.length(5);
    lines.forEach((l, i) => expect(l).to.equal(`192.168.65.2:${echoPort} ${5 + 300 * i + 5} echo:ping${i}`));
    expect(seenFrom.every((a) => a === "127.0.0.1")).to.equal(true);
    expect(guest.udp.counters.flowsOpened).to.equal(1);
  });

  it("a 20000-byte datagram (fragmented by the guest kernel) is reassembled and relayed", async () => {
    const script = [
      "import socket",
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
      "s.settimeout(3)",
      `s.sendto(b"big" + b"y" * 19997, ("192.168.65.2", ${echoPort}))`,
      "print('sent')",
    ].join("\n");
    const before = guest.udp.counters.bytesToHost;
    const r = await guest.ns.exec(["python3", "-c", script]);
    expect(r.code, r.stderr).to.equal(0);
    await until(() => guest.udp.counters.bytesToHost === before + 20000, 3000, "the whole datagram relayed");
  });

  it("expires idle flows", async () => {
    await until(() => guest.udp.size === 0, 5000, "idle flow expired");
    expect(guest.udp.counters.flowsExpired).to.be.greaterThan(0);
  });
});
}
