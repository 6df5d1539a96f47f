/**
 * The house keeps its own plan (issue 14): the layer map of ARCHITECTURE.md, enforced. Every
 * import in src/ (type-only and dynamic ones included) must go to the importing folder itself,
 * to `common/`, or to a folder the map allows; no import cycle between files; no source file
 * (src/ TypeScript, native/ C) over 600 lines. The map here and the table in ARCHITECTURE.md
 * are the same; the last test checks that they agree.
 * The checks are also run on planted violations, so they can fail.
 */
import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { root } from "./support/cli.js";

const SRC = join(root, "src");
const MAX_LINES = 600;

/** Folder → folders it may import (besides itself and common/). `index` is src/index.ts. */
export const LAYERS: Record<string, string[]> = {
  common: [],
  native: [],
  ethernet: [],
  ipv4: [],
  ipv6: ["ipv4"],
  tcp: ["ipv4"],
  dhcp: ["ipv4"],
  dns: ["ipv4"],
  pcap: ["ethernet", "ipv4", "ipv6", "tcp", "dhcp", "dns"],
  link: ["pcap", "native"],
  stack: ["ethernet", "ipv4", "ipv6", "tcp", "dhcp", "dns"],
  "socket-translate": ["stack", "tcp", "native"],
  forward: ["stack", "socket-translate"],
  share: ["stack", "native"],
  vm: ["link"],
  network: ["ethernet", "ipv4", "tcp", "dhcp", "dns", "pcap", "link", "stack", "socket-translate", "forward", "share", "native"],
  desktop: ["network", "vm", "share", "link"],
  cli: ["*"],
  index: ["*"],
};

function walk(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "build" && name !== "node_modules") out.push(...walk(p, ext));
    } else if (name.endsWith(ext)) out.push(p);
  }
  return out;
}

/** The layer of a file under src/: its first folder, or "index" for src/index.ts. */
function layerOf(file: string): string {
  const rel = relative(SRC, file).split("/");
  return rel.length === 1 ? rel[0].replace(/\.ts$/, "") : rel[0];
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s+["']([^"']+)["']/g;

/** Relative imports of a file, resolved to .ts paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith(".")) continue;
    out.push(resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
  }
  return out;
}

/** Imports the map does not allow, as "from → to (why)". */
function badImports(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [file, deps] of graph) {
    const from = layerOf(file);
    const allowed = LAYERS[from] ?? [];
    for (const dep of deps) {
      const to = layerOf(dep);
      if (to === from || to === "common" || allowed.includes("*") || allowed.includes(to)) continue;
      bad.push(`${relative(SRC, file)} → ${relative(SRC, dep)} (${from} may not import ${to})`);
    }
  }
  return bad;
}

/** Import cycles between files, each as "a → b → a". */
function cyclesOf(graph: Map<string, string[]>): string[] {
  const cycles: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      const s = state.get(d);
      if (s === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(SRC, x)).join(" → "));
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

describe("architecture: the layer map, cycles and file sizes", () => {
  const files = walk(SRC, ".ts");
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it("every folder of src/ is in the layer map", () => {
    const folders = new Set(files.map(layerOf));
    expect([...folders].filter((f) => !(f in LAYERS)), "folders missing from LAYERS and ARCHITECTURE.md").to.deep.equal([]);
  });

  it("every import goes where the map allows", () => {
    expect(badImports(graph)).to.deep.equal([]);
  });

  it("no import cycle between files (type-only imports included)", () => {
    expect(cyclesOf(graph)).to.deep.equal([]);
  });

  it(`no source file over ${MAX_LINES} lines (src/*.ts, native/*.c)`, () => {
    const sizes = [...files, ...walk(join(root, "native"), ".c")].map((f) => [relative(root, f), readFileSync(f, "utf8").split("\n").length - 1] as const);
    const big = sizes.filter(([, n]) => n > MAX_LINES).map(([f, n]) => `${f}: ${n} lines`);
    expect(big).to.deep.equal([]);
  });

  it("the checks find planted violations: a layer import, a type-only cycle, a dynamic import", () => {
    const f = (p: string) => join(SRC, p);
    const planted = new Map([
      [f("stack/a.ts"), [f("link/x.ts")]],
      [f("stack/b.ts"), [f("stack/c.ts")]],
      [f("stack/c.ts"), [f("stack/b.ts")]],
      [f("link/x.ts"), []],
    ]);
    expect(badImports(planted)).to.deep.equal(["stack/a.ts → link/x.ts (stack may not import link)"]);
    expect(cyclesOf(planted)).to.deep.equal(["stack/b.ts → stack/c.ts → stack/b.ts"]);
    const tmp = mkdtempSync(join(tmpdir(), "skiff-arch-"));
    try {
      const file = join(tmp, "t.ts");
      writeFileSync(file, 'import type { A } from "./a.js";\nexport * from "./b.js";\nconst c = await import("./c.js");\n// import { d } from "./d.js";\n');
      expect(importsOf(file).map((p) => relative(tmp, p))).to.deep.equal(["a.ts", "b.ts", "c.ts"]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("buffer-layout only for fixed control-plane structures (vmnet handshake, pcap file header, BOOTP), never per-packet headers", () => {
    const users = files.filter((f) => /from\s+["']buffer-layout["']/.test(readFileSync(f, "utf8"))).map((f) => relative(SRC, f));
    expect(users).to.deep.equal(["common/layout.ts"]);
    const layoutUsers = [...graph].filter(([, deps]) => deps.includes(join(SRC, "common", "layout.ts"))).map(([f]) => relative(SRC, f)).sort();
    expect(layoutUsers).to.deep.equal(["dhcp/wire.ts", "link/vmnet.ts", "pcap/format.ts"]);
  });

  it("ARCHITECTURE.md's table lists the same map", () => {
    const md = readFileSync(join(root, "ARCHITECTURE.md"), "utf8");
    for (const [layer, allowed] of Object.entries(LAYERS)) {
      const row = md.split("\n").find((l) => l.startsWith(`| \`${layer}\``));
      expect(row, `ARCHITECTURE.md has a row for ${layer}`).to.not.equal(undefined);
      const cell = row!.split("|")[3].trim();
      const listed = cell === "everything" ? ["*"] : cell === "—" ? [] : [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      expect(listed.sort(), `ARCHITECTURE.md's row for ${layer}`).to.deep.equal([...allowed].sort());
    }
  });
});
