/**
 * Random loss between a guest network namespace and whatever serves its link, made with the
 * kernel's own tools (this kernel has no sch_netem; nftables' netdev family is built in): frames
 * are dropped on ingress with `numgen random`, after their sender's stack sent them, so every
 * sender sees real loss. Used by the TCP-under-loss end-to-end test and the bench's loss rows
 * (issue 19). Needs root, `nft`, `ethtool` and `ip`.
 */
import { spawnSync } from "node:child_process";

/** `nsenter --net=PATH --` (the prefix that runs a command in the namespace). */
export function inNs(nsPath: string, argv: string[]): string[] {
  return ["nsenter", `--net=${nsPath}`, "--", ...argv];
}

function exec(argv: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", input });
  return { code: r.status ?? -1, out: r.stdout ?? "", err: (r.stderr || r.error?.message) ?? "" };
}

function sh(argv: string[], input?: string): string {
  const r = exec(argv, input);
  if (r.code !== 0) throw new Error(`\`${argv.join(" ")}\` exit ${r.code}: ${r.err.trim()}`);
  return r.out;
}

const shQuiet = (argv: string[]) => void exec(argv);
const shTry = (argv: string[]) => exec(argv).out;

/** The guest's interface in the namespace (the one that is not lo). */
export function guestInterface(nsPath: string): string {
  const line = sh(inNs(nsPath, ["ip", "-o", "link"])).split("\n").find((l) => l && !/^\d+: lo:/.test(l));
  const m = line && /^\d+: ([^:@]+)/.exec(line);
  if (!m) throw new Error(`no guest interface in the namespace: ${line ?? ""}`);
  return m[1];
}

const OFFLOADS: Record<string, string> = { tso: "tcp-segmentation-offload", gso: "generic-segmentation-offload", gro: "generic-receive-offload" };

/**
 * Turn segmentation and receive offloads of an interface off; returns how to put them back as
 * they were. Errors for features a device lacks are ignored.
 */
export function offloadsOff(argvPrefix: string[], dev: string): () => void {
  const k = shTry([...argvPrefix, "ethtool", "-k", dev]);
  const was = Object.entries(OFFLOADS).filter(([, long]) => new RegExp(`^${long}: on`, "m").test(k)).map(([f]) => f);
  for (const f of Object.keys(OFFLOADS)) shQuiet([...argvPrefix, "ethtool", "-K", dev, f, "off"]);
  return () => {
    for (const f of was) shQuiet([...argvPrefix, "ethtool", "-K", dev, f, "on"]);
  };
}

/**
 * Drop `pct`% of the frames arriving on `dev` (an nftables netdev ingress chain, in the network
 * namespace `argvPrefix` enters; [] for the host's). Frames are dropped after their sender's
 * stack has sent them, so the sender sees real loss (an egress drop would be reported back to a
 * local kernel sender as congestion and retried). Returns how to remove it and a counter of
 * the frames it dropped.
 */
