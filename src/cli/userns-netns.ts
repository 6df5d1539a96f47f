/**
 * The rootless way in for `skiff run` (issue 17): the same interface as `Netns` (./netns.ts, the
 * root way with `ip netns`), on user + network + mount namespaces that an ordinary user creates
 * (src/link/userns.ts holds them open). skiff itself stays outside, where it opens host sockets.
 *
 *   - the TAP is created inside through the helper, which hands its fd back (src/link/userns.ts);
 *   - `exec` and `spawn` enter with nsenter(1) (`--user --preserve-credentials --net --mount`,
 *     as RootlessKit does): commands run as root of the user namespace — the user itself outside,
 *     with every capability inside and none beyond it;
 *   - `writeEtc("resolv.conf", …)` writes a private file (0600, in a fresh 0700 directory) and
 *     bind-mounts it over /etc/FILE inside the private mount namespace, which is what
 *     `ip netns exec` does with /etc/netns/NAME/FILE;
 *   - `remove` kills what the command left running in the namespace (only our own processes can
 *     be there), then lets the holder go.
 */

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { holdNewNamespaces, openTapInNamespace, type HeldNamespaces } from "../link/userns.js";
import type { TapChannel } from "../link/tap.js";
import { CommandError, sh } from "./netns.js";

export class UserNetns {
  private removed = false;
  private etcDir: string | undefined;

  private constructor(private readonly held: HeldNamespaces) {}

  /** A name for logs. */
  get name(): string {
    return `userns:${this.held.pid}`;
  }

  get path(): string {
    return `/proc/${this.held.pid}/ns/net`;
  }

  /** How the user namespace is mapped (for the log). */
  get mapping(): string {
    return this.held.mapping;
  }

  static create(): UserNetns {
    return new UserNetns(holdNewNamespaces());
  }

  openTap(o: { name: string; mtu: number; offload: boolean }): TapChannel {
    return openTapInNamespace({ tap: o.name, mtu: o.mtu, offload: o.offload, netns: this.path, userns: `/proc/${this.held.pid}/ns/user` });
  }

  private enter(argv: string[]): string[] {
    return ["nsenter", `--target=${this.held.pid}`, "--user", "--preserve-credentials", "--net", "--mount", "--", ...argv];
  }

  exec(argv: string[]): string {
    return sh(this.enter(argv));
  }

  /** Spawn a long-running command inside the namespaces with the terminal attached. */
  spawn(argv: string[]) {
    const full = this.enter(argv);
    return spawn(full[0], full.slice(1), { stdio: "inherit" });
  }

  /** Bind a private file with `content` over /etc/FILE inside the namespace. */
  writeEtc(file: string, content: string): void {
    if (file.includes("/")) throw new CommandError(`writeEtc: ${file}: a file name, not a path`);
    this.etcDir ??= mkdtempSync(join(tmpdir(), "skiff-run-"));
    const path = join(this.etcDir, file);
    writeFileSync(path, content, { mode: 0o600, flag: "wx" });
    this.exec(["mount", "--bind", path, `/etc/${file}`]);
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    const ns = linkOf(this.path);
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d) && Number(d) !== this.held.pid)) {
      if (ns !== undefined && linkOf(`/proc/${pid}/ns/net`) === ns) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* gone, or not ours */
        }
      }
    }
    this.held.release();
    if (this.etcDir !== undefined) rmSync(this.etcDir, { recursive: true, force: true });
  }
}

function linkOf(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** `skiff run` as a user needs nsenter (util-linux) and ip (iproute2) besides the kernel's consent. */
export function requireRootlessTools(): void {
  for (const [cmd, pkg] of [["nsenter", "util-linux"], ["ip", "iproute2"]]) {
    const r = spawnSync(cmd, ["-V"], { stdio: "ignore" });
    if (r.error) throw new CommandError(`\`${cmd}\` (Debian package ${pkg}) is not installed: ask an administrator to apt-get install -y ${pkg}`);
  }
}
