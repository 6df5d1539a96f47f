/**
 * The rootless helpers' pure parts (src/link/userns.ts): errors that name the setting to change
 * when the system forbids user namespaces or /dev/net/tun, and /etc/subuid parsing (by name or
 * uid, first matching line, malformed lines ignored).
 */
import { expect } from "chai";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants } from "node:os";
import { helperError, subordinateRange } from "../../src/link/userns.js";

const E = constants.errno;

describe("rootless helpers: errors and /etc/subuid", () => {
  it("a refused user namespace names the sysctls to change", () => {
    for (const errno of [E.EPERM, E.ENOSPC, E.EACCES]) {
      const m = helperError("unshare-user", errno, { tap: "tap0" }).message;
      expect(m).to.match(/user\.max_user_namespaces/);
      expect(m).to.match(/kernel\.unprivileged_userns_clone/);
      expect(m).to.match(/kernel\.apparmor_restrict_unprivileged_userns/);
    }
  });

  it("/dev/net/tun: chmod 0666 when refused, modprobe when missing; TUNSETIFF and setns explained", () => {
    expect(helperError("open-tun", E.EACCES, { tap: "tap0" }).message).to.match(/chmod 0666 \/dev\/net\/tun/);
    expect(helperError("open-tun", E.ENOENT, { tap: "tap0" }).message).to.match(/modprobe tun/);
    expect(helperError("tunsetiff", E.EPERM, { tap: "tap7" }).message).to.match(/TAP tap7.*CAP_NET_ADMIN/);
    expect(helperError("setns-net", E.EPERM, { tap: "tap0", netns: "/proc/9/ns/net" }).message).to.match(/\/proc\/9\/ns\/net.*EPERM/);
    expect(helperError("open-netns", E.ENOENT, { tap: "tap0", netns: "/x" }).message).to.match(/does not exist/);
  });

  it("finds the user's range by name or uid", () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-subuid-"));
    try {
      const f = join(dir, "subuid");
      writeFileSync(f, "alice:100000:65536\nbroken line\nbob:x:5\n1003:300000:1000\nbob:200000:65536\n");
      expect(subordinateRange(f, "alice", 1001)).to.deep.equal({ start: 100000, count: 65536 });
      expect(subordinateRange(f, "bob", 1002)).to.deep.equal({ start: 200000, count: 65536 });
      expect(subordinateRange(f, "carol", 1003)).to.deep.equal({ start: 300000, count: 1000 });
      expect(subordinateRange(f, "dave", 1004)).to.equal(undefined);
      expect(subordinateRange(join(dir, "absent"), "alice", 1001)).to.equal(undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
