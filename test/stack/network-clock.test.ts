/**
 * Per-connection and per-query time limits run on the network's one clock and timer driver
 * (issue 14, ARCHITECTURE.md "Rules of the data path": one driver, tests pass time explicitly):
 * socket translation's dial timeout, the DNS server's TCP idle limit, the DNS upstream's
 * per-server timeout and the port service's request limit are deadlines on `stack.timers`
 * (`SharedTimers.after` / `ownTimers`), as is a forward's connect timeout, not `setTimeout`s of their own, so a test that owns the
 * stack's clock fires them by advancing it and calling `stack.timers.run()`, without sleeping.
 */
import { expect } from "chai";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { Socket, connect } from "node:net";
import { TcpLayer } from "../../src/stack/tcp.js";
import { TcpTranslator } from "../../src/socket-translate/tcp-translator.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { createDnsServer } from "../../src/stack/dns-service.js";
import { UpstreamForwarder } from "../../src/dns/upstream.js";
import { PortService, PORT_SERVICE_PORT } from "../../src/forward/port-service.js";
import { ForwardManager } from "../../src/forward/manager.js";
import { TcpForward } from "../../src/forward/tcp-forward.js";
import { NeighborResolver } from "../../src/forward/neighbor.js";
import { TcpFlag, NO_TCP_OPTIONS } from "../../src/tcp/wire.js";
import { manualStack, crossDeadline, RecordingChannel, GUEST_IP, GUEST_MAC, GW_IP, HOST_IP, guestSegment } from "../support/stack.js";
import { makeQuery } from "../dns/fake-upstream.js";

function syn(dst: number, dstPort: number, srcPort = 40000): Uint8Array {
  return guestSegment(GUEST_IP, dst, { srcPort, dstPort, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 65535, urgentPointer: 0, options: NO_TCP_OPTIONS, payload: new Uint8Array(0) });
}

/** IP protocol numbers of the frames the stack sent. */
const protocols = (link: RecordingChannel) => link.sent.map((f) => f[14 + 9]);

