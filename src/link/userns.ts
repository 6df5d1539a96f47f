/**
 * TAP devices inside user + network namespaces, for an unprivileged skiff (`skiff run` as a user,
 * `skiff slirp4netns`). skiff stays in its own namespaces, where its host sockets must be opened;
 * the helper executable `skiff-userns` (native/userns.c) moves into (or creates) the namespaces,
 * creates the TAP there and sends its descriptor back over a SOCK_SEQPACKET socketpair
 * (SCM_RIGHTS, unix(7); native/fdpass.c on this side). A helper process is needed because
 * setns(2) and unshare(2) with CLONE_NEWUSER refuse a multi-threaded caller, and Node always has
 * threads. The same choice as slirp4netns, which forks a child to enter and sends the fd back.
 *
 * User namespace maps (user_namespaces(7)): with ranges for the user in /etc/subuid and
 * /etc/subgid and newuidmap/newgidmap (Debian package uidmap) installed, the user is root inside
 * and the ranges follow (`0 UID 1`, `1 START COUNT`); otherwise a single mapping `0 UID 1` written
 * by skiff itself (after "deny" to /proc/PID/setgroups, as the kernel requires of an
 * unprivileged writer). Failures the system causes get an error naming the setting to change.
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { errnoName, findAddon, loadAddon, TUN_F_CSUM, TUN_F_TSO4 } from "../native/addon.js";
import { TapChannel } from "./tap.js";

/** The addon's helper-protocol functions (native/fdpass.c). */
interface FdPassAddon {
  seqpacketPair(): [number, number] | number;
  recvMessage(fd: number, timeoutMs: number): { data: string; fd: number } | number;
  sendMessage(fd: number, msg: string): number;
  close(fd: number): number;
  tapSetOffload(fd: number, flags: number): number;
}

/** How long one step of the helper may take before skiff gives up on it. */
const STEP_TIMEOUT_MS = 10_000;

/** Interface settings applied inside the namespace (what slirp4netns --configure does). */
export interface GuestInterface {
  addr: string;
  mask: string;
  gateway: string;
  mtu: number;
  /** "aa:bb:cc:dd:ee:ff"; the kernel's random MAC when absent. */
  mac?: string;
}

export interface NsTapOptions {
  /** TAP name inside the namespace (created, or attached when it exists already). */
  tap: string;
  /** IP MTU of the link (the channel's frame bound). */
  mtu: number;
  /** Checksum/segmentation offload through a virtio-net header (see ./tap.ts). */
  offload: boolean;
  /** Configure the interface and lo inside; nothing is configured when absent. */
  configure?: GuestInterface;
}

/** Path of the helper executable, next to the addon (built from source, or prebuilt beside it). */
export function usernsHelperPath(): string {
  const addon = findAddon(dirname(fileURLToPath(import.meta.url)));
  const path = addon === undefined ? undefined : join(dirname(addon), "skiff-userns");
  if (path === undefined || !existsSync(path)) {
    throw new Error("skiff: the namespace helper skiff-userns (native/userns.c) was not found beside the native addon; build it with `npm rebuild skiff` (in skiff's checkout: `npm run build:native`)");
  }
  return path;
}

function helperArgs(o: NsTapOptions): string[] {
  const a = ["--tap", o.tap];
  if (o.offload) a.push("--vnet-hdr");
  const c = o.configure;
  if (c !== undefined) {
    a.push("--mtu", String(c.mtu), "--addr", c.addr, "--mask", c.mask, "--gw", c.gateway);
    if (c.mac !== undefined) a.push("--mac", c.mac);
  }
  return a;
}