export function dropIngress(argvPrefix: string[], dev: string, pct: number): { undo: () => void; dropped: () => number } {
  const table = `skbloss_${dev.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const rules = `table netdev ${table} {\n  chain in {\n    type filter hook ingress device "${dev}" priority 0;\n    numgen random mod 10000 < ${Math.round(pct * 100)} counter drop\n  }\n}\n`;
  sh([...argvPrefix, "nft", "-f", "-"], rules);
  return {
    undo: () => shQuiet([...argvPrefix, "nft", "delete", "table", "netdev", table]),
    dropped: () => Number(/counter packets (\d+)/.exec(shTry([...argvPrefix, "nft", "list", "table", "netdev", table]))?.[1] ?? NaN),
  };
}

let lossNs = 0;

/** The namespace the guest's programs run in during a loss step, and how to undo the set-up. */
export interface LossLink {
  nsPath: string;
  /** Frames dropped so far toward the guest and from it. */
  dropped(): { toGuest: number; fromGuest: number };
  undo(): void;
}

/**
 * Random loss of `pct`% each way between the guest and the contender, dropped on ingress at both
 * ends. The kernel veth has an ingress at each end (guest end in the namespace, host end here).
 * A TAP-attached contender (skiff, slirp4netns, pasta) reads the guest's frames from a file
 * descriptor, past any hook, so the guest moves to a namespace of its own behind a veth that a
 * bridge joins to the TAP: loss on the veth's two ingresses, the TAP untouched. Offloads are
 * off on every interface of the path so every segment is MTU-sized.
 */
export function lossLink(s: { nsPath: string; hostInterfaces?: string[] }, pct: number): LossLink {
  const undo: Array<() => void> = [];
  const run = (f: () => void) => {
    try {
      f();
    } catch {
      // best effort: the next undo still runs
    }
  };
  const done = () => undo.reverse().forEach(run);
  try {
    const inC = inNs(s.nsPath, []);
    const dev = guestInterface(s.nsPath);
    undo.push(offloadsOff(inC, dev));
    if (s.hostInterfaces?.length) {
      for (const h of s.hostInterfaces) undo.push(offloadsOff([], h));
      const toGuest = dropIngress(inC, dev, pct);
      undo.push(toGuest.undo);
      const fromGuest = s.hostInterfaces.map((h) => dropIngress([], h, pct));
      for (const f of fromGuest) undo.push(f.undo);
      const dropped = () => ({ toGuest: toGuest.dropped(), fromGuest: fromGuest.reduce((n, f) => n + f.dropped(), 0) });
      return { nsPath: s.nsPath, dropped, undo: done };
    }
    const addr = /inet (\S+)/.exec(sh([...inC, "ip", "-4", "-o", "addr", "show", "dev", dev]))?.[1];
    const gw = /default via (\S+)/.exec(sh([...inC, "ip", "-4", "route", "show", "default"]))?.[1];
    const mac = /link\/ether (\S+)/.exec(sh([...inC, "ip", "-o", "link", "show", "dev", dev]))?.[1];
    const mtu = /mtu (\d+)/.exec(sh([...inC, "ip", "-o", "link", "show", "dev", dev]))?.[1];
    if (!addr || !gw || !mac || !mtu) throw new Error(`guest interface ${dev}: address ${addr}, gateway ${gw}, MAC ${mac}, MTU ${mtu}`);
    const name = `skb-lossg-${process.pid}-${++lossNs}`;
    sh(["ip", "netns", "add", name]);
    undo.push(() => {
      // Whatever still runs in it (a transfer stopped by a timeout) would keep it, and the veth, alive.
      for (const pid of shTry(["ip", "netns", "pids", name]).split(/\s+/).filter(Boolean)) shQuiet(["kill", "-9", pid]);
      shQuiet(["ip", "netns", "delete", name]);
    });
    const inG = inNs(`/run/netns/${name}`, []);
    // The guest's address and MAC move to the veth's guest end; the TAP becomes a bridge port
    // (with another MAC: a bridge keeps its ports' own addresses for itself).
    sh([...inC, "ip", "addr", "del", addr, "dev", dev]);
    undo.push(() => {
      shQuiet([...inC, "ip", "addr", "add", addr, "dev", dev]);
      shQuiet([...inC, "ip", "route", "replace", "default", "via", gw]);
    });
    sh([...inC, "ip", "link", "set", dev, "address", "02:5b:00:00:00:01"]);
    undo.push(() => shQuiet([...inC, "ip", "link", "set", dev, "address", mac]));
    sh([...inC, "ip", "link", "add", "skbl-br", "type", "bridge", "forward_delay", "0"]);
    undo.push(() => shQuiet([...inC, "ip", "link", "del", "skbl-br"]));
    sh([...inC, "ip", "link", "add", "skbl-h", "mtu", mtu, "type", "veth", "peer", "name", "skbl-g", "netns", name]);
    undo.push(() => shQuiet([...inC, "ip", "link", "del", "skbl-h"]));
    sh([...inC, "ip", "link", "set", dev, "master", "skbl-br"]);
    undo.push(() => shQuiet([...inC, "ip", "link", "set", dev, "nomaster"]));
    sh([...inC, "ip", "link", "set", "skbl-h", "master", "skbl-br", "up"]);
    sh([...inC, "ip", "link", "set", "skbl-br", "mtu", mtu, "up"]);
    sh([...inG, "ip", "link", "set", "lo", "up"]);
    sh([...inG, "ip", "link", "set", "skbl-g", "address", mac, "mtu", mtu, "up"]);
    sh([...inG, "ip", "addr", "add", addr, "dev", "skbl-g"]);
    sh([...inG, "ip", "route", "add", "default", "via", gw]);
    offloadsOff(inC, "skbl-h");
    offloadsOff(inG, "skbl-g");
    const fromGuest = dropIngress(inC, "skbl-h", pct);
    undo.push(fromGuest.undo);
    const toGuest = dropIngress(inG, "skbl-g", pct);
    const dropped = () => ({ toGuest: toGuest.dropped(), fromGuest: fromGuest.dropped() });
    return { nsPath: `/run/netns/${name}`, dropped, undo: done };
  } catch (e) {
    done();
    throw e;
  }
}

