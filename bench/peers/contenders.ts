// Contenders of the peers benchmark: skiff (`skiff run`), slirp4netns, pasta and a kernel veth pair. start(mtu) gives a Session: a network namespace whose only interface is the contender's, the host servers' address as seen from inside, and the process whose CPU and RSS are measured.

import { chmodSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { Bg, childPids, onCleanup, sh, shQuiet, shTry, waitFor, withNofile } from "./proc.js";

export interface Session {
  /** Path of the guest's network namespace (for nsenter --net=). */
  nsPath: string;
  /** Address of the host servers as seen from the guest. */
  hostIp: string;
  /** The same over IPv6 (the IPv6 rows, issue 18); absent when the contender gives the guest no IPv6 path to the host. */
  hostIp6?: string;
  /** The contender's process (CPU and RSS are read from /proc); undefined for the kernel. */
  pid?: number;
  alive(): boolean;
  /** How the contender's process ended, with its log tail. */
  describe(): string;
  /** Things worth reporting (an MTU the contender did not set, a namespace left behind). */
  notes: string[];
  /** Interfaces on the host side of the guest's link (the veth's host end), for the loss rows' offload switch. */
  hostInterfaces?: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  /** false: no segmentation/checksum offload on the guest's link where the contender has a switch for it (skiff's --no-offload). */
  offload?: boolean;
}

export interface Contender {
  key: string;
  label: string;
  /** Commands it needs on the host. */
  tools: string[];
  /** The host address the servers must also listen on (veth). */
  serverAddr?: string;
  /** The same for IPv6. */
  serverAddr6?: string;
  setup?(): void;
  teardown?(): void;
  /** Only the steps (by name, measures.ts) this returns true for; all when absent. */
  steps?: (name: string) => boolean;
  start(mtu: number, opts?: StartOptions): Promise<Session>;
}

export interface Context {
  tmp: string;
  repo: string;
}

export function inNs(nsPath: string, argv: string[]): string[] {
  return ["nsenter", `--net=${nsPath}`, "--", ...argv];
}

let seq = 0;
const uniq = () => `${process.pid}-${++seq}`;

function netnsNames(): string[] {
  return sh(["ip", "netns", "list"]).split("\n").map((l) => l.split(" ")[0]).filter(Boolean);
}

function nsPids(name: string): string[] {
  return sh(["ip", "netns", "pids", name]).split(/\s+/).filter(Boolean);
}

function comm(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Remove the namespace `name`, or every one whose name starts with `name` when it ends with "-", killing what runs in them; returns their names. */
function removeNamespaces(name: string): string[] {
  const gone = netnsNames().filter((n) => (name.endsWith("-") ? n.startsWith(name) : n === name));
  for (const n of gone) {
    for (const pid of nsPids(n)) shQuiet(["kill", "-9", pid]);
    shQuiet(["ip", "netns", "delete", n]);
    rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
  }
  return gone;
}

/** Check the MTU of the guest's interface; set it when the contender did not, and say so. */
function checkMtu(nsPath: string, mtu: number, notes: string[]): void {
  const line = sh(inNs(nsPath, ["ip", "-o", "link"])).split("\n").find((l) => l && !/^\d+: lo:/.test(l));
  const m = line && /^\d+: ([^:@]+)[^ ]* .* mtu (\d+)/.exec(line);
  if (!m) throw new Error(`no guest interface in the namespace: ${line ?? ""}`);
  if (Number(m[2]) !== mtu) {
    sh(inNs(nsPath, ["ip", "link", "set", "dev", m[1], "mtu", String(mtu)]));
    notes.push(`guest interface ${m[1]} had MTU ${m[2]}; set to ${mtu}`);
  }
}

/** Wrap a started contender process; on a failed start it is stopped before the error goes on. */
async function session(bg: Bg, ready: () => Promise<Omit<Session, "alive" | "describe" | "stop" | "notes">>, stop: () => Promise<void>, mtu: number): Promise<Session> {
  try {
    const s = await ready();
    const notes: string[] = [];
    checkMtu(s.nsPath, mtu, notes);
    return { ...s, notes, alive: () => bg.alive, describe: () => bg.describe(), stop };
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}${bg.alive ? "" : ` (${bg.describe()})`}`);
  }
}

export function skiff(ctx: Context): Contender {
  return {
    key: "skiff",
    label: "skiff",
    tools: ["node"],
    async start(mtu, opts) {
      const offload = opts?.offload === false ? ["--no-offload"] : [];
      const bg = new Bg(withNofile([process.execPath, "bin/skiff.js", "run", "--mtu", String(mtu), ...offload, "--", "sleep", "infinity"]), `${ctx.tmp}/skiff-${mtu}-${uniq()}.log`, ctx.repo);
      const prefix = `skiff-${bg.pid}-`;
      onCleanup(() => removeNamespaces(prefix));
      let notes: string[] = [];
      const stop = async () => {
        await bg.stop("SIGTERM", 10_000);
        const left = removeNamespaces(prefix);
        if (left.length) notes.push(`skiff run left namespace ${left.join(", ")} behind after SIGTERM (${bg.describe()})`);
      };
      const s = await session(
        bg,
        async () => {
          // Ready once its command runs: before that, the pids in the namespace are its `ip` set-up commands.
          const name = await waitFor("skiff's namespace and its command", 20_000, () => {
            if (!bg.alive) throw new Error("skiff run exited during start");
            const n = netnsNames().find((x) => x.startsWith(prefix));
            return n && nsPids(n).some((pid) => comm(pid) === "sleep") ? n : undefined;
          });
          // The host alias: 192.168.65.2 reaches the host's 127.0.0.1, fd73:6b69:6666::2 its ::1.
          return { nsPath: `/run/netns/${name}`, hostIp: "192.168.65.2", hostIp6: SKIFF_HOST6, pid: bg.pid };
        },
        stop,
        mtu,
      );
      notes = s.notes;
      return s;
    },
  };
}

export function slirp4netns(ctx: Context): Contender {
  return {
    key: "slirp4netns",
    label: "slirp4netns",
    tools: ["slirp4netns"],
    async start(mtu) {
      const ns = `skb-slirp-${uniq()}`;
      sh(["ip", "netns", "add", ns]);
      onCleanup(() => removeNamespaces(ns));
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      const bg = new Bg(withNofile(["slirp4netns", "--configure", `--mtu=${mtu}`, "--netns-type=path", `/run/netns/${ns}`, "tap0"]), `${ctx.tmp}/${ns}.log`);
      const stop = async () => {
        await bg.stop();
        removeNamespaces(ns);
      };
      return session(
        bg,
        async () => {
          await waitFor("slirp4netns to configure tap0", 10_000, () => {
            if (!bg.alive) throw new Error("slirp4netns exited during start");
            return shTry(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "tap0"]).includes("10.0.2.100") || undefined;
          });
          return { nsPath: `/run/netns/${ns}`, hostIp: "10.0.2.2", pid: bg.pid };
        },
        stop,
        mtu,
      );
    },
  };
}

/** pasta refuses root in a namespace it did not make, so it makes its own (user + network). */
export function pasta(ctx: Context): Contender {
  return {
    key: "pasta",
    label: "pasta",
    tools: ["pasta"],
    async start(mtu) {
      const dir = `${ctx.tmp}/pasta-${uniq()}`;
      mkdirSync(dir, { recursive: true });
      chmodSync(ctx.tmp, 0o755);
      chmodSync(dir, 0o777);
      const pidFile = `${dir}/pid`;
      const base = ["pasta", "-f", "-q", "--config-net", "--mtu", String(mtu), "-P", pidFile];
      // As an ordinary user when /dev/net/tun lets one open it; else as root with --runas 0
      // (pasta then still runs the command in a user + network namespace of its own).
      const tunOpen = (statSync("/dev/net/tun").mode & 0o006) === 0o006;
      const argv = tunOpen ? ["runuser", "-u", "nobody", "--", ...base, "--", "sleep", "infinity"] : [...base, "--runas", "0", "--", "sleep", "infinity"];
      const bg = new Bg(withNofile(argv), `${dir}/log`);
      let child: number | undefined;
      const stop = async () => {
        if (child) shQuiet(["kill", String(child)]);
        await bg.stop();
      };
      const s = await session(
        bg,
        async () => {
          const pid = await waitFor("pasta's PID file", 10_000, () => {
            if (!bg.alive) throw new Error("pasta exited during start");
            const t = readPid(pidFile);
            return t && childPids(t).length ? t : undefined;
          });
          child = childPids(pid)[0];
          const nsPath = `/proc/${child}/ns/net`;
          const gw = await waitFor("pasta's default route in the namespace", 10_000, () => /default via (\S+)/.exec(shTry(inNs(nsPath, ["ip", "-4", "route", "show", "default"])))?.[1]);
          // pasta copies the host's IPv6 default gateway into the namespace and maps connections
          // to it to the host's ::1 (passt(1) NOTES, without --no-map-gw), as it maps the IPv4
          // gateway to 127.0.0.1. No IPv6 route on the host: pasta runs IPv4 only, no IPv6 rows.
          const gw6 = /default via (\S+)/.exec(shTry(inNs(nsPath, ["ip", "-6", "route", "show", "default"])))?.[1];
          return { nsPath, hostIp: gw, ...(gw6 ? { hostIp6: gw6 } : {}), pid };
        },
        stop,
        mtu,
      );
      if (!tunOpen) s.notes.push("/dev/net/tun is not open to other users here: pasta ran as root with --runas 0 (its command in its own user + network namespace)");
      return s;
    },
  };
}

function readPid(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, "utf8").trim());
    return n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export const VETH_HOST = "10.77.0.1";
/** The veth pair's IPv6 (a ULA, RFC 4193; nodad so it is usable at once). */
export const VETH_HOST6 = "fd77:6b62::1";
const VETH_GUEST6 = "fd77:6b62::2";
/** skiff's IPv6 host alias (ARCHITECTURE.md, addressing plan). */
export const SKIFF_HOST6 = "fd73:6b69:6666::2";

/** The kernel's own path, the limit: a veth pair between the host and the namespace. */
export function veth(): Contender {
  const n = process.pid % 100_000;
  const ns = `skb-veth-${process.pid}`;
  const host = `skb-h${n}`;
  const guest = `skb-g${n}`;
  return {
    key: "veth",
    label: "kernel veth",
    tools: ["ip"],
    serverAddr: VETH_HOST,
    serverAddr6: VETH_HOST6,
    setup() {
      if (sh(["ip", "-4", "-o", "addr", "show", "to", "10.77.0.0/24"]).trim()) throw new Error("10.77.0.0/24 is already in use on this host");
      if (sh(["ip", "-6", "-o", "addr", "show", "to", "fd77:6b62::/64"]).trim()) throw new Error("fd77:6b62::/64 is already in use on this host");
      onCleanup(() => this.teardown!());
      sh(["ip", "netns", "add", ns]);
      sh(["ip", "link", "add", host, "type", "veth", "peer", "name", guest]);
      sh(["ip", "link", "set", guest, "netns", ns]);
      sh(["ip", "addr", "add", `${VETH_HOST}/24`, "dev", host]);
      sh(["ip", "link", "set", host, "up"]);
      sh(["ip", "-6", "addr", "add", `${VETH_HOST6}/64`, "dev", host, "nodad"]);
      sh(["ip", "-n", ns, "addr", "add", "10.77.0.2/24", "dev", guest]);
      sh(["ip", "-n", ns, "-6", "addr", "add", `${VETH_GUEST6}/64`, "dev", guest, "nodad"]);
      sh(["ip", "-n", ns, "link", "set", guest, "up"]);
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    },
    teardown() {
      shQuiet(["ip", "link", "delete", host]);
      removeNamespaces(ns);
    },
    async start(mtu) {
      sh(["ip", "link", "set", "dev", host, "mtu", String(mtu)]);
      sh(["ip", "-n", ns, "link", "set", "dev", guest, "mtu", String(mtu)]);
      return { nsPath: `/run/netns/${ns}`, hostIp: VETH_HOST, hostIp6: VETH_HOST6, hostInterfaces: [host], notes: [], alive: () => true, describe: () => "kernel", stop: async () => {} };
    },
  };
}
