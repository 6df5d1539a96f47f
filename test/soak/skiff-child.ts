/**
 * The process under attack in the soak test (test/soak/soak.test.ts): one skiff network as
 * `skiff serve` builds it (gateway stack, switch, DHCP, DNS, socket translation, control API),
 * with a kernel guest's TAP device (in the namespace given) and a QEMU stream listener where
 * the hostile guest attaches. It also runs the "host" servers the guests reach through the host
 * alias: an HTTP server (GET /blob: 1 MiB of a fixed pattern; GET /endless: bytes until the
 * client stops reading) and a UDP sink, all on 127.0.0.1.
 *
 * The test starts it inside a namespace of its own that has only a loopback interface, so
 * whatever the hostile guest asks for, no connection can leave the machine.
 *
 * argv: GUEST_NETNS_PATH STREAM_SOCKET API_SOCKET. Prints one JSON line {"ready":true,...}
 * once listening; exits 0 on SIGTERM after closing everything.
 */
import { createServer } from "node:http";
import { createSocket } from "node:dgram";
import { pino } from "pino";
import { NetworkServices as Network } from "../../src/network/services.js";
import { startControl } from "../../src/network/control.js";
import { attachSwitch } from "../../src/stack/switched.js";
import { TapChannel } from "../../src/link/tap.js";
import { QemuStreamListener } from "../../src/link/qemu-stream.js";
import type { FrameChannel } from "../../src/common/frame-channel.js";
import { blobBytes } from "./blob.js";

const [guestNs, streamPath, apiPath] = process.argv.slice(2);
const log = pino({ level: "silent" });
const MTU = 1500;

const net = new Network({ mtu: MTU, log });
const sw = attachSwitch(net.stack);
const channels = new Set<FrameChannel>();
const attach = (ch: FrameChannel) => {
  channels.add(ch);
  sw.addPort(ch);
  ch.once("closed", () => channels.delete(ch));
};
attach(TapChannel.open({ name: "sk0", netns: guestNs, mtu: MTU, offload: false }));
const listener = await QemuStreamListener.listen(`unix:${streamPath}`, { mtu: MTU });
listener.on("channel", attach);
const control = await startControl(net, { apiSocket: apiPath, log });

const blob = blobBytes();
const chunk = new Uint8Array(64 * 1024).fill(0x5a);
const http = createServer((req, res) => {
  if (req.url === "/blob") {
    res.writeHead(200, { "content-length": String(blob.length) });
    res.end(blob);
  } else if (req.url === "/endless") {
    // Writes while the client reads; a client that stops reading stops this (backpressure).
    res.writeHead(200);
    const pump = () => {
      while (res.write(chunk)) if (res.destroyed) return;
    };
    res.on("drain", pump);
    pump();
  } else {
    res.writeHead(404).end();
  }
});
http.on("clientError", (_e, s) => s.destroy());
await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
const udp = createSocket("udp4");
let udpReceived = 0;
udp.on("message", () => udpReceived++);
await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));

const httpPort = (http.address() as { port: number }).port;
const udpPort = udp.address().port;
process.stdout.write(JSON.stringify({ ready: true, httpPort, udpPort }) + "\n");

// Counters and memory for the test, on request (a line on stdin asks; the answer is one JSON
// line); "gc" first runs a full garbage collection (the test starts this with --expose-gc).
process.stdin.setEncoding("utf8");
process.stdin.on("data", (line: string) => {
  if (line.startsWith("gc")) (globalThis as { gc?: () => void }).gc?.();
  const snap = {
    stats: true,
    udpReceived,
    stack: net.stack.counters.snapshot(),
    switch: sw.counters.snapshot(),
    tcp: { ...net.tcp.counters, open: net.tcp.size, halfOpen: net.tcp.halfOpenCount },
    udpFlows: net.udp.size,
    leases: net.dhcp.leases().length,
    memory: process.memoryUsage(),
  };
  process.stdout.write(JSON.stringify(snap) + "\n");
});

process.once("SIGTERM", async () => {
  await control.close();
  await listener.close();
  for (const c of channels) c.close();
  net.close();
  http.closeAllConnections();
  http.close();
  udp.close();
  process.exit(0);
});
