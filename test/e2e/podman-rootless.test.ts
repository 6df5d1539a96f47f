/**
 * End to end (issue 17): Debian's Podman 4.3, rootless, as an unprivileged user the test creates,
 * with skiff as its slirp4netns (containers.conf `[engine] network_cmd_path` =
 * bin/skiff-slirp4netns.js, `network_cmd_options = ["enable_ipv6=false"]` since skiff has no IPv6
 * yet and Podman asks for it by default) — and, to check the test itself, with the real
 * slirp4netns (default options), which must give the same results:
 *   - `podman run --network slirp4netns:allow_host_loopback=true` downloads 4 MB from a host
 *     server on 127.0.0.1 through 10.0.2.2 (SHA-256 equal);
 *   - `-p 127.0.0.1:PORT:8080` reaches busybox httpd in a container, with Podman's default port
 *     handler (rootlessport) and with `port_handler=slirp4netns` (the API socket's add_hostfwd).
 * No registry: the image is `podman import`ed from a rootfs tarball of Debian's busybox-static.
 * Storage is vfs under the user's test directory (`rootless_storage_path`), with XDG_* and TMPDIR
 * there too; no systemd session, so cgroupfs and no events log. The OCI runtime is runc: this
 * machine mounts cgroups in hybrid mode, which Debian's crun 1.8 refuses.
 */
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../support/ports.js";
import { cleanupUserDir, ensureUser, openTun, rootlessUnavailable, runAs, userEnv, type TestUser } from "../support/rootless.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SKIFF = join(root, "bin", "skiff-slirp4netns.js");
const BODY = randomBytes(4 << 20);
const BODY_SHA = createHash("sha256").update(BODY).digest("hex");

/** A rootfs tarball: busybox-static and its applets, a file to serve. */
function rootfsTarball(u: TestUser): string {
  const rf = join(u.dir, "rootfs");
  for (const d of ["bin", "www", "etc", "tmp", "proc", "sys", "dev"]) mkdirSync(join(rf, d), { recursive: true });
  copyFileSync("/bin/busybox", join(rf, "bin", "busybox"));
  chmodSync(join(rf, "bin", "busybox"), 0o755);
  for (const a of ["sh", "wget", "httpd", "sha256sum", "cut", "timeout", "sleep", "cat"]) symlinkSync("busybox", join(rf, "bin", a));
  writeFileSync(join(rf, "www", "inside.txt"), "served from a container\n");
  const tar = join(u.dir, "bb.tar");
  const r = spawnSync("tar", ["-C", rf, "-cf", tar, "."]);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  chownSync(tar, u.uid, u.gid);
  return tar;
}

/** containers.conf and storage.conf under the user's test dir; the environment pointing at them. */
function podmanEnv(u: TestUser, slirp: string, options: string[]): NodeJS.ProcessEnv {
  const d = u.dir;
  const cfg = join(d, "config", "containers");
  for (const x of [cfg, join(d, "data"), join(d, "run"), join(d, "tmp")]) mkdirSync(x, { recursive: true, mode: 0o700 });
  writeFileSync(join(cfg, "storage.conf"), `[storage]\ndriver = "vfs"\nrootless_storage_path = "${d}/storage"\n`);
  const opts = options.length ? `network_cmd_options = [${options.map((o) => JSON.stringify(o)).join(", ")}]\n` : "";
  writeFileSync(join(cfg, "containers.conf"), `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\nruntime = "runc"\nnetwork_cmd_path = "${slirp}"\n${opts}`);
  spawnSync("chown", ["-R", `${u.uid}:${u.gid}`, d]);
  return userEnv(u, { XDG_CONFIG_HOME: join(d, "config"), XDG_DATA_HOME: join(d, "data"), XDG_RUNTIME_DIR: join(d, "run"), TMPDIR: join(d, "tmp") });
}

for (const impl of ["skiff", "slirp4netns"] as const) {
  describe(`e2e: rootless Podman --network slirp4netns with ${impl === "skiff" ? "skiff slirp4netns" : "the real slirp4netns (checks the test)"}`, function () {
    this.timeout(180_000);
    let user: TestUser;
    let undoTun = () => {};
    let http: Server;
    let port: number;
    let env: NodeJS.ProcessEnv;
    const podman = (args: string[], timeoutMs = 60_000) => runAs(user, ["podman", ...args], { env, timeoutMs });

    before(async function () {
      const reason = rootlessUnavailable(["podman", "runc", "newuidmap", "tar", ...(impl === "slirp4netns" ? ["slirp4netns"] : [])]);
      if (reason !== undefined) {
        console.log(`    skipped: ${reason}`);
        this.skip();
      }
      undoTun = openTun();
      user = ensureUser("skiff-rl", true);
      const tar = rootfsTarball(user);
      env = impl === "skiff" ? podmanEnv(user, SKIFF, ["enable_ipv6=false"]) : podmanEnv(user, spawnSync("sh", ["-c", "command -v slirp4netns"], { encoding: "utf8" }).stdout.trim(), []);
      const imp = await podman(["import", tar, "localhost/skiff-bb:latest"]);
      expect(imp.code, imp.stderr).to.equal(0);
      http = createServer((_req, res) => {
        res.writeHead(200, { "content-length": BODY.length });
        res.end(BODY);
      });
      await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
      port = (http.address() as { port: number }).port;
    });

    after(async () => {
      http?.close();
      if (user) {
        await podman(["rm", "-af"]).catch(() => {});
        // Rootless Podman leaves a pause process holding its user namespace: end it (ours, by pid).
        try {
          process.kill(Number(readFileSync(join(user.dir, "run", "libpod", "tmp", "pause.pid"), "utf8")), "SIGKILL");
        } catch {
          /* none */
        }
        cleanupUserDir(user);
      }
      undoTun();
    });

    it("podman run --network slirp4netns:allow_host_loopback=true downloads from the host through 10.0.2.2", async () => {
      const r = await podman(["run", "--rm", "--network", "slirp4netns:allow_host_loopback=true", "localhost/skiff-bb", "sh", "-c", `timeout 30 wget -q -O - http://10.0.2.2:${port}/blob | sha256sum | cut -d' ' -f1`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(BODY_SHA);
    });

    for (const handler of ["rootlesskit", "slirp4netns"]) {
      it(`-p publishes a container's port (port_handler=${handler})`, async () => {
        // A port the kernel just gave out as free (a random one collided with a port in use once).
        const hostPort = await freePort();
        const name = `web-${handler}`;
        const r = await podman(["run", "-d", "--name", name, "--network", `slirp4netns:port_handler=${handler}`, "-p", `127.0.0.1:${hostPort}:8080`, "localhost/skiff-bb", "httpd", "-f", "-p", "8080", "-h", "/www"]);
        expect(r.code, r.stderr).to.equal(0);
        try {
          let text = "";
          for (let i = 0; i < 50 && text === ""; i++) {
            text = await fetch(`http://127.0.0.1:${hostPort}/inside.txt`, { signal: AbortSignal.timeout(5_000) })
              .then((x) => x.text())
              .catch(() => new Promise<string>((res) => setTimeout(() => res(""), 200)));
          }
          expect(text).to.equal("served from a container\n");
        } finally {
          await podman(["rm", "-f", "-t", "0", name]);
        }
      });
    }
  });
}