describe("stack/timers: time limits on the network's clock", () => {
  it("after() fires once the driver's clock passes the deadline, and not after cancel()", () => {
    const env = manualStack();
    const { stack, advance } = env;
    try {
      const fired: string[] = [];
      stack.timers.after(100, () => fired.push("a"));
      const b = stack.timers.after(100, () => fired.push("b"));
      stack.timers.after(300, () => fired.push("c"));
      b.cancel();
      crossDeadline(
        env,
        100,
        () => expect(fired).to.deep.equal([]),
        () => expect(fired).to.deep.equal(["a"]),
      );
      b.cancel(); // after the fact: nothing
      advance(200);
      stack.timers.run();
      expect(fired).to.deep.equal(["a", "c"]);
      expect(stack.timers.pending).to.equal(0);
    } finally {
      stack.close();
    }
  });

  it("socket translation's dial timeout is a deadline on the stack's clock: ICMP unreachable when it passes", () => {
    const env = manualStack();
    const { stack, link, port } = env;
    const tcp = new TcpLayer(stack);
    const socks: Socket[] = [];
    // A host socket that never connects (nothing is dialled).
    const tr = new TcpTranslator(tcp, new AddressPolicy({ hostAliasIp: HOST_IP }), {
      dialTimeoutMs: 5000,
      connect: () => {
        const s = new Socket();
        socks.push(s);
        return s;
      },
    });
    try {
      stack.receive(port, syn(HOST_IP, 8080));
      expect(tr.counters.dialsInFlight).to.equal(1);
      const c = tr.counters;
      crossDeadline(
        env,
        5000,
        () => expect([c.timedOut, c.dialsInFlight]).to.deep.equal([0, 1]),
        () => expect([c.timedOut, c.dialsInFlight]).to.deep.equal([1, 0]),
      );
      expect(protocols(link)).to.include(1); // ICMP destination unreachable to the guest
      expect(socks[0].destroyed).to.equal(true);
    } finally {
      tcp.close();
      stack.close();
    }
  });

  it("the DNS server closes an idle TCP connection when the stack's clock passes the limit", () => {
    const env = manualStack();
    const { stack, port } = env;
    const tcp = new TcpLayer(stack);
    const dns = createDnsServer(stack, { hostsPath: null, servers: [], tcp, tcpIdleMs: 2000 });
    try {
      stack.receive(port, syn(GW_IP, 53));
      expect(dns.service.tcpConnections).to.equal(1);
      const closed = () => dns.service.counters.tcpIdleClosed;
      crossDeadline(
        env,
        2000,
        () => expect(closed()).to.equal(0),
        () => expect(closed()).to.equal(1),
      );
    } finally {
      dns.close();
      tcp.close();
      stack.close();
    }
  });

  it("the port service aborts a connection that sends no request within its limit, by the stack's clock", () => {
    const env = manualStack();
    const { stack, port } = env;
    const tcp = new TcpLayer(stack);
    const forwards = new ForwardManager(stack, tcp);
    const svc = new PortService(tcp, forwards, "192.168.65.3", { idleMs: 3000 });
    try {
      stack.receive(port, syn(GW_IP, PORT_SERVICE_PORT));
      expect([svc.counters.connections, tcp.size]).to.deep.equal([1, 1]);
      crossDeadline(
        env,
        3000,
        () => expect(tcp.size).to.equal(1),
        () => expect(tcp.size).to.equal(0),
      );
    } finally {
      forwards.closeAll();
      tcp.close();
      stack.close();
    }
  });

  it("a forward resets its host client when the guest does not answer the SYN in time, by the stack's clock", async () => {
    const env = manualStack();
    const { stack, port } = env;
    stack.neighbors.learn(GUEST_IP, GUEST_MAC, port);
    const tcp = new TcpLayer(stack);
    const spec = { proto: "tcp" as const, hostAddr: "127.0.0.1", hostPort: 0, guestAddr: "192.168.65.3", guestPort: 80 };
    const fwd = await TcpForward.listen(tcp, new NeighborResolver(stack), spec, GUEST_IP, { connectTimeoutMs: 4000 });
    const client = connect(fwd.hostPort, "127.0.0.1");
    const closed = new Promise<void>((r) => client.on("close", () => r()));
    client.on("error", () => {});
    try {
      // The guest (a recording link) never answers the SYN skiff sends it.
      const t0 = Date.now();
      while (tcp.size === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
      const c = fwd.counters;
      crossDeadline(
        env,
        4000,
        () => expect([c.connectsInFlight, c.failed]).to.deep.equal([1, 0]),
        () => expect([c.connectsInFlight, c.failed]).to.deep.equal([0, 1]),
      );
      await closed;
      expect(tcp.size).to.equal(0);
    } finally {
      client.destroy();
      fwd.destroy();
      tcp.close();
      stack.close();
    }
  });

  describe("the DNS upstream's per-server timeout", () => {
    let silent: UdpSocket;
    let received = 0;
    before(async () => {
      silent = createSocket("udp4");
      silent.on("message", () => received++);
      await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    });
    after(() => silent.close());

    it("a server that does not answer times out when the stack's clock passes timeoutMs", async () => {
      const { stack, advance } = manualStack();
      const up = new UpstreamForwarder({ servers: [{ host: "127.0.0.1", port: silent.address().port }], timeoutMs: 2000, clock: stack.timers });
      try {
        const q = makeQuery("nobody.example.test", "A");
        let settled = false;
        const result = up.forward(q, q.length - 4).then((r) => ((settled = true), r));
        const t0 = Date.now();
        while (received === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
        expect(received, "the query reached the silent server").to.equal(1);
        advance(1999);
        stack.timers.run();
        await new Promise((r) => setImmediate(r));
        expect(settled).to.equal(false);
        advance(1);
        stack.timers.run();
        // Settled by the run above, not by a timer of its own (which would take 2 s of real time).
        const r = await Promise.race([result, new Promise((res) => setTimeout(() => res("still pending"), 500))]);
        expect(r).to.deep.equal({ kind: "timeout" });
        expect(up.counters.timeouts).to.equal(1);
      } finally {
        up.close();
        stack.close();
      }
    });
  });
});
