/**
 * Test support: a 9P client over an in-memory transport, talking to a real `P9Connection`
 * (src/share/connection.ts) on temporary directories. Requests are encoded with the codec,
 * replies parsed with it; `call` resolves with the reply of its tag.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { P9Connection, type P9Transport } from "../../src/share/connection.js";
import { ShareRegistry } from "../../src/share/registry.js";
import type { SessionOptions } from "../../src/share/session.js";
import { P9, encodeMessage, messageSize, parseMessage, s, type P9Message } from "../../src/share/wire.js";
import { isWireError } from "../../src/common/wire-error.js";

export class MemoryTransport implements P9Transport {
  inbound: Uint8Array[] = [];
  received: Uint8Array[] = [];
  closed = false;
  /** Bytes the "send buffer" takes per write (Infinity: all). */
  room = Infinity;
  read(max: number): Uint8Array {
    const head = this.inbound[0];
    if (head === undefined) return new Uint8Array(0);
    if (head.length <= max) return this.inbound.shift() as Uint8Array;
    this.inbound[0] = head.subarray(max);
    return head.subarray(0, max);
  }
  write(data: Uint8Array): number {
    const n = Math.min(data.length, this.room);
    if (this.room !== Infinity) this.room -= n;
    if (n > 0) this.received.push(data.slice(0, n));
    return n;
  }
  close(): void {
    this.closed = true;
  }
}

export function tempDir(prefix = "skiff-share-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export class TestClient {
  readonly transport = new MemoryTransport();
  readonly conn: P9Connection;
  private buf = new Uint8Array(0);
  private nextTag = 1;
  private readonly waiting = new Map<number, (m: P9Message) => void>();
  readonly replies: P9Message[] = [];

  constructor(
    readonly registry: ShareRegistry,
    opts: SessionOptions = {},
  ) {
    this.conn = new P9Connection(registry, this.transport, opts);
    const write = this.transport.write.bind(this.transport);
    this.transport.write = (d) => {
      const n = write(d);
      this.onBytes(d.subarray(0, n));
      return n;
    };
  }

  /** Send raw bytes (maybe malformed) and pump. */
  sendRaw(bytes: Uint8Array): void {
    this.transport.inbound.push(bytes);
    this.conn.pump();
  }

  /** Send a request; resolves with its reply. */
  call(msg: Omit<P9Message, "tag"> & { tag?: number }): Promise<P9Message> {
    const tag = msg.tag ?? this.nextTag++ % 0xfffe;
    const p = new Promise<P9Message>((resolve) => this.waiting.set(tag, resolve));
    this.sendRaw(encodeMessage({ ...msg, tag } as P9Message));
    return p;
  }

  async version(msize = 65536): Promise<P9Message> {
    return this.call({ type: P9.Tversion, tag: 0xffff, msize, version: s("9P2000.L") });
  }

  async attach(aname: string, fid = 0, uid = 0): Promise<P9Message> {
    return this.call({ type: P9.Tattach, fid, afid: 0xffffffff, uname: s("root"), aname: s(aname), n_uname: uid });
  }

  /** Walk names from `fid` to `newfid`. */
  walk(fid: number, newfid: number, ...names: (string | Uint8Array)[]): Promise<P9Message> {
    return this.call({ type: P9.Twalk, fid, newfid, wnames: names.map((n) => (typeof n === "string" ? s(n) : n)) });
  }

  private onBytes(d: Uint8Array): void {
    const all = new Uint8Array(this.buf.length + d.length);
    all.set(this.buf);
    all.set(d, this.buf.length);
    let o = 0;
    while (all.length - o >= 4) {
      const size = messageSize(all, o);
      if (all.length - o < size) break;
      const m = parseMessage(all.slice(o, o + size));
      o += size;
      if (isWireError(m)) throw new Error(`bad reply: ${m}`);
      this.replies.push(m);
      const w = this.waiting.get(m.tag);
      this.waiting.delete(m.tag);
      w?.(m);
    }
    this.buf = all.slice(o);
  }
}

/** The errno of an Rlerror (or -1 when the reply is not one). */
export function errnoOf(m: P9Message): number {
  return m.type === P9.Rlerror ? (m.ecode as number) : -1;
}

/** A registry with one share `name` at `dir`. */
export function registryWith(name: string, dir: string, readOnly = false): ShareRegistry {
  const r = new ShareRegistry();
  r.add({ name, path: dir, readOnly });
  return r;
}
