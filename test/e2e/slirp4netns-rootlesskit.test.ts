/**
 * End to end (issue 17): Debian's RootlessKit run by an unprivileged user the test creates, with
 * `--net=slirp4netns --slirp4netns-binary=<bin/skiff-slirp4netns.js>` — and, to check the test
 * itself, the same run with the real slirp4netns, which must give the same results:
 *   - a 4 MB download from a host server on 127.0.0.1 through 10.0.2.2 (SHA-256 equal);
 *   - DNS through 10.0.2.3: `dig @10.0.2.3` and a curl by name through the /etc/resolv.conf
 *     RootlessKit writes (--copy-up=/etc); the name is answered by a test DNS server on
 *     127.0.0.1:53, which RootlessKit and its slirp4netns see as their resolver (a private mount
 *     namespace binds a resolv.conf naming it), so no query leaves the host;
 *   - a port published with `--port-driver=slirp4netns -p 127.0.0.1:PORT:8080/tcp` (through
 *     the API socket's add_hostfwd) reaches a server inside the namespace;
 *   - with `--disable-host-loopback`, a connection to 10.0.2.2 fails and the host server sees
 *     no request, while DNS through 10.0.2.3 (routed via 10.0.2.2) still answers.
 */
import { freePort } from "../support/ports.js";
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, chownSync, writeFileSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanupUserDir, ensureUser, openTun, rootlessUnavailable, spawnAs, testDnsServer, testResolvConf, userEnv, type TestUser } from "../support/rootless.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SKIFF = join(root, "bin", "skiff-slirp4netns.js");
const BODY = randomBytes(4 << 20);
const BODY_SHA = createHash("sha256").update(BODY).digest("hex");
const NAME = "skiff-e2e.test";

