/**
 * Test helpers for the rootless end-to-end tests (issue 17): an unprivileged user created by the
 * test (with or without /etc/subuid ranges), /dev/net/tun opened up to Debian's default mode
 * 0666 (this machine has 0600; the change is printed and undone), a private directory the user
 * owns, commands run as that user (setpriv), optionally inside a private mount namespace whose
 * /etc/resolv.conf names a test DNS server on 127.0.0.1:53 — so that slirp4netns's and skiff's
 * DNS forwarding is exercised without a packet leaving the host — and that DNS server.
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, statSync, writeFileSync, rmSync } from "node:fs";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { join } from "node:path";
import dnsPacket from "dns-packet";

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Private directory (0700) the user owns, removed by `cleanup`. */
  dir: string;
  subids: boolean;
}

/** Why the rootless suites cannot run here, or undefined. */
export function rootlessUnavailable(extra: string[] = []): string | undefined {
  if (process.getuid?.() !== 0) return "not root: the test creates its own unprivileged user";
  for (const cmd of ["useradd", "setpriv", "unshare", ...extra]) {
    if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed`;
  }
  return undefined;
}

/** Make /dev/net/tun usable by users (Debian's default 0666), saying so; returns the undo. */
export function openTun(): () => void {
  const mode = statSync("/dev/net/tun").mode & 0o777;
  if (mode === 0o666) return () => {};
  console.log(`    test setup: chmod 0666 /dev/net/tun (was 0${mode.toString(8)}; Debian's default is 0666, needed by unprivileged users)`);
  chmodSync("/dev/net/tun", 0o666);
  return () => chmodSync("/dev/net/tun", mode);
}

/**
 * The user `name`, created when missing: an ordinary user (useradd gives it /etc/subuid and
 * /etc/subgid ranges) or, with `subids` false, a system user (which gets none). Throws when an
 * existing user's ranges do not match what was asked.
 */
export function ensureUser(name: string, subids: boolean): TestUser {
  if (spawnSync("id", ["-u", name]).status !== 0) {
    const args = subids ? ["-m", "-s", "/bin/sh", name] : ["--system", "-M", "-s", "/bin/sh", name];
    const r = spawnSync("useradd", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`useradd ${args.join(" ")}: ${r.stderr}`);
  }
  const uid = Number(spawnSync("id", ["-u", name], { encoding: "utf8" }).stdout);
  const gid = Number(spawnSync("id", ["-g", name], { encoding: "utf8" }).stdout);
  const has = spawnSync("grep", ["-q", `^${name}:`, "/etc/subuid"]).status === 0;
  if (has !== subids) throw new Error(`user ${name} ${has ? "has" : "has no"} /etc/subuid range, the test needs the opposite`);
  const dir = mkdtempSync("/tmp/sk-"); // short: Podman puts a 69-byte socket name in it (108-byte limit)
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  return { name, uid, gid, dir, subids };
}

export function cleanupUserDir(u: TestUser): void {
  // rootlesskit's copied-up files may be owned by the user's subordinate ids: root removes them.
  rmSync(u.dir, { recursive: true, force: true });
}

/** The environment a login of `u` would have (home in its test dir). */
export function userEnv(u: TestUser, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: u.dir, USER: u.name, LOGNAME: u.name, PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", XDG_RUNTIME_DIR: join(u.dir, "run"), ...extra };
}

/**
 * Spawn `argv` as `u` (setpriv: its uid, gid and groups). With `resolv`, first enter a private
 * mount namespace (as root) whose /etc/resolv.conf is that file.
 */
export function spawnAs(u: TestUser, argv: string[], opts: { env?: NodeJS.ProcessEnv; resolv?: string; cwd?: string } = {}): ChildProcess {
  const priv = ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", "--", ...argv];
  const full = opts.resolv === undefined ? priv : ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', opts.resolv, ...priv];
  return spawn(full[0], full.slice(1), { env: opts.env ?? userEnv(u), cwd: opts.cwd ?? u.dir, stdio: ["ignore", "pipe", "pipe"] });
}

/** Run to completion: exit code and output (killed after `timeoutMs`). */
export function runAs(u: TestUser, argv: string[], opts: { env?: NodeJS.ProcessEnv; resolv?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawnAs(u, argv, opts);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig === "SIGKILL" ? -9 : -1), stdout, stderr });
    });
  });
}

/** A file the user can read: a resolv.conf naming only the test DNS server. */
export function testResolvConf(u: TestUser): string {
  const path = join(u.dir, "resolv.conf");
  writeFileSync(path, "nameserver 127.0.0.1\n");
  chmodSync(path, 0o644);
  return path;
}

/** A DNS server on 127.0.0.1:53 answering A queries for `names` (anything else NXDOMAIN); counts queries. */
export async function testDnsServer(names: Record<string, string>): Promise<{ queries: () => number; close: () => void }> {
  const sock: UdpSocket = createSocket("udp4");
  let n = 0;
  sock.on("message", (msg, rinfo) => {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    n++;
    const question = q.questions?.[0];
    const ip = question && question.type === "A" ? names[question.name.toLowerCase()] : undefined;
    const reply = dnsPacket.encode({
      id: q.id,
      type: "response",
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (ip === undefined ? 3 : 0), // rcode 3: NXDOMAIN
      questions: q.questions,
      answers: ip === undefined ? [] : [{ type: "A", name: question!.name, ttl: 60, data: ip }],
    });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(53, "127.0.0.1", () => resolve());
  });
  return { queries: () => n, close: () => sock.close() };
}
