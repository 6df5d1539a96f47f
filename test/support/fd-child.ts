/**
 * Child process of test/e2e/fd-budget.test.ts, started under `prlimit --nofile=SOFT:HARD`: a
 * Network with one guest (a direct port with a static lease) opens TCP connections to the
 * parent's server through the host alias, in batches, until new ones are refused; then checks
 * that the control API and the DNS server still answer. Prints one JSON line of results on
 * stdout; skiff's logs go to stderr (JSON lines, which the parent reads).
 */
import { pino } from "pino";
import dnsPacket from "dns-packet";
import { NetworkServices as Network } from "../../src/network/services.js";
import { startControl } from "../../src/network/control.js";
import { apiRequest } from "../../src/forward/client.js";
import { loadAddon } from "../../src/native/addon.js";
import { TcpFlag } from "../../src/tcp/wire.js";
import { RecordingChannel, GUEST_MAC, GUEST_IP, GW_IP, HOST_IP } from "./stack.js";
import { tcpSyn, udpFrame, describe as seen } from "./frames.js";

const port = Number(process.env.FD_CHILD_PORT);
const apiSocket = process.env.FD_CHILD_API!;
const total = Number(process.env.FD_CHILD_SYNS ?? "600");

const log = pino({ level: "info" }, pino.destination(2));
const net = new Network({
  mtu: 1500,
  log,
  staticLeases: [{ mac: GUEST_MAC, ip: GUEST_IP }],
  // Dials and half-open flows are not what this test is about: room for all of them.
  limits: { tcpDials: 4096, tcpDialsPerGuest: 4096, tcpHalfOpen: 4096, tcpHalfOpenPerGuest: 4096 },
});
const ch = new RecordingChannel();
const guest = net.stack.attach(ch);
const control = await startControl(net, { apiSocket, log });
const tick = () => new Promise((r) => setTimeout(r, 5));

let sent = 0;
while (sent < total) {
  for (let i = 0; i < 50 && sent < total; i++, sent++) net.stack.receive(guest, tcpSyn(GUEST_MAC, GUEST_IP, 20000 + sent, HOST_IP, port));
  // Until every dial has its answer (loopback: milliseconds; 30 s on a machine that is very slow).
  for (let t = 0; t < 6000 && net.tcpTranslator.counters.dialsInFlight > 0; t++) await tick();
}
const frames = ch.sent.map(seen);
const synAcks = frames.filter((f) => f.kind === "tcp" && (f.flags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK)).length;
const rsts = frames.filter((f) => f.kind === "tcp" && (f.flags & TcpFlag.RST) !== 0).length;

// The control API (an accept() and, here, a client socket too) still works.
let apiStatus: number | string;
let stats: Record<string, unknown> = {};
try {
  const r = await Promise.race([apiRequest(apiSocket, "GET", "/stats"), new Promise<never>((_, rej) => setTimeout(() => rej(new Error("timeout")), 3000))]);
  apiStatus = r.status;
  stats = r.body as Record<string, unknown>;
} catch (e) {
  apiStatus = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

// The DNS server answers host.internal.
ch.sent.length = 0;
const query = dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: "host.internal" }] });
net.stack.receive(guest, udpFrame(GUEST_MAC, GUEST_IP, 5353, GW_IP, 53, query));
const answeredNow = () => ch.sent.map(seen).some((f) => f.kind === "udp" && f.srcPort === 53);
for (let t = 0; t < 1000 && !answeredNow(); t++) await tick();
const dnsAnswered = answeredNow();

const nofile = loadAddon("tests").getNofile();
console.log(
  JSON.stringify({
    nofile,
    budget: (net as unknown as { fds?: { size: number } }).fds?.size ?? null,
    synAcks,
    rsts,
    tcpTranslate: net.tcpTranslator.counters,
    apiStatus,
    fdBudgetStats: stats.fdBudget ?? null,
    dnsAnswered,
  }),
);
await control.close();
net.close();
process.exit(0);