/** An error for a failed helper step ("E<step>:<errno>"), naming what to change where the system is at fault. */
export function helperError(step: string, errno: number, ctx: { tap: string; netns?: string }): Error {
  const e = errnoName(errno);
  const uid = process.getuid?.() ?? -1;
  switch (step) {
    case "unshare-user":
      return new Error(
        `cannot create a user namespace (unshare(CLONE_NEWUSER): ${e}): the system forbids unprivileged user namespaces. ` +
          "As root, allow them: `sysctl -w user.max_user_namespaces=15000` (it is 0 or used up), " +
          "`sysctl -w kernel.unprivileged_userns_clone=1` (older Debian kernels), or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 23.10+)",
      );
    case "unshare-net":
      return new Error(`cannot create a network namespace inside the user namespace (unshare: ${e})`);
    case "open-tun":
      if (errno === 2) return new Error("/dev/net/tun does not exist: load the tun module (`modprobe tun`, as root)");
      return new Error(`/dev/net/tun is not accessible to uid ${uid} (open: ${e}, mode ${tunMode()}): as root, \`chmod 0666 /dev/net/tun\` (Debian's default mode; keep it with a udev rule KERNEL=="tun", MODE="0666")`);
    case "tunsetiff":
      return new Error(`cannot create or attach TAP ${ctx.tap} in the namespace (ioctl TUNSETIFF: ${e}): it needs CAP_NET_ADMIN in the user namespace that owns the network namespace, and an existing TAP must be free and of type tap`);
    case "open-userns":
    case "open-netns":
      return new Error(`cannot open the namespace ${ctx.netns ?? ""} (${e}): ${errno === 2 ? "it does not exist (has the process exited?)" : "no permission"}`);
    case "setns-net":
      return new Error(`cannot enter the network namespace ${ctx.netns ?? ""} (setns: ${e}): skiff must own its user namespace (run it as the same user, or pass --userns-path)`);
    case "bind-resolv":
      return new Error(`cannot bind skiff's resolv.conf over /etc/resolv.conf in the namespace (mount: ${e})`);
    default:
      return new Error(`setting up the namespace failed at ${step}: ${e}`);
  }
}

function tunMode(): string {
  try {
    return "0" + (statSync("/dev/net/tun").mode & 0o777).toString(8);
  } catch {
    return "unknown";
  }
}

/**
 * One exchange with the helper: spawn it with the socket as fd 3, then `step` reads messages.
 * Everything it opened is closed when `step` throws.
 */
class Helper {
  readonly addon = loadAddon("user-namespace TAP devices (rootless skiff run)") as unknown as FdPassAddon;
  readonly fd: number;
  readonly child: ChildProcess;
  private tapFd = -1;

  constructor(
    args: string[],
    private readonly errCtx: { tap: string; netns?: string },
  ) {
    const pair = this.addon.seqpacketPair();
    if (typeof pair === "number") throw new Error(`socketpair: ${errnoName(-pair)}`);
    const [mine, theirs] = pair;
    this.fd = mine;
    try {
      this.child = spawn(usernsHelperPath(), args, { stdio: ["inherit", "inherit", "inherit", theirs] });
    } finally {
      this.addon.close(theirs);
    }
    this.child.on("error", () => {}); // reported through the socket (EOF) below
  }

  /** The next message; "" at EOF. Throws on a helper error or a timeout. */
  next(): string {
    const m = this.addon.recvMessage(this.fd, STEP_TIMEOUT_MS);
    if (typeof m === "number") throw new Error(m === -110 ? "the namespace helper did not answer in time" : `reading from the namespace helper: ${errnoName(-m)}`);
    if (m.fd >= 0) {
      if (this.tapFd >= 0) this.addon.close(this.tapFd);
      this.tapFd = m.fd;
    }
    if (m.data.startsWith("E")) {
      const [step, errno] = m.data.slice(1).split(":");
      throw helperError(step, Number(errno), this.errCtx);
    }
    return m.data;
  }

  expect(what: string): void {
    const got = this.next();
    if (got !== what) throw new Error(got === "" ? "the namespace helper exited early (see its message above)" : `unexpected message from the namespace helper: ${JSON.stringify(got)}`);
  }

  send(what: string): void {
    const n = this.addon.sendMessage(this.fd, what);
    if (n < 0) throw new Error(`the namespace helper went away (${errnoName(-n)})`);
  }

  /** The TAP descriptor received, as a channel (offload set up when asked). */
  takeTap(o: NsTapOptions, ifname: string): TapChannel {
    const fd = this.tapFd;
    if (fd < 0) throw new Error("the namespace helper sent no TAP descriptor");
    this.tapFd = -1;
    try {
      if (o.offload) {
        const r = this.addon.tapSetOffload(fd, TUN_F_CSUM | TUN_F_TSO4);
        if (r < 0) throw new Error(`${ifname}: TUNSETOFFLOAD failed: ${errnoName(-r)}`);
      }
      return new TapChannel(loadAddon("TAP devices"), fd, ifname, { mtu: o.mtu, vnetOffload: o.offload });
    } catch (e) {
      this.addon.close(fd);
      throw e;
    }
  }

