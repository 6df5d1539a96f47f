/**
 * End to end (issue 17): `skiff run` as an unprivileged user the test creates — one with
 * /etc/subuid and /etc/subgid ranges (mapped through newuidmap/newgidmap) and a system user
 * without (a single `0 UID 1` mapping). Inside: root of its own user namespace; curl to a host
 * server through host.internal (SHA-256 of a 4 MB body), DNS through skiff's resolver (the
 * resolv.conf bound in the namespace and `dig @gateway`), ping to the gateway, a server published
 * with `-p`, the control API on `--api-socket` listing that forward, a `--pcap` file (0600) with the
 * traffic; skiff's status is the command's, and what the command left running is killed. With /dev/net/tun at 0600, or with user namespaces
 * forbidden (user.max_user_namespaces = 0, set inside a user namespace the test makes, so the
 * host's setting is untouched), the user gets an error that names the setting to change.
 */
import { freePort } from "../support/ports.js";
import { expect } from "chai";
import { createServer, request, type Server } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanupUserDir, ensureUser, openTun, rootlessUnavailable, runAs, spawnAs, type TestUser } from "../support/rootless.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SKIFF = [process.execPath, join(root, "bin", "skiff.js")];
const BODY = randomBytes(4 << 20);
const BODY_SHA = createHash("sha256").update(BODY).digest("hex");

