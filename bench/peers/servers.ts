// Host servers of the peers benchmark, the same for every contender: iperf3 -s, nginx serving a 1 KiB file, sockperf server and the idle-connection holder, each bound on 127.0.0.1 and on the veth's host address only; for the IPv6 rows iperf3 and nginx also on ::1 and the veth's IPv6 host address.

import { writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Bg, sh, waitFor, withNofile } from "./proc.js";

export interface Ports {
  iperf: number;
  http: number;
  sockperf: number;
  hold: number;
  /** Fixed-size transfers of the loss rows: download on this port, upload sink on the next. */
  transfer: number;
}

/** Ports listened on (TCP) or bound (UDP) on any address. */
function portsInUse(): Set<number> {
  const out = sh(["ss", "-Htuln"]);
  const used = new Set<number>();
  for (const line of out.split("\n")) {
    const local = line.trim().split(/\s+/)[4];
    const m = local && /:(\d+)$/.exec(local);
    if (m) used.add(Number(m[1]));
  }
  return used;
}

/** Six consecutive free ports from base upward (steps of 10). */
export function pickPorts(base = 25310): Ports {
  const used = portsInUse();
  for (let b = base; b < 32000; b += 10) {
    const p = [b, b + 1, b + 2, b + 3, b + 4, b + 5];
    if (p.every((x) => !used.has(x))) return { iperf: p[0], http: p[1], sockperf: p[2], hold: p[3], transfer: p[4] };
  }
  throw new Error("no free ports for the host servers");
}

/** `addr:port` as ss prints it (IPv6 in brackets). */
export const hostPort = (addr: string, port: number) => (addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`);

export function listening(addr: string, port: number): boolean {
  return sh(["ss", "-Hltn", `( sport = :${port} )`]).includes(hostPort(addr, port));
}

export const HTTP_PATH = "/1k";

/** Start every server on every address (iperf3 and nginx also on the IPv6 ones, `addrs6`); resolves when all listen. */
export async function startServers(dir: string, addrs: string[], ports: Ports, addrs6: string[] = []): Promise<Bg[]> {
  mkdirSync(`${dir}/www`, { recursive: true });
  writeFileSync(`${dir}/www${HTTP_PATH}`, Buffer.alloc(1024, "x"));
  const listens = [...addrs, ...addrs6].map((a) => `    listen ${hostPort(a, ports.http)} backlog=4096;`).join("\n");
  writeFileSync(
    `${dir}/nginx.conf`,
    `user root;
worker_processes auto;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
daemon off;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  server {
${listens}
    root ${dir}/www;
  }
}
`,
  );
  const procs: Bg[] = [];
  const hold = fileURLToPath(new URL("./hold.mjs", import.meta.url));
  procs.push(new Bg(["nginx", "-e", `${dir}/nginx-error.log`, "-p", dir, "-c", `${dir}/nginx.conf`], `${dir}/nginx.log`));
  procs.push(new Bg(withNofile([process.execPath, hold, "server", String(ports.hold), ...addrs]), `${dir}/hold-server.log`));
  for (const a of addrs) {
    procs.push(new Bg(["iperf3", "-s", "-B", a, "-p", String(ports.iperf)], `${dir}/iperf3-${a}.log`));
    procs.push(new Bg(["sockperf", "server", "--tcp", "-i", a, "-p", String(ports.sockperf)], `${dir}/sockperf-${a}.log`));
  }
  for (const a of addrs6) procs.push(new Bg(["iperf3", "-s", "-B", a, "-p", String(ports.iperf)], `${dir}/iperf3-${a}.log`));
  const v4 = [["nginx", ports.http], ["hold server", ports.hold], ["iperf3 -s", ports.iperf], ["sockperf server", ports.sockperf]] as const;
  const v6 = [["nginx", ports.http], ["iperf3 -s", ports.iperf]] as const;
  for (const a of [...addrs, ...addrs6]) {
    for (const [what, port] of addrs6.includes(a) ? v6 : v4) {
      await waitFor(`${what} on ${a}:${port}`, 10_000, () => {
        const dead = procs.find((p) => !p.alive);
        if (dead) throw new Error(`${dead.argv[0]} ${dead.describe()}`);
        return listening(a, port) || undefined;
      });
    }
  }
  return procs;
}

export async function stopServers(procs: Bg[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop("SIGTERM", 3000)));
}
