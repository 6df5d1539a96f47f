/**
 * The shared-library needs of an ELF executable or library (System V gABI, "Dynamic Section"):
 * the `DT_NEEDED` entries of its `PT_DYNAMIC` segment, names read from `DT_STRTAB` (a virtual
 * address, mapped to a file offset through the `PT_LOAD` segment holding it), and the
 * `PT_INTERP` program interpreter. ELF64 little-endian only (the x86-64 guest).
 *
 * The docker image builder uses it to check that every library a binary of the guest needs is
 * in the guest (src/desktop/image.ts). Bad or truncated input gives `undefined`, never a throw.
 */

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

export interface ElfDeps {
  /** Sonames of DT_NEEDED, in order. */
  needed: string[];
  /** PT_INTERP (e.g. /lib64/ld-linux-x86-64.so.2); absent for static binaries and libraries. */
  interp?: string;
}

/** True when `b` starts with the ELF magic. */
export function isElf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

function cstring(b: Uint8Array, off: number): string | undefined {
  if (off < 0 || off >= b.length) return undefined;
  const end = b.indexOf(0, off);
  if (end < 0) return undefined;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString("latin1");
}

/** The dependencies of an ELF64 LE file, or undefined when it is not one or is malformed. */
export function elfDeps(b: Uint8Array): ElfDeps | undefined {
  if (!isElf(b) || b.length < 64 || b[4] !== 2 /* ELFCLASS64 */ || b[5] !== 1 /* little-endian */) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  if (phentsize < 56 || phoff + phnum * phentsize > b.length) return undefined;
  const loads: Array<{ vaddr: number; off: number; size: number }> = [];
  let dyn: { off: number; size: number } | undefined;
  let interp: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = v.getUint32(p, true);
    const off = Number(v.getBigUint64(p + 0x08, true));
    const vaddr = Number(v.getBigUint64(p + 0x10, true));
    const size = Number(v.getBigUint64(p + 0x20, true));
    if (type === PT_LOAD) loads.push({ vaddr, off, size });
    else if (type === PT_DYNAMIC) dyn = { off, size };
    else if (type === PT_INTERP) interp = cstring(b, off);
  }
  if (!dyn) return { needed: [], interp };
  if (dyn.off + dyn.size > b.length) return undefined;
  const neededOffs: bigint[] = [];
  let strtab: number | undefined;
  for (let p = dyn.off; p + 16 <= dyn.off + dyn.size; p += 16) {
    const tag = v.getBigInt64(p, true);
    const val = v.getBigUint64(p + 8, true);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededOffs.push(val);
    else if (tag === DT_STRTAB) strtab = Number(val);
  }
  if (neededOffs.length === 0) return { needed: [], interp };
  if (strtab === undefined) return undefined;
  const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.size);
  if (!seg) return undefined;
  const base = strtab - seg.vaddr + seg.off;
  const needed: string[] = [];
  for (const o of neededOffs) {
    const s = cstring(b, base + Number(o));
    if (s === undefined) return undefined;
    needed.push(s);
  }
  return { needed, interp };
}
