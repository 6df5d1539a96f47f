/** skiff docker's default shares (src/desktop/shares.ts) and its docker CLI context (src/desktop/context.ts), with the real docker CLI. */
import { expect } from "chai";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultSharesText, dockerShares } from "../../src/desktop/shares.js";
import { checkContextName, contextHost, ensureContext, removeContexts } from "../../src/desktop/context.js";
import { ensureStateDir } from "../../src/desktop/state.js";
import { execFileSync } from "node:child_process";

describe("desktop/shares: what skiff docker shares", () => {
  let base: string;
  beforeEach(() => (base = mkdtempSync(join(tmpdir(), "skiff-shares-"))));
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it("defaults to home and /tmp", () => {
    expect(defaultSharesText("/home/ann")).to.equal("/home/ann,/tmp");
  });

  it("parents first, -v wins over a default of the same path, missing defaults noted, none means none", () => {
    mkdirSync(join(base, "home", "src"), { recursive: true });
    const notes: string[] = [];
    const got = dockerShares(`${join(base, "home")},${join(base, "gone")}`, [join(base, "home", "src") + ":ro", join(base, "home")], (s) => notes.push(s));
    expect(got).to.deep.equal([
      { dir: join(base, "home"), readOnly: false },
      { dir: join(base, "home", "src"), readOnly: true },
    ]);
    expect(notes).to.deep.equal([`not sharing ${join(base, "gone")}: no such directory`]);
    expect(dockerShares("none", [])).to.deep.equal([]);
    expect(dockerShares("", [])).to.deep.equal([]);
  });

  it("refuses the guest's own directories and a -v that is not a directory", () => {
    expect(() => dockerShares("/", [])).to.throw(/cannot share the root directory/);
    expect(() => dockerShares("none", ["/usr/lib"])).to.throw(/\/usr is the guest's own/);
    expect(() => dockerShares("none", ["/var/lib/docker"])).to.throw(/guest's own/);
    expect(() => dockerShares("none", [join(base, "nope")])).to.throw(/is not a directory/);
  });
});

describe("desktop/context: the docker CLI context (Debian's docker CLI)", function () {
  let base: string;
  let env: NodeJS.ProcessEnv;
  before(function () {
    if (!existsSync("/usr/bin/docker")) {
      console.log("      (skipped: no /usr/bin/docker: run scripts/setup.sh)");
      this.skip();
    }
  });
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), "skiff-ctx-"));
    env = { ...process.env, DOCKER_CONFIG: join(base, "config") };
    delete env.DOCKER_HOST;
    delete env.DOCKER_CONTEXT;
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it("rejects names the CLI rejects", () => {
    expect(() => checkContextName("x")).to.throw(/two or more/);
    expect(() => checkContextName("default")).to.throw();
    expect(() => checkContextName("a/b")).to.throw();
    expect(checkContextName("skiff")).to.equal("skiff");
  });

  it("start's context points at docker.sock, is updated when the socket moves, and stop removes every context made for its instance", () => {
    const a = ensureStateDir(join(base, "a"));
    expect(ensureContext(a, "skiff-t", { env })).to.include(`unix://${a.dockerSock}`);
    expect(contextHost("skiff-t", { env })).to.equal(`unix://${a.dockerSock}`);
    const b = ensureStateDir(join(base, "b"));
    ensureContext(b, "skiff-t", { env });
    expect(contextHost("skiff-t", { env })).to.equal(`unix://${b.dockerSock}`);
    // a's stop leaves b's context alone (it points elsewhere now).
    expect(removeContexts(a, { env })).to.deep.equal([]);
    expect(contextHost("skiff-t", { env })).to.equal(`unix://${b.dockerSock}`);
    ensureContext(b, "skiff-u", { env });
    expect(removeContexts(b, { env })).to.deep.equal(["docker context skiff-t removed", "docker context skiff-u removed"]);
    expect(contextHost("skiff-t", { env })).to.equal(undefined);
    expect(contextHost("skiff-u", { env })).to.equal(undefined);
  });

  it("stop keeps the context when it is the CLI's current one", () => {
    const a = ensureStateDir(join(base, "a"));
    ensureContext(a, "skiff-t", { env });
    execFileSync("docker", ["context", "use", "skiff-t"], { env, stdio: "ignore" });
    const lines = removeContexts(a, { env });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^docker context skiff-t kept: it is the current context/);
    expect(contextHost("skiff-t", { env })).to.equal(`unix://${a.dockerSock}`);
  });
});
