// Measures of the peers benchmark: each step runs a client inside the guest namespace against the host servers (iperf3, wrk, sockperf, the idle-connection holder) and returns figures keyed by the metric keys of report.ts.

import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { inNs, type Session } from "./contenders.js";
import { parseIperf, parseSockperf, parseWrk } from "./parse.js";
import { Bg, cpuSeconds, rssMb, run, shTry, sleep, waitFor, withNofile } from "./proc.js";
import { HTTP_PATH, type Ports } from "./servers.js";
import { ipv6Key } from "./report.js";

export interface Durations {
  /** Seconds of each iperf3 TCP run, UDP run, wrk run and sockperf run. */
  tcp: number;
  udp: number;
  wrk: number;
  sockperf: number;
  /** Idle connections held for the RSS figure. */
  holdConns: number;
  /** 20 MB transfers each way per loss row (their median is the figure). */
  lossTransfers: number;
}

export interface Env {
  ports: Ports;
  dur: Durations;
  tmp: string;
}

export interface StepResult {
  values: Record<string, number>;
  extra?: Record<string, unknown>;
  warnings?: string[];
}

export interface Step {
  name: string;
  /** Only for contenders with a process of their own (CPU, RSS). */
  needsPid?: boolean;
  /** Only for sessions with IPv6 to the host (Session.hostIp6). */
  needsIpv6?: boolean;
  run(s: Session, env: Env): Promise<StepResult>;
}

/** The host servers' address from the guest: IPv4, or IPv6 for the IPv6 rows. */
const hostOf = (s: Session, v6: boolean) => (v6 ? s.hostIp6! : s.hostIp);

async function iperf(s: Session, env: Env, args: string[], secs: number, v6 = false) {
  const argv = inNs(s.nsPath, ["iperf3", "-c", hostOf(s, v6), "-p", String(env.ports.iperf), "-t", String(secs), "-J", ...args]);
  const r = await run(argv, (secs + 30) * 1000);
  if (r.timedOut) throw new Error(`\`${argv.join(" ")}\` timed out`);
  return parseIperf(r.stdout);
}

/** IPv6 steps are named "ipv6 …" (so `--steps ipv6` picks them, and no IPv4 step name matches them). */
function tcpStep(mtu: number, reverse: boolean, cpuMetric?: string, v6 = false): Step {
  const v4Metric = `tcp_${reverse ? "down" : "up"}_${mtu}`;
  const metric = v6 ? ipv6Key(v4Metric) : v4Metric;
  return {
    name: `${v6 ? "ipv6 bulk" : "iperf3"} TCP ${reverse ? "host→ns (-R)" : "ns→host"}`,
    needsIpv6: v6,
    async run(s, env) {
      const cpu0 = s.pid ? cpuSeconds(s.pid) : undefined;
      const r = await iperf(s, env, reverse ? ["-R"] : [], env.dur.tcp, v6);
      const values: Record<string, number> = { [metric]: r.bitsPerSecond / 1e9 };
      if (cpuMetric && s.pid && cpu0 !== undefined && r.bytes > 0) values[cpuMetric] = (cpuSeconds(s.pid) - cpu0) / (r.bytes / 1e9);
      return { values };
    },
  };
}

const udpStep: Step = {
  name: "iperf3 UDP ns→host -b 1G",
  async run(s, env) {
    const r = await iperf(s, env, ["-u", "-b", "1G", "-l", "1400"], env.dur.udp);
    const values: Record<string, number> = { udp_rx: r.bitsPerSecond / 1e9 };
    if (r.lostPercent !== undefined) values.udp_loss = r.lostPercent;
    return { values };
  },
};

function wrkStep(metric: string, conns: number, close: boolean, v6 = false): Step {
  const name = v6 ? `ipv6 HTTP keep-alive -c${conns}` : `wrk -c${conns}${close ? " Connection: close" : ""}`;
  return {
    name,
    needsIpv6: v6,
    async run(s, env) {
      const threads = conns === 1 ? 1 : 2;
      const url = `http://${v6 ? `[${s.hostIp6}]` : s.hostIp}:${env.ports.http}${HTTP_PATH}`;
      const argv = inNs(s.nsPath, ["wrk", "-t", String(threads), "-c", String(conns), "-d", `${env.dur.wrk}s`, ...(close ? ["-H", "Connection: close"] : []), url]);
      const r = await run(argv, (env.dur.wrk + 30) * 1000);
      if (r.timedOut) throw new Error(`\`${argv.join(" ")}\` timed out`);
      const w = parseWrk(r.stdout);
      if (w.requests === 0) throw new Error(`${name}: no request completed: ${r.stdout.trim().slice(-300)}`);
      const warnings = w.errors > 0 ? [`${name}: ${w.errors} errors in ${w.requests} requests`] : [];
      const extra: Record<string, number> = { [`${metric}_errors`]: w.errors, [`${metric}_requests`]: w.requests };
      // With `Connection: close` the side that closes first keeps TIME-WAIT (60 s): in the
      // namespace when the contender delivers the server's FIN after its reply (wrk closes on
      // the reply), and wrk's connect() then searches the ephemeral ports (issue 20).
      if (close) extra[`${metric}_ns_time_wait`] = (await run(inNs(s.nsPath, ["ss", "-Htan", "state", "time-wait"]))).stdout.split("\n").filter(Boolean).length;
      return { values: { [metric]: w.requestsPerSecond }, extra, warnings };
    },
  };
}