async function hostServer(): Promise<{ server: Server; port: number; requests: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    const body = req.url === "/blob" ? BODY : Buffer.from("hello from the host\n");
    res.writeHead(200, { "content-length": body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port, requests: () => n };
}

async function waitFor(path: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (existsSync(path)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function fetchText(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return r.text();
}

for (const impl of ["skiff", "slirp4netns"] as const) {
  describe(`e2e: rootless RootlessKit --net=slirp4netns with ${impl === "skiff" ? "skiff slirp4netns" : "the real slirp4netns (checks the test)"}`, function () {
    this.timeout(120_000);
    let user: TestUser;
    let undoTun = () => {};
    let http: { server: Server; port: number; requests: () => number };
    let dns: { queries: () => number; close: () => void } | undefined;

    before(async function () {
      const reason = rootlessUnavailable(["rootlesskit", "newuidmap", "dig", ...(impl === "slirp4netns" ? ["slirp4netns"] : [])]);
      if (reason !== undefined) {
        console.log(`    skipped: ${reason}`);
        this.skip();
      }
      undoTun = openTun();
      user = ensureUser("skiff-rl", true);
      http = await hostServer();
      try {
        dns = await testDnsServer({ [NAME]: "10.0.2.2" });
      } catch (e) {
        console.log(`    skipped: cannot bind the test DNS server on 127.0.0.1:53: ${(e as Error).message}`);
        this.skip();
      }
    });

    after(() => {
      http?.server.close();
      dns?.close();
      if (user) cleanupUserDir(user);
      undoTun();
    });

    it("downloads through 10.0.2.2, resolves through 10.0.2.3, publishes a port through the API socket", async () => {
      const binary = impl === "skiff" ? SKIFF : (spawnSync("sh", ["-c", "command -v slirp4netns"], { encoding: "utf8" }).stdout.trim());
      const d = user.dir;
      mkdirSync(join(d, "www"));
      writeFileSync(join(d, "www", "inside.txt"), "served from inside the namespace\n");
      for (const p of [join(d, "www"), join(d, "www", "inside.txt")]) chownSync(p, user.uid, user.gid);
      // A port the kernel just gave out as free (random ones can collide with ports in use).
      const hostPort = await freePort();
      const script = [
        "set -e",
        `curl -sS -m 30 -o ${d}/blob http://10.0.2.2:${http.port}/blob`,
        `sha256sum ${d}/blob | cut -d' ' -f1 > ${d}/blob.sha`,
        `dig +short +time=3 +tries=2 @10.0.2.3 ${NAME} > ${d}/dig.out`,
        `curl -sS -m 10 http://${NAME}:${http.port}/ > ${d}/byname.out`,
        `cd ${d}/www && python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 & srv=$!`,
        `for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done`,
        `touch ${d}/ready`,
        `for i in $(seq 300); do [ -e ${d}/done ] && break; sleep 0.1; done`,
        "kill $srv",
      ].join("\n");
      const argv = [
        "rootlesskit",
        `--state-dir=${join(d, "rk")}`,
        "--net=slirp4netns",
        `--slirp4netns-binary=${binary}`,
        "--disable-host-loopback=false",
        "--copy-up=/etc",
        "--port-driver=slirp4netns",
        `--publish=127.0.0.1:${hostPort}:8080/tcp`,
        "sh",
        "-c",
        script,
      ];
      const child = spawnAs(user, argv, { env: userEnv(user), resolv: testResolvConf(user) });
      let out = "";
      child.stdout!.on("data", (x) => (out += x));
      child.stderr!.on("data", (x) => (out += x));
      const exited = new Promise<number>((r) => child.on("close", (c) => r(c ?? -1)));
      try {
        const ready = await Promise.race([waitFor(join(d, "ready"), 60_000), exited.then(() => false)]);
        expect(ready, `the script inside did not get ready:\n${out}`).to.equal(true);
        expect(readFileSync(join(d, "blob.sha"), "utf8").trim(), "SHA-256 of the download through 10.0.2.2").to.equal(BODY_SHA);
        expect(readFileSync(join(d, "dig.out"), "utf8").trim(), "dig @10.0.2.3").to.equal("10.0.2.2");
        expect(readFileSync(join(d, "byname.out"), "utf8"), "curl by name").to.equal("hello from the host\n");
        expect(dns!.queries(), "queries seen by the test DNS server").to.be.greaterThan(0);
        expect(await fetchText(`http://127.0.0.1:${hostPort}/inside.txt`)).to.equal("served from inside the namespace\n");
      } finally {
        writeFileSync(join(d, "done"), "");
        const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-2), 15_000))]);
        if (code === -2) child.kill("SIGKILL");
      }
      expect(await exited, out).to.equal(0);
    });

    it("--disable-host-loopback: 10.0.2.2 refuses connections, DNS through 10.0.2.3 still answers", async () => {
      const binary = impl === "skiff" ? SKIFF : spawnSync("sh", ["-c", "command -v slirp4netns"], { encoding: "utf8" }).stdout.trim();
      const before = http.requests();
      const script = `curl -sS -m 5 -o /dev/null http://10.0.2.2:${http.port}/; echo "curl=$?"; dig +short +time=3 +tries=2 @10.0.2.3 ${NAME}`;
      const argv = ["rootlesskit", `--state-dir=${join(user.dir, "rk2")}`, "--net=slirp4netns", `--slirp4netns-binary=${binary}`, "--disable-host-loopback", "sh", "-c", script];
      const child = spawnAs(user, argv, { env: userEnv(user), resolv: testResolvConf(user) });
      let out = "";
      let stdout = "";
      child.stdout!.on("data", (x) => ((out += x), (stdout += x)));
      child.stderr!.on("data", (x) => (out += x));
      const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? -1)));
      expect(code, out).to.equal(0);
      const curl = /curl=(\d+)/.exec(stdout);
      expect(curl, out).to.not.equal(null);
      expect(Number(curl![1]), `curl to 10.0.2.2 with host loopback disabled\n${out}`).to.not.equal(0);
      expect(http.requests(), "requests the host server saw").to.equal(before);
      expect(stdout.trim().split("\n").pop(), out).to.equal("10.0.2.2");
    });
  });
}
