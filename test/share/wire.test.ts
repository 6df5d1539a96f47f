/** Byte-exact vectors and round trips for the 9P2000.L codec (src/share/wire.ts). */
import { expect } from "chai";
import fc from "fast-check";
import { WireError } from "../../src/common/wire-error.js";
import {
  P9, SCHEMAS, emitMessage, encodeMessage, messageLen, parseMessage, parseDirents, s, text, type P9Message, type FieldKind,
} from "../../src/share/wire.js";

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
function unhex(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));
}

/** Vectors written by hand from the message layouts (little-endian, strings length[2] + bytes). */
const VECTORS: [string, P9Message, string][] = [
  ["Tversion 8192 9P2000.L", { type: P9.Tversion, tag: 0xffff, msize: 8192, version: s("9P2000.L") },
    "15000000 64 ffff 00200000 0800 3950323030302e4c"],
  ["Rlerror ENOENT", { type: P9.Rlerror, tag: 1, ecode: 2 }, "0b000000 07 0100 02000000"],
  ["Tattach fid 0 nofid root aname x n_uname 0", { type: P9.Tattach, tag: 1, fid: 0, afid: 0xffffffff, uname: s("root"), aname: s("x"), n_uname: 0 },
    "1c000000 68 0100 00000000 ffffffff 0400 726f6f74 0100 78 00000000"],
  ["Rattach dir qid", { type: P9.Rattach, tag: 1, qid: { type: 0x80, version: 1, path: 0x0102030405060708n } },
    "14000000 69 0100 80 01000000 0807060504030201"],
  ["Twalk two names", { type: P9.Twalk, tag: 2, fid: 1, newfid: 2, wnames: [s("a"), s("bc")] },
    "18000000 6e 0200 01000000 02000000 0200 0100 61 0200 6263"],
  ["Rwalk one qid", { type: P9.Rwalk, tag: 2, wqids: [{ type: 0, version: 0, path: 5n }] },
    "16000000 6f 0200 0100 00 00000000 0500000000000000"],
  ["Tread offset above 4 GiB", { type: P9.Tread, tag: 3, fid: 4, offset: 0x100000000n + 7n, count: 4096 },
    "17000000 74 0300 04000000 0700000001000000 00100000"],
  ["Twrite 3 bytes", { type: P9.Twrite, tag: 4, fid: 4, offset: 0n, data: s("abc") },
    "1a000000 76 0400 04000000 0000000000000000 03000000 616263"],
  ["Tlcreate", { type: P9.Tlcreate, tag: 5, fid: 1, name: s("f"), flags: 0x8041, mode: 0o644, gid: 100 },
    "1a000000 0e 0500 01000000 0100 66 41800000 a4010000 64000000"],
  ["Tunlinkat removedir", { type: P9.Tunlinkat, tag: 6, dirfid: 1, name: s("d"), flags: 0x200 },
    "12000000 4c 0600 01000000 0100 64 00020000"],
  ["Tlock", { type: P9.Tlock, tag: 7, fid: 9, locktype: 1, flags: 1, start: 0n, length: 0n, proc_id: 42, client_id: s("vm") },
    "28000000 34 0700 09000000 01 01000000 0000000000000000 0000000000000000 2a000000 0200 766d"],
  ["Rlock blocked", { type: P9.Rlock, tag: 7, status: 1 }, "08000000 35 0700 01"],
  ["Tflush", { type: P9.Tflush, tag: 8, oldtag: 7 }, "09000000 6c 0800 0700"],
  ["Rclunk", { type: P9.Rclunk, tag: 9 }, "07000000 79 0900"],
  ["Tgetattr basic", { type: P9.Tgetattr, tag: 10, fid: 3, request_mask: 0x7ffn }, "13000000 18 0a00 03000000 ff07000000000000"],
  ["Txattrcreate", { type: P9.Txattrcreate, tag: 11, fid: 3, name: s("user.a"), attr_size: 2n, flags: 0 },
    "1f000000 20 0b00 03000000 0600 757365722e61 0200000000000000 00000000"],
];

