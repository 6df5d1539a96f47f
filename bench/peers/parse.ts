// Parsers for the peers benchmark (pure): iperf3 -J output, wrk's text summary, sockperf's summary lines, and /proc/PID/stat and /proc/PID/status figures.

export interface IperfResult {
  /** Rate seen by the receiver, bits per second. */
  bitsPerSecond: number;
  /** Bytes that reached the receiver. */
  bytes: number;
  /** UDP only: datagrams lost, per cent. */
  lostPercent?: number;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === "object" ? (v as Json) : undefined;
}

/** `iperf3 -J` (TCP or UDP): the receiver's totals. Throws with iperf3's own error text when the run failed. */
export function parseIperf(text: string): IperfResult {
  let j: Json;
  try {
    j = JSON.parse(text) as Json;
  } catch {
    throw new Error(`iperf3 printed no JSON: ${text.slice(0, 200)}`);
  }
  if (typeof j.error === "string") throw new Error(`iperf3: ${j.error}`);
  const end = obj(j.end);
  const rx = obj(end?.sum_received) ?? obj(end?.sum);
  if (!rx || typeof rx.bits_per_second !== "number" || typeof rx.bytes !== "number") throw new Error("iperf3 JSON has no end.sum_received");
  const out: IperfResult = { bitsPerSecond: rx.bits_per_second, bytes: rx.bytes };
  const udp = obj(end?.sum);
  if (typeof rx.lost_percent === "number") out.lostPercent = rx.lost_percent;
  else if (udp && typeof udp.lost_percent === "number") out.lostPercent = udp.lost_percent;
  return out;
}

export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  /** Socket errors (connect + read + write + timeout) and non-2xx/3xx responses. */
  errors: number;
}

/** wrk's text summary ("Requests/sec:", "N requests in", "Socket errors:", "Non-2xx or 3xx responses:"). */
export function parseWrk(text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!rps) throw new Error(`wrk printed no Requests/sec: ${text.slice(0, 300)}`);
  const reqs = /(\d+) requests in/.exec(text);
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (sock) errors += sock.slice(1).reduce((a, b) => a + Number(b), 0);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (non2xx) errors += Number(non2xx[1]);
  return { requestsPerSecond: Number(rps[1]), requests: reqs ? Number(reqs[1]) : 0, errors };
}

export interface SockperfResult {
  avgUs: number;
  p50Us?: number;
  p99Us?: number;
}

const ANSI = /\x1b\[[0-9;]*m/g;

/** sockperf ping-pong: "avg-latency=X" (half round trip, µs) and the 50th/99th percentiles. */
export function parseSockperf(text: string): SockperfResult {
  const t = text.replace(ANSI, "");
  const avg = /avg-lat(?:ency)?=\s*([\d.]+)/.exec(t);
  if (!avg) throw new Error(`sockperf printed no avg-latency: ${t.slice(-300)}`);
  const pct = (p: string) => {
    const m = new RegExp(`percentile ${p} =\\s*([\\d.]+)`).exec(t);
    return m ? Number(m[1]) : undefined;
  };
  const out: SockperfResult = { avgUs: Number(avg[1]) };
  const p50 = pct("50\\.000");
  const p99 = pct("99\\.000");
  if (p50 !== undefined) out.p50Us = p50;
  if (p99 !== undefined) out.p99Us = p99;
  return out;
}

/** utime + stime (clock ticks) from the text of /proc/PID/stat; the command name may hold spaces and parentheses. */
export function parseCpuTicks(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) " the fields start at 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unreadable /proc stat: ${stat.slice(0, 100)}`);
  return utime + stime;
}

/** VmRSS in kB from the text of /proc/PID/status. */
export function parseVmRssKb(status: string): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error("no VmRSS in /proc status");
  return Number(m[1]);
}