async function waitFor(path: string, ms: number, alive: () => boolean): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end && alive(); ) {
    if (existsSync(path)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return existsSync(path);
}

function apiGet(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

for (const subids of [true, false]) {
  describe(`e2e: skiff run as an unprivileged user ${subids ? "with /etc/subuid ranges (newuidmap)" : "without /etc/subuid ranges (single mapping)"}`, function () {
    this.timeout(90_000);
    let user: TestUser;
    let undoTun = () => {};
    let http: Server;
    let port: number;

    before(async function () {
      const reason = rootlessUnavailable(["nsenter", "ip", "curl", "dig", "python3", ...(subids ? ["newuidmap"] : [])]);
      if (reason !== undefined) {
        console.log(`    skipped: ${reason}`);
        this.skip();
      }
      undoTun = openTun();
      user = ensureUser(subids ? "skiff-rl" : "skiff-rl-nosub", subids);
      http = createServer((req, res) => {
        const body = req.url === "/blob" ? BODY : Buffer.from("hello from the host\n");
        res.writeHead(200, { "content-length": body.length });
        res.end(body);
      });
      await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
      port = (http.address() as { port: number }).port;
    });

    after(() => {
      http?.close();
      if (user) cleanupUserDir(user);
      undoTun();
    });

    it("curl through host.internal, DNS, ping, -p, --api-socket, --pcap; the command's status", async () => {
      const d = user.dir;
      mkdirSync(join(d, "www"));
      writeFileSync(join(d, "www", "inside.txt"), "served from inside\n");
      for (const p of [join(d, "www"), join(d, "www", "inside.txt")]) chownSync(p, user.uid, user.gid);
      // A port the kernel just gave out as free (random ones can collide with ports in use).
      const hostPort = await freePort();
      const api = join(d, "api.sock");
      const pcap = join(d, "cap.pcap");
      const script = [
        "set -e",
        `id -u > ${d}/id.out`,
        `cat /proc/self/uid_map > ${d}/uid_map.out`,
        `curl -sS -m 30 -o ${d}/blob http://host.internal:${port}/blob`,
        `sha256sum ${d}/blob | cut -d' ' -f1 > ${d}/blob.sha`,
        // ahostsv4: the IPv4 answer (with IPv6 on, `getent hosts` gives the AAAA first).
        `getent ahostsv4 host.internal | head -1 | cut -d' ' -f1 > ${d}/getent.out`,
        `dig +short +time=3 +tries=1 @192.168.65.1 gateway.internal > ${d}/dig.out`,
        `ping -c 1 -W 3 192.168.65.1 > ${d}/ping.out`,
        `cd ${d}/www && python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 & srv=$!`,
        `for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done`,
        `sleep 300 & echo $! > ${d}/straggler.pid`,
        `touch ${d}/ready`,
        `for i in $(seq 300); do [ -e ${d}/done ] && break; sleep 0.1; done`,
        "kill $srv",
        "exit 7",
      ].join("\n");
      const argv = [...SKIFF, "run", "-p", `127.0.0.1:${hostPort}:8080`, "--api-socket", api, "--pcap", pcap, "--", "sh", "-c", script];
      const child = spawnAs(user, argv);
      let out = "";
      child.stdout!.on("data", (x) => (out += x));
      child.stderr!.on("data", (x) => (out += x));
      let code: number | null | undefined;
      const exited = new Promise<number>((r) => child.on("close", (c) => r((code = c ?? -1))));
      try {
        expect(await waitFor(join(d, "ready"), 60_000, () => code === undefined), `not ready:\n${out}`).to.equal(true);
        expect(readFileSync(join(d, "id.out"), "utf8").trim()).to.equal("0");
        const map = readFileSync(join(d, "uid_map.out"), "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
        expect(map[0]).to.deep.equal([0, user.uid, 1]);
        expect(map.length, `uid_map:\n${JSON.stringify(map)}`).to.equal(subids ? 2 : 1);
        expect(readFileSync(join(d, "blob.sha"), "utf8").trim(), "SHA-256 through host.internal").to.equal(BODY_SHA);
        expect(readFileSync(join(d, "getent.out"), "utf8").trim()).to.equal("192.168.65.2");
        expect(readFileSync(join(d, "dig.out"), "utf8").trim()).to.equal("192.168.65.1");
        expect(readFileSync(join(d, "ping.out"), "utf8")).to.match(/1 received/);
        const r = await fetch(`http://127.0.0.1:${hostPort}/inside.txt`, { signal: AbortSignal.timeout(10_000) });
        expect(await r.text()).to.equal("served from inside\n");
        const forwards = JSON.parse(await apiGet(api, "/forwards")) as Array<{ hostPort: number; guestPort: number }>;
        expect(forwards.map((f) => [f.hostPort, f.guestPort])).to.deep.include([hostPort, 8080]);
      } finally {
        writeFileSync(join(d, "done"), "");
        const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(t);
      }
      expect(code, out).to.equal(7);
      // A process the command left running in the namespace is gone with it (as with the root way).
      const straggler = Number(readFileSync(join(d, "straggler.pid"), "utf8"));
      expect(straggler).to.be.greaterThan(0);
      expect(existsSync(`/proc/${straggler}`) && !readFileSync(`/proc/${straggler}/stat`, "utf8").includes(") Z "), `process ${straggler} left running`).to.equal(false);
      const st = statSync(pcap);
      expect(st.mode & 0o777).to.equal(0o600);
      expect(st.uid).to.equal(user.uid);
      expect(st.size).to.be.greaterThan(BODY.length);
    });

    if (subids) {
      it("with /dev/net/tun at 0600, fails with an error naming the fix", async () => {
        const mode = statSync("/dev/net/tun").mode & 0o777;
        chmodSync("/dev/net/tun", 0o600);
        console.log("    test setup: chmod 0600 /dev/net/tun for this test only");
        try {
          const r = await runAs(user, [...SKIFF, "run", "--", "true"], { timeoutMs: 30_000 });
          expect(r.code).to.equal(1);
          expect(r.stderr).to.match(/\/dev\/net\/tun is not accessible to uid \d+ .*chmod 0666 \/dev\/net\/tun/);
        } finally {
          chmodSync("/dev/net/tun", mode);
        }
      });

      it("with user namespaces forbidden, fails with an error naming the sysctl", async () => {
        // A user namespace mapped 0-65535 to the host's 0-65535 (root writes the maps), where
        // root sets max_user_namespaces = 0 for itself and its children, then becomes the user.
        const inner = `echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups env HOME=${user.dir} ${SKIFF.join(" ")} run -- true`;
        const child = spawn("unshare", ["--user", "sh", "-c", `while ! grep -q . /proc/self/gid_map; do sleep 0.05; done; exec sh -c '${inner}'`], { stdio: ["ignore", "pipe", "pipe"], cwd: user.dir });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        const code = new Promise<number>((r) => child.on("close", (c) => r(c ?? -1)));
        // Maps can be written once unshare(1) has made its namespace (not before: EPERM).
        const own = readlinkSync("/proc/self/ns/user");
        for (let i = 0; i < 100 && readlinkSync(`/proc/${child.pid}/ns/user`) === own; i++) await new Promise((r) => setTimeout(r, 20));
        writeFileSync(`/proc/${child.pid}/uid_map`, "0 0 65536");
        writeFileSync(`/proc/${child.pid}/gid_map`, "0 0 65536");
        expect(await code, stderr).to.equal(1);
        expect(stderr).to.match(/cannot create a user namespace \(unshare\(CLONE_NEWUSER\): ENOSPC\).*sysctl -w user\.max_user_namespaces=/);
      });
    }
  });
}