describe("share/wire: the 9P2000.L codec (diod protocol.md, Plan 9 intro(5))", () => {
  for (const [name, msg, h] of VECTORS) {
    it(`emits and parses ${name} byte for byte`, () => {
      const bytes = encodeMessage(msg);
      expect(hex(bytes)).to.equal(hex(unhex(h)));
      const back = parseMessage(unhex(h));
      expect(back).not.to.be.instanceOf(WireError);
      expect(hex(encodeMessage(back as P9Message))).to.equal(hex(bytes));
    });
  }

  it("parses Tversion fields and keeps names as borrowed bytes", () => {
    const m = parseMessage(unhex(VECTORS[0][2])) as P9Message;
    expect(m.type).to.equal(P9.Tversion);
    expect(m.tag).to.equal(0xffff);
    expect(m.msize).to.equal(8192);
    expect(text(m.version)).to.equal("9P2000.L");
  });

  it("Rgetattr is 160 bytes (valid, qid, mode/uid/gid, 15 u64 fields)", () => {
    expect(messageLen({ type: P9.Rgetattr, tag: 0, qid: { type: 0, version: 0, path: 0n } })).to.equal(7 + 8 + 13 + 12 + 15 * 8);
  });

  it("refuses truncated, oversized, unknown and trailing input with a WireError", () => {
    const good = unhex(VECTORS[4][2]);
    expect((parseMessage(good.subarray(0, 5)) as WireError).reason).to.equal("truncated");
    expect((parseMessage(good.subarray(0, good.length - 1)) as WireError).reason).to.equal("size mismatch");
    const cut = good.slice(0, good.length - 1);
    cut[0] = cut.length;
    expect((parseMessage(cut) as WireError).reason).to.equal("truncated");
    const unknown = good.slice();
    unknown[4] = 99;
    expect((parseMessage(unknown) as WireError).reason).to.equal("unknown type 99");
    const extra = new Uint8Array(good.length + 1);
    extra.set(good);
    extra[0] = extra.length;
    expect((parseMessage(extra) as WireError).reason).to.equal("trailing bytes");
    const many = encodeMessage({ type: P9.Twalk, tag: 1, fid: 0, newfid: 1, wnames: Array.from({ length: 17 }, () => s("a")) });
    expect((parseMessage(many) as WireError).reason).to.equal("too many names");
  });

  it("emits at an offset over a dirty buffer without touching other bytes", () => {
    const msg = VECTORS[7][1];
    const out = new Uint8Array(messageLen(msg) + 10).fill(0xee);
    expect(emitMessage(msg, out, 5)).to.equal(messageLen(msg));
    expect(hex(out.subarray(5, 5 + messageLen(msg)))).to.equal(hex(unhex(VECTORS[7][2])));
    expect([...out.subarray(0, 5), ...out.subarray(5 + messageLen(msg))].every((x) => x === 0xee)).to.equal(true);
  });

  it("parses Rreaddir entries", () => {
    const d = unhex("80 00000000 0100000000000000 0a00000000000000 04 0100 2e" + "00 01000000 0200000000000000 ffffffffffffff7f 08 0200 6162");
    const ents = parseDirents(d);
    expect(ents).not.to.be.instanceOf(WireError);
    const e = ents as Exclude<typeof ents, WireError>;
    expect(e.map((x) => [x.qid.path, x.offset, x.type, text(x.name)])).to.deep.equal([[1n, 10n, 4, "."], [2n, 0x7fffffffffffffffn, 8, "ab"]]);
    expect(parseDirents(d.subarray(0, d.length - 1))).to.be.instanceOf(WireError);
  });

  it("round-trips every message type with random field values (property)", () => {
    const arb = (kind: FieldKind): fc.Arbitrary<unknown> => {
      const bytes = fc.uint8Array({ maxLength: 40 });
      const qid = fc.record({ type: fc.integer({ min: 0, max: 255 }), version: fc.integer({ min: 0, max: 0xffffffff }), path: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) });
      switch (kind) {
        case "u8": return fc.integer({ min: 0, max: 255 });
        case "u16": return fc.integer({ min: 0, max: 0xffff });
        case "u32": return fc.integer({ min: 0, max: 0xffffffff });
        case "u64": return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
        case "str": case "data": return bytes;
        case "qid": return qid;
        case "strs": return fc.array(bytes, { maxLength: 16 });
        case "qids": return fc.array(qid, { maxLength: 16 });
      }
    };
    for (const [type, schema] of SCHEMAS) {
      const rec: Record<string, fc.Arbitrary<unknown>> = { tag: fc.integer({ min: 0, max: 0xffff }) };
      for (const [n, k] of schema) rec[n] = arb(k);
      fc.assert(fc.property(fc.record(rec), (fields) => {
        const msg = { ...(fields as object), type } as P9Message;
        const bytes = encodeMessage(msg);
        const back = parseMessage(bytes);
        expect(back).not.to.be.instanceOf(WireError);
        expect(hex(encodeMessage(back as P9Message))).to.equal(hex(bytes));
      }), { numRuns: 30, seed: type });
    }
  });
});