  /** Close our end (the helper sees EOF) and any descriptor not taken; kill it when asked. */
  close(kill: boolean): void {
    if (this.tapFd >= 0) this.addon.close(this.tapFd);
    this.tapFd = -1;
    this.addon.close(this.fd);
    if (kill && this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

/**
 * slirp4netns's way in: enter `netns` (and `userns` first, when given), create or attach TAP
 * `o.tap` there, configure it when asked, and return it as a channel. Synchronous; the helper
 * exits when done.
 */
export function openTapInNamespace(o: NsTapOptions & { netns: string; userns?: string }): TapChannel {
  const args = ["enter", ...(o.userns !== undefined ? ["--userns", o.userns] : []), "--netns", o.netns, ...helperArgs(o)];
  const h = new Helper(args, { tap: o.tap, netns: o.netns });
  let ok = false;
  try {
    h.expect("T");
    h.expect(""); // configured and exited (an error message otherwise)
    ok = true;
    return h.takeTap(o, o.tap);
  } finally {
    h.close(!ok);
  }
}

/** New user + network + mount namespaces, held open by the helper process `pid`. */
export interface HeldNamespaces {
  pid: number;
  /** How the user namespace was mapped, for the log. */
  mapping: string;
  /** Let go: the helper exits (the namespaces live on while a process is in them). */
  release(): void;
}

/**
 * `skiff run` as a user: the helper unshares a user namespace, skiff writes its maps, the helper
 * unshares network and mount namespaces and holds them until `release` (or until skiff dies: the
 * helper sees the socket close). Enter them through /proc/PID/ns/{user,net,mnt}.
 */
export function holdNewNamespaces(): HeldNamespaces {
  const h = new Helper(["hold"], { tap: "" });
  try {
    h.expect("U");
    const mapping = writeIdMaps(h.child.pid!);
    h.send("M");
    h.expect("R");
    return { pid: h.child.pid!, mapping, release: () => h.close(false) };
  } catch (e) {
    h.close(true);
    throw e;
  }
}

/** A subordinate id range of `/etc/subuid` or `/etc/subgid` for the user (by name or id). */
export function subordinateRange(file: string, name: string | undefined, id: number): { start: number; count: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":");
    if ((who === name || who === String(id)) && /^\d+$/.test(start ?? "") && /^\d+$/.test(count ?? "") && Number(count) > 0) {
      return { start: Number(start), count: Number(count) };
    }
  }
  return undefined;
}

/** Map the helper's user namespace (see the file comment); returns a description for the log. */
function writeIdMaps(pid: number): string {
  const uid = process.getuid!();
  const gid = process.getgid!();
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = undefined;
  }
  const su = subordinateRange("/etc/subuid", name, uid);
  const sg = subordinateRange("/etc/subgid", name, gid);
  if (su !== undefined && sg !== undefined && hasCommand("newuidmap") && hasCommand("newgidmap")) {
    for (const [cmd, id, r] of [["newuidmap", uid, su], ["newgidmap", gid, sg]] as const) {
      const res = spawnSync(cmd, [String(pid), "0", String(id), "1", "1", String(r.start), String(r.count)], { encoding: "utf8" });
      if (res.status !== 0) throw new Error(`${cmd} failed: ${(res.stderr || res.error?.message || "").trim()} (check /etc/sub${cmd === "newuidmap" ? "u" : "g"}id and that ${cmd} is setuid root)`);
    }
    return `uid 0 = ${uid}, 1-${su.count} = ${su.start}-${su.start + su.count - 1} (newuidmap)`;
  }
  writeFileSync(`/proc/${pid}/setgroups`, "deny");
  writeFileSync(`/proc/${pid}/uid_map`, `0 ${uid} 1`);
  writeFileSync(`/proc/${pid}/gid_map`, `0 ${gid} 1`);
  return `uid 0 = ${uid} only (no /etc/subuid range for ${name ?? uid}, or no newuidmap)`;
}

function hasCommand(cmd: string): boolean {
  return spawnSync(cmd, ["--help"], { stdio: "ignore" }).error === undefined;
}
