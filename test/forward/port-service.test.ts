/** The port service (src/forward/port-service.ts), skiff docker's published ports: requests, and forwards opened on the host. */
import { expect } from "chai";
import { createServer, connect } from "node:net";
import { pino } from "pino";
import { parsePortRequest, PortService } from "../../src/forward/port-service.js";
import { NetworkServices as Network } from "../../src/network/services.js";
import { ForwardManager } from "../../src/forward/manager.js";

const log = pino({ level: "silent" });

describe("forward/port-service: host ports opened at a guest's request", () => {
  it("parses OPEN and CLOSE, and names what is wrong", () => {
    expect(parsePortRequest("OPEN tcp 127.0.0.1 8080")).to.deep.equal({ kind: "open", proto: "tcp", hostAddr: "127.0.0.1", hostPort: 8080 });
    expect(parsePortRequest("OPEN udp 0.0.0.0 53\r")).to.deep.equal({ kind: "open", proto: "udp", hostAddr: "0.0.0.0", hostPort: 53 });
    expect(parsePortRequest("CLOSE 12")).to.deep.equal({ kind: "close", id: "12" });
    expect(parsePortRequest("OPEN sctp 127.0.0.1 1")).to.deep.include({ kind: "bad" });
    expect(parsePortRequest("OPEN tcp :: 8080")).to.deep.equal({ kind: "open", proto: "tcp", hostAddr: "::", hostPort: 8080 });
    expect(parsePortRequest("OPEN udp ::1 53")).to.deep.equal({ kind: "open", proto: "udp", hostAddr: "::1", hostPort: 53 });
    expect(parsePortRequest("OPEN tcp fe80::1%eth0 8080")).to.deep.equal({ kind: "bad", error: "host address fe80::1%eth0 is not an IPv4 or IPv6 address" });
    expect(parsePortRequest("OPEN tcp 300.1.1.1 8080")).to.deep.include({ kind: "bad" });
    expect(parsePortRequest("OPEN tcp 127.0.0.1 65536")).to.deep.equal({ kind: "bad", error: "host port 65536 is not 1..65535" });
    expect(parsePortRequest("OPEN tcp 127.0.0.1 0")).to.deep.include({ kind: "bad" });
    expect(parsePortRequest("CLOSE x")).to.deep.include({ kind: "bad" });
    expect(parsePortRequest("")).to.deep.include({ kind: "bad" });
  });

  it("OPEN listens on the host port at once; a busy port is an ERR line naming it; CLOSE frees it", async () => {
    const net = new Network({ mtu: 1500, log });
    const forwards = new ForwardManager(net.stack, net.tcp, { log });
    const svc = new PortService(net.tcp, forwards, "192.168.65.3", { log });
    const busy = createServer();
    try {
      await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
      const busyPort = (busy.address() as { port: number }).port;
      const free = await new Promise<number>((r) => {
        const s = createServer().listen(0, "127.0.0.1", () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => r(p));
        });
      });
      const ok = await svc.handle(`OPEN tcp 127.0.0.1 ${free}`);
      expect(ok).to.match(/^OK \d+$/);
      expect(forwards.list()).to.deep.equal([{ id: ok.slice(3), proto: "tcp", hostAddr: "127.0.0.1", hostPort: free, guestAddr: "192.168.65.3", guestPort: free }]);
      await new Promise<void>((resolve, reject) => {
        const c = connect(free, "127.0.0.1", () => (c.destroy(), resolve()));
        c.on("error", reject);
      });
      expect(await svc.handle(`OPEN tcp 127.0.0.1 ${busyPort}`)).to.equal(`ERR port ${busyPort} is already in use (127.0.0.1:${busyPort}/tcp)`);
      expect(await svc.handle(`CLOSE ${ok.slice(3)}`)).to.equal("OK");
      expect(await svc.handle(`CLOSE ${ok.slice(3)}`)).to.equal(`ERR no forward ${ok.slice(3)}`);
      expect(forwards.list()).to.deep.equal([]);
      const refused = await new Promise<string>((resolve) => {
        const c = connect(free, "127.0.0.1", () => (c.destroy(), resolve("connected")));
        c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      });
      expect(refused).to.equal("ECONNREFUSED");
      expect(svc.counters).to.deep.include({ opened: 1, openFailed: 1, closed: 1 });
    } finally {
      busy.close();
      forwards.closeAll();
      net.close();
    }
  });

  it("docker's pair for one publish, 0.0.0.0:P and [::]:P, are two listeners side by side, each of its own family", async () => {
    const net = new Network({ mtu: 1500, log });
    const forwards = new ForwardManager(net.stack, net.tcp, { log });
    const svc = new PortService(net.tcp, forwards, "192.168.65.3", { log });
    try {
      const free = await new Promise<number>((r) => {
        const s = createServer().listen(0, "::", () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => r(p));
        });
      });
      const v4 = await svc.handle(`OPEN tcp 0.0.0.0 ${free}`);
      const v6 = await svc.handle(`OPEN tcp :: ${free}`);
      expect(v4).to.match(/^OK \d+$/);
      expect(v6).to.match(/^OK \d+$/);
      const reach = (host: string) =>
        new Promise<string>((resolve) => {
          const c = connect(free, host, () => (c.destroy(), resolve("connected")));
          c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
        });
      expect(await reach("127.0.0.1")).to.equal("connected");
      expect(await reach("::1")).to.equal("connected");
      // Closing the IPv6 half leaves IPv4 listening and IPv6 refused: [::] was IPv6 only.
      expect(await svc.handle(`CLOSE ${v6.slice(3)}`)).to.equal("OK");
      expect(await reach("::1")).to.equal("ECONNREFUSED");
      expect(await reach("127.0.0.1")).to.equal("connected");
      expect(await svc.handle("CLOSE 0")).to.equal("OK");
    } finally {
      forwards.closeAll();
      net.close();
    }
  });
});
