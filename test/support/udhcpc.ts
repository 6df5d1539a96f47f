/**
 * Configure a namespace's interface from skiff's DHCP server with busybox udhcpc, the way a
 * small Linux guest does: a script applies the bound lease (`$ip/$subnet`, default route via
 * `$router`). Returns the leased address.
 */
import { expect } from "chai";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "./netns.js";

/** Write an executable shell script of `lines` at `path`; returns the path. */
export function writeScript(path: string, lines: string[]): string {
  writeFileSync(path, ["#!/bin/sh", ...lines, ""].join("\n"));
  chmodSync(path, 0o755);
  return path;
}

/** Write the udhcpc script into `dir`; returns its path. */
export function writeUdhcpcScript(dir: string): string {
  return writeScript(join(dir, "udhcpc.sh"), [
    "# udhcpc -n -q: only the first lease matters here (events: deconfig, then bound)",
    '[ "$1" = bound ] || exit 0',
    'ip addr add "$ip/$subnet" dev "$interface" && ip route replace default via "$router" dev "$interface"',
  ]);
}

/** Run udhcpc on `dev` in `ns` (script in `dir`) and return the IPv4 address it configured. */
export async function dhcpConfigure(ns: Netns, dev: string, dir: string): Promise<string> {
  const r = await ns.exec(["udhcpc", "-i", dev, "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", writeUdhcpcScript(dir)], 20_000);
  expect(r.code, r.stdout + r.stderr).to.equal(0);
  const addr = await ns.exec(["ip", "-4", "-o", "addr", "show", "dev", dev]);
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/\d+/.exec(addr.stdout);
  expect(m, `${dev} after udhcpc: ${addr.stdout} ${r.stderr}`).to.not.equal(null);
  return m![1];
}
