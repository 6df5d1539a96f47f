/**
 * Seeded fuzz of the 9P server over an in-memory connection: random messages and mutations of
 * valid ones. The server must stay alive (no exception escapes), answer each request with a
 * well-formed reply or close the connection, keep its memory bounded (queued replies, fids,
 * requests in flight), and never touch anything outside the share.
 */
import { expect } from "chai";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { P9, SCHEMAS, encodeMessage, s, type FieldKind, type P9Message } from "../../src/share/wire.js";
import { ShareRegistry } from "../../src/share/registry.js";
import { TestClient, tempDir } from "./client.js";

/** xorshift32: deterministic per seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const NAMES = ["a", "b", "dir", "..", ".", "f", "x/y", "", "link", "user.k"];
const T_TYPES = [...SCHEMAS.keys()].filter((t) => t % 2 === 0);

function randomMessage(r: () => number): P9Message {
  const int = (n: number): number => Math.floor(r() * n);
  const type = T_TYPES[int(T_TYPES.length)];
  const msg: P9Message = { type, tag: int(64) };
  for (const [name, kind] of SCHEMAS.get(type) ?? []) msg[name] = field(kind as FieldKind, name, r, int);
  return msg;
}

function field(kind: FieldKind, name: string, r: () => number, int: (n: number) => number): P9Message[string] {
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  switch (kind) {
    case "u8": return int(4);
    case "u16": return int(64);
    case "u32":
      if (name.includes("fid")) return int(10);
      if (name === "msize") return pick([0, 100, 4096, 8192, 65536, 0xffffffff]);
      return pick([0, 1, 2, 0o644, 0o40755, 0o10644, 0o20666, 0x200, 0o1000, int(0x100000000)]);
    case "u64": return pick([0n, 1n, 4096n, 1n << 32n, (1n << 63n) + 5n, BigInt(int(1 << 20))]);
    case "str": return name === "version" ? s(pick(["9P2000.L", "9P2000", "x"])) : s(pick(NAMES));
    case "strs": return Array.from({ length: int(5) }, () => s(pick(NAMES)));
    case "qid": return { type: int(256), version: int(1000), path: BigInt(int(1000)) };
    case "qids": return [];
    case "data": return new Uint8Array(int(3000)).fill(0x41);
  }
}

function mutate(bytes: Uint8Array, r: () => number): Uint8Array {
  const b = Uint8Array.from(bytes);
  const int = (n: number): number => Math.floor(r() * n);
  switch (int(5)) {
    case 0: for (let i = 0; i < 1 + int(4); i++) b[int(b.length)] = int(256); return b; // flip bytes (size field included)
    case 1: { const cut = b.subarray(0, 7 + int(Math.max(1, b.length - 7))); const out = Uint8Array.from(cut); new DataView(out.buffer).setUint32(0, out.length, true); return out; }
    case 2: { const out = new Uint8Array(b.length + 1 + int(20)); out.set(b); new DataView(out.buffer).setUint32(0, out.length, true); return out; }
    case 3: b[4] = int(256); return b; // another type
    default: { const out = new Uint8Array(7 + int(64)); for (let i = 0; i < out.length; i++) out[i] = int(256); new DataView(out.buffer).setUint32(0, out.length, true); return out; }
  }
}

async function settle(c: TestClient): Promise<void> {
  for (let i = 0; i < 200 && c.conn.session.inFlight > 0; i++) await new Promise((res) => setImmediate(res));
}

describe("share/fuzz: random and mutated 9P messages (seeded)", () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 1,500 messages — replies well-formed or the connection closed, memory bounded, nothing outside touched`, async function () {
      this.timeout(60_000);
      const top = tempDir("skiff-fuzz-");
      const root = join(top, "share");
      mkdirSync(join(root, "dir"), { recursive: true });
      writeFileSync(join(root, "f"), "file");
      mkdirSync(join(top, "outside"));
      writeFileSync(join(top, "outside", "secret"), "S");
      const registry = new ShareRegistry();
      registry.add({ name: "s", path: root });
      const r = rng(seed);
      let c = new TestClient(registry, { maxFids: 16, maxInFlight: 4, maxMsize: 16384 });
      const start = async (): Promise<void> => {
        await c.version(16384);
        await c.attach("s");
      };
      await start();
      let closes = 0;
      let maxQueued = 0;
      let replies = 0;
      for (let i = 0; i < 1500; i++) {
        const valid = encodeMessage(randomMessage(r));
        const bytes = r() < 0.5 ? valid : mutate(valid, r);
        c.sendRaw(bytes); // throws if the server throws or a reply fails to parse (TestClient)
        maxQueued = Math.max(maxQueued, c.conn.queuedBytes);
        expect(c.conn.session.fids.size).to.be.at.most(16);
        expect(c.conn.session.inFlight).to.be.at.most(4);
        if (i % 50 === 0) await settle(c);
        if (c.transport.closed) {
          closes++;
          replies += c.replies.length;
          c.conn.close();
          c = new TestClient(registry, { maxFids: 16, maxInFlight: 4, maxMsize: 16384 });
          await start();
        }
      }
      await settle(c);
      replies += c.replies.length;
      // liveness: the server still serves (on a new connection: a mutated size field may have left
      // this one waiting for the rest of a message that will never come, which is the client's doing)
      c.conn.close();
      c = new TestClient(registry, { maxFids: 16, maxInFlight: 4, maxMsize: 16384 });
      await c.version(16384);
      expect((await c.attach("s")).type).to.equal(P9.Rattach);
      expect((await c.walk(0, 1, "f")).type).to.equal(P9.Rwalk);
      expect(replies).to.be.greaterThan(500);
      expect(maxQueued).to.be.at.most(64 * 1024);
      expect(readFileSync(join(top, "outside", "secret"), "utf8")).to.equal("S");
      expect(readdirSync(join(top, "outside"))).to.deep.equal(["secret"]);
      console.log(`      seed ${seed}: ${replies} replies, ${closes} connections closed by the server`);
      c.conn.close();
      registry.close();
      rmSync(top, { recursive: true, force: true });
    });
  }
});