const pingPongStep: Step = {
  name: "sockperf ping-pong --tcp",
  async run(s, env) {
    const argv = inNs(s.nsPath, ["sockperf", "ping-pong", "--tcp", "-i", s.hostIp, "-p", String(env.ports.sockperf), "-t", String(env.dur.sockperf)]);
    const r = await run(argv, (env.dur.sockperf + 30) * 1000);
    if (r.timedOut) throw new Error(`\`${argv.join(" ")}\` timed out`);
    const p = parseSockperf(r.stdout + r.stderr);
    return { values: { latency: p.avgUs }, extra: { latency_p50: p.p50Us, latency_p99: p.p99Us } };
  },
};

const rssIdleStep: Step = {
  name: "RSS idle",
  needsPid: true,
  async run(s) {
    await sleep(1000);
    return { values: { rss_idle: rssMb(s.pid!) } };
  },
};

interface HoldProgress {
  opened: number;
  errors: number;
  firstError: string;
  done: boolean;
  ms: number;
}

function lastProgress(log: string): HoldProgress | undefined {
  let text = "";
  try {
    text = readFileSync(log, "utf8");
  } catch {
    return undefined;
  }
  const lines = text.trim().split("\n").filter((l) => l.startsWith("{"));
  return lines.length ? (JSON.parse(lines[lines.length - 1]) as HoldProgress) : undefined;
}

function heldOnHost(port: number): number {
  return shTry(["ss", "-Htn", "state", "established", `( dport = :${port} )`]).split("\n").filter(Boolean).length;
}

const holdStep: Step = {
  name: "RSS with idle connections",
  needsPid: true,
  async run(s, env) {
    const n = env.dur.holdConns;
    const hold = fileURLToPath(new URL("./hold.mjs", import.meta.url));
    const log = `${env.tmp}/hold-client-${s.pid}.log`;
    const client = new Bg(inNs(s.nsPath, withNofile([process.execPath, hold, "client", s.hostIp, String(env.ports.hold), String(n)])), log);
    try {
      const p = await waitFor(`${n} idle connections`, 120_000, () => {
        const last = lastProgress(log);
        if (last?.done) return last;
        if (!client.alive) throw new Error(`hold client ${client.describe()}`);
        if (!s.alive()) throw new Error(`contender died while opening connections (${s.describe()})`);
        return undefined;
      }).catch((e: Error) => {
        const last = lastProgress(log);
        throw new Error(`${e.message}; progress: ${last ? `${last.opened} open, ${last.errors} failed ${last.firstError}` : "none"}`);
      });
      if (p.opened < n) throw new Error(`only ${p.opened} of ${n} connections opened, ${p.errors} failed (first error: ${p.firstError})`);
      await sleep(2000);
      return { values: { rss_10k: rssMb(s.pid!) }, extra: { hold_open_ms: p.ms } };
    } finally {
      await client.stop("SIGTERM", 5000);
      // Give the contender a moment to close its host sockets before it is stopped (skiff run
      // does not exit on SIGTERM while host sockets are open); slirp4netns takes a minute.
      await waitFor("the held connections to close on the host", 10_000, () => (heldOnHost(env.ports.hold) === 0 ? true : undefined)).catch(() => {});
    }
  },
};

/**
 * What runs in one contender start at each MTU (the loss rows have a start of their own, see
 * loss.ts). The IPv6 rows (issue 18: bulk both ways, HTTP keep-alive) run last in the same start,
 * so the IPv4 figures are measured as before; `--steps ipv6` runs only them.
 */
export function plan(mtu: number): Step[] {
  const v6 = [tcpStep(mtu, false, undefined, true), tcpStep(mtu, true, undefined, true)];
  if (mtu === 1500) return [tcpStep(1500, false), tcpStep(1500, true), ...v6];
  return [
    rssIdleStep,
    tcpStep(65520, false, "cpu_up"),
    tcpStep(65520, true, "cpu_down"),
    udpStep,
    wrkStep("http_c1", 1, false),
    wrkStep("http_c50", 50, false),
    wrkStep("conn_rate", 20, true),
    pingPongStep,
    holdStep,
    ...v6,
    wrkStep(ipv6Key("http_c1"), 1, false, true),
    wrkStep(ipv6Key("http_c50"), 50, false, true),
  ];
}
