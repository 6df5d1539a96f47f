/**
 * Network namespaces for `skiff run` (root path): create a named namespace with `ip netns`,
 * configure its interfaces, run a command inside it, and remove it afterwards.
 *
 * This is the privileged way in; the rootless way (a user namespace made by skiff, like
 * slirp4netns/pasta) is ./userns-netns.ts, with the same interface.
 */

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { TapChannel } from "../link/tap.js";

export class CommandError extends Error {}

/** Run a short administrative command; throws CommandError with its stderr on failure. */
export function sh(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  if (r.error) throw new CommandError(`${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new CommandError(`${argv.join(" ")} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

export function requireRootWithIp(): void {
  if (process.getuid?.() !== 0) {
    throw new CommandError("skiff run's root way needs root (it creates a network namespace with `ip netns`)");
  }
  const r = spawnSync("ip", ["-V"], { encoding: "utf8" });
  if (r.error) throw new CommandError("`ip` (Debian package iproute2) is not installed: apt-get install -y iproute2");
}

export class Netns {
  private removed = false;
  private constructor(readonly name: string) {}

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  static create(prefix = "skiff"): Netns {
    const name = `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    sh(["ip", "netns", "add", name]);
    return new Netns(name);
  }

  /** Create TAP `o.name` inside the namespace. */
  openTap(o: { name: string; mtu: number; offload: boolean }): TapChannel {
    return TapChannel.open({ ...o, netns: this.path });
  }

  exec(argv: string[]): string {
    return sh(["ip", "netns", "exec", this.name, ...argv]);
  }

  /** Spawn a long-running command inside the namespace with the terminal attached. */
  spawn(argv: string[]) {
    return spawn("ip", ["netns", "exec", this.name, ...argv], { stdio: "inherit" });
  }

  /** Write /etc/netns/NAME/FILE, which `ip netns exec` binds over /etc/FILE for its command. */
  writeEtc(file: string, content: string): void {
    mkdirSync(this.etcDir, { recursive: true });
    writeFileSync(`${this.etcDir}/${file}`, content);
  }

  private get etcDir(): string {
    return `/etc/netns/${this.name}`;
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    // Processes the command left behind in the namespace (a daemon, an orphaned child) go too.
    const pids = spawnSync("ip", ["netns", "pids", this.name], { encoding: "utf8" }).stdout ?? "";
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    spawnSync("ip", ["netns", "delete", this.name]);
    rmSync(this.etcDir, { recursive: true, force: true });
  }
}
