#!/usr/bin/env node
// The package's install script (prebuilt-or-build): when a prebuilt addon matches this platform
// (prebuilds/<platform>-<arch>/skiff.node) or one was already built (native/build/Release/),
// nothing is done; otherwise the addon is built from the shipped C sources with node-gyp (npm
// puts its own node-gyp on PATH for install scripts). A failed build does not fail the
// install: the pure-JS parts of skiff work without the addon, and the parts that need it (TAP
// devices, host sockets in one epoll set, ICMP and Unix datagram sockets) say so when used.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const prebuilt = join(root, "prebuilds", `${process.platform}-${process.arch}`, "skiff.node");
const built = join(root, "native", "build", "Release", "skiff.node");
if (existsSync(prebuilt) || existsSync(built)) process.exit(0);
if (process.platform !== "linux") {
  console.warn(`skiff: no native addon for ${process.platform}-${process.arch} (it is Linux-only); the pure-JS parts work without it`);
  process.exit(0);
}
console.warn(`skiff: no prebuilt addon for ${process.platform}-${process.arch}: building it from source (node-gyp)`);
const r = spawnSync("node-gyp", ["rebuild", "-C", join(root, "native")], { stdio: "inherit", shell: process.platform === "win32" });
if (r.status !== 0) {
  console.warn(
    "skiff: building the native addon failed (it needs python3, make and a C compiler); the pure-JS parts work without it. " +
      "Install those and run `npm rebuild skiff` for TAP devices, ICMP and Unix datagram sockets and the fast host-socket path.",
  );
}
process.exit(0);
