/**
 * skiff's native addon (native/*.c): TAP devices, host TCP/UDP sockets in one epoll set, ICMP
 * sockets, Unix datagram sockets, the open-file limit, descriptor passing, file operations
 * beneath a directory (the 9P share server) and inotify (the shares' file events). This file declares its functions and
 * finds and loads the compiled module, the usual prebuilt-or-build way (node-gyp-build's order):
 * the module built from source if there is one (`native/build/Release/skiff.node`: by `npm run
 * build:native`, or by the package's install script when no prebuilt matched), else a prebuilt
 * binary for this platform and architecture (`prebuilds/<platform>-<arch>/skiff.node`, shipped
 * in the npm package). Both are looked for from this module's directory up to the package root,
 * so the same code works from `src/` (tsx) and from the bundled `dist/` file.
 *
 * Only the parts that need it load it (`loadAddon(purpose)`), so everything else in the package
 * works without it; where it is needed and missing, one error says what needs it and how to
 * build it.
 */

import { createRequire } from "node:module";
import { constants } from "node:os";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The addon's functions (see the comments in native/tap.c). */
export interface TapAddon {
  /** Create/attach TAP `name` (inside the netns at `netnsPath`, if given); throws on failure. */
  openTap(name: string, netnsPath: string | null, flags?: { vnetHdr?: boolean }): { fd: number; name: string };
  /**
   * Poll `fd`; per wakeup read up to min(64, slots) frames, frame i into `ring` at
   * `i * slotSize` with its length in `lengths[i]`, then call `callback(count)` once.
   * `callback(-errno)` reports a read error, after which polling has stopped.
   */
  startRead(fd: number, ring: ArrayBuffer, slotSize: number, lengths: Uint32Array, callback: (count: number) => void): void;
  stopRead(fd: number): void;
  /** Bytes written, or -errno (-EAGAIN when the device cannot take it now). Never throws for I/O. */
  write(fd: number, frame: Uint8Array): number;
  /** One frame written from two pieces (writev: e.g. a virtio-net header and the frame); bytes or -errno. */
  write2(fd: number, head: Uint8Array, body: Uint8Array): number;
  /** Stop polling and close; 0 or -errno. */
  close(fd: number): number;
}

/**
 * The addon's ICMP socket functions (same module; kept apart from `TapAddon` so stand-ins for
 * the TAP functions need not implement them). ICMP sockets are read with `startRead` and
 * closed with `close` like a TAP fd.
 */
export interface IcmpSocketAddon {
  /**
   * A non-blocking IPv4 ICMP socket: `raw` false gives an unprivileged ping socket (SOCK_DGRAM;
   * needs `net.ipv4.ping_group_range` to include our group, else -EACCES), true a raw socket
   * (SOCK_RAW; needs CAP_NET_RAW, else -EPERM). With `ipv6` an ICMPv6 socket (the same rules; a
   * raw one reads echo replies only, without the IPv6 header). Returns the fd or -errno; never
   * throws for I/O.
   */
  icmpSocket(raw: boolean, ipv6?: boolean): number;
  /** sendto() one datagram to `ipv4` (uint32, port 0); bytes sent or -errno. Never throws for I/O. */
  sendTo(fd: number, bytes: Uint8Array, ipv4: number): number;
  /** sendto() one datagram to the IPv6 address `ipv6` (16 bytes, port 0); bytes sent or -errno. */
  sendTo6(fd: number, bytes: Uint8Array, ipv6: Uint8Array): number;
}

/**
 * The addon's Unix datagram socket functions (QEMU `-netdev dgram`, vfkit). The socket is read
 * with `startRead`, written with `write` once connected, and closed with `close`.
 */
export interface UnixDgramAddon {
  /**
   * A non-blocking, close-on-exec AF_UNIX SOCK_DGRAM socket bound to `localPath`, with SO_SNDBUF
   * / SO_RCVBUF set to the given sizes when > 0. Returns the fd or -errno (EADDRINUSE when the
   * path exists); throws only for bad arguments (a path of 0 or more than 107 bytes).
   */
  unixDgramOpen(localPath: string, sndbuf: number, rcvbuf: number): number;
  /**
   * connect() the socket to `peerPath`: `write` then sends there, only that peer's datagrams
   * are received, and writability follows the peer's receive queue. 0 or -errno (ENOENT,
   * ECONNREFUSED: nobody is bound there).
   */
  unixDgramConnect(fd: number, peerPath: string): number;
  /**
   * Poll the unconnected socket until a datagram from `peerPath` (null: from any sender bound to
   * a pathname) is queued; connect to that sender and call `callback(path)` (polling has then
   * stopped; the datagram is still queued). Every other datagram is discarded and reported as
   * `callback(0)`; a read error as `callback(-errno)`, after which polling stops. `stopRead` and
   * `close` end the wait.
   */
  unixDgramAwaitPeer(fd: number, peerPath: string | null, callback: (event: string | number) => void): void;
  /**
   * `fd` must be polled (`startRead` / `unixDgramAwaitPeer`): call `callback(0)` once, as soon
   * as it is writable (while armed, further calls change nothing). Throws when `fd` is not polled.
   */
  waitWritable(fd: number, callback: (zero: number) => void): void;
}

/** TUNSETOFFLOAD flags (linux/if_tun.h): offloads the reader of a vnetHdr TAP accepts. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;

/** The addon's TAP offload controls (for a device opened with `vnetHdr`). */
export interface TapOffloadAddon {
  /** ioctl(TUNSETOFFLOAD, flags) with a bitmask of the `TUN_F_*` constants; 0 or -errno. */
  tapSetOffload(fd: number, flags: number): number;
  /** ioctl(TUNSETVNETHDRSZ, size): the virtio-net header length (10 or 12); 0 or -errno. */
  tapSetVnetHdrSize(fd: number, size: number): number;
}

/**
 * The addon's host TCP sockets (native/streams.c): one epoll set per process, read in batches —
 * every ready socket of a loop iteration reaches JS in one call. Used by socket translation
 * (`src/socket-translate/native-stream.ts`).
 */
export interface HostSocketAddon {
  /**
   * Once per process: `ring` receives the bytes read, `records` (6 int32 per event: fd, kind,
   * a, b, c, d) the events of one wakeup, then `callback(count)` runs. Throws when called twice.
   */
  streamsInit(ring: ArrayBuffer, records: Int32Array, callback: (count: number) => void): void;
  /** A non-blocking TCP socket connecting to ipv4:port: its fd (a connected record follows) or -errno. */
  tcpConnect(ipv4: number, port: number): number;
  /** Wait for bytes to read and/or (once) room to write; 0 or -errno. */
  streamSet(fd: number, read: boolean, write: boolean): number;
  /** send() without blocking: bytes taken (maybe fewer) or -errno (-EAGAIN: none). */
  streamWrite(fd: number, bytes: Uint8Array): number;
  /** shutdown(SHUT_WR); 0 or -errno. */
  streamShutdown(fd: number): number;
  /** Close (after SO_LINGER 0 when `reset`: the peer gets an RST); 0 or -errno. UDP sockets too. */
  streamClose(fd: number, reset: boolean): number;
  /** A UDP socket bound to 0.0.0.0:0, read through the set (datagram records): its fd or -errno. */
  udpOpen(): number;
  /** sendto() one datagram without blocking: bytes sent or -errno. */
  udpSendTo(fd: number, bytes: Uint8Array, ipv4: number, port: number): number;
  /**
   * `bytes` as datagrams of `size` bytes each (the last may be shorter) in one sendmsg() with
   * UDP_SEGMENT (UDP GSO, Linux 4.18+): bytes sent or -errno (-ENOPROTOOPT: no UDP GSO).
   */
  udpSendSegments(fd: number, bytes: Uint8Array, ipv4: number, port: number, size: number): number;
}

/** The process's open-file limit (native/nofile.c; getrlimit/setrlimit RLIMIT_NOFILE). */
export interface FileLimitAddon {
  /** [soft, hard] (RLIM_INFINITY as Infinity), or -errno. */
  getNofile(): [number, number] | number;
  /** Set both limits (Infinity: RLIM_INFINITY); 0 or -errno (-EPERM above the hard limit). */
  setNofile(soft: number, hard: number): number;
}

/**
 * The addon's file operations beneath a share's root (native/fs.c), for the 9P server in
 * `src/share/`. Descriptors are O_PATH handles made from a directory descriptor and one checked
 * name component (never following a symlink); data I/O goes through Node's fs on the fd from
 * `fsReopen`/`fsCreate`. Every function returns -errno on failure (never throws for I/O); names
 * are bytes (1..255, no '/', NUL, "." or ".."; else -EINVAL).
 */
export interface FsAddon {
  /** O_PATH|O_DIRECTORY descriptor of a share's root (path as bytes). */
  fsOpenRoot(path: Uint8Array): number;
  /** A second descriptor for the same open file (F_DUPFD_CLOEXEC). */
  fsDup(fd: number): number;
  /** Use openat2 (true, the default where the kernel has it) or the openat(O_NOFOLLOW) fallback; returns the previous setting. */
  fsUseOpenat2(on: boolean): boolean;
  /** O_PATH|O_NOFOLLOW descriptor of `name` in `dirfd` (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS). */
  fsWalk(dirfd: number, name: Uint8Array): number;
  /** O_PATH descriptor of the parent of `fd`, refusing (-ENOENT) when `rootfd` is not an ancestor; `fd` itself (dup) at the root. */
  fsParent(fd: number, rootfd: number): number;
  /** Real open (open(2) flags) of the regular file or directory held by `fd`, via /proc/self/fd; -ELOOP for a symlink, -EOPNOTSUPP for special files. */
  fsReopen(fd: number, flags: number): number;
  /** Create and open `name` in `dirfd` (O_CREAT|O_EXCL|O_NOFOLLOW added). */
  fsCreate(dirfd: number, name: Uint8Array, flags: number, mode: number): number;
  /** statx into `out`: dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, a/m/c/btime (s, ns). */
  fsStat(fd: number, out: BigUint64Array): number;
  /** fstatfs into `out`: type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen. */
  fsStatfs(fd: number, out: BigUint64Array): number;
  fsMkdir(dirfd: number, name: Uint8Array, mode: number): number;
  fsSymlink(target: Uint8Array, dirfd: number, name: Uint8Array): number;
  /** FIFOs, sockets and regular files only (-EPERM for device nodes). */
  fsMknod(dirfd: number, name: Uint8Array, mode: number, rdev: number): number;
  /** Hard link to the regular file held by `fd`. */
  fsLink(fd: number, dirfd: number, name: Uint8Array): number;
  fsRename(odirfd: number, oname: Uint8Array, ndirfd: number, nname: Uint8Array): number;
  /** unlinkat; `flags` may hold AT_REMOVEDIR (0x200). */
  fsUnlink(dirfd: number, name: Uint8Array, flags: number): number;
  /** Target bytes of the symlink held by `fd` into `out`; its length. */
  fsReadlink(fd: number, out: Uint8Array): number;
  fsChmod(fd: number, mode: number): number;
  fsTruncate(fd: number, size: number): number;
  /** utimensat; nanoseconds may be UTIME_NOW ((1 << 30) - 1) or UTIME_OMIT ((1 << 30) - 2). */
  fsUtimens(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): number;
  /** Value size (into `out` when given). */
  fsGetXattr(fd: number, name: Uint8Array, out: Uint8Array | null): number;
  /** NUL-separated names size (into `out` when given). */
  fsListXattr(fd: number, out: Uint8Array | null): number;
  fsSetXattr(fd: number, name: Uint8Array, value: Uint8Array, flags: number): number;
  fsRemoveXattr(fd: number, name: Uint8Array): number;
  /** Rreaddir entries from the getdents64 cookie `offset` into `out`; bytes written (0 at the end). */
  fsReaddir(fd: number, offset: bigint, out: Uint8Array): number;
  /** OFD lock (type 0 read, 1 write, 2 unlock): 0 done, 1 blocked; `get` tests and fills `out` (type, start, length). */
  fsLock(fd: number, type: number, start: bigint, length: bigint, get: boolean, out: BigUint64Array): number;
}

/**
 * The addon's inotify functions (native/watch.c), for the share server's host-side file events.
 * The inotify descriptor is read with `startRead` (whole `struct inotify_event` records per read)
 * and closed with `close`.
 */
export interface WatchAddon {
  /** inotify_init1(IN_NONBLOCK | IN_CLOEXEC): the descriptor or -errno. */
  watchInit(): number;
  /** Watch the directory held by the O_PATH descriptor `dirfd` (IN_ONLYDIR added): the watch descriptor or -errno. */
  watchAdd(ifd: number, dirfd: number, mask: number): number;
  /** inotify_rm_watch: 0 or -errno. */
  watchRemove(ifd: number, wd: number): number;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** The name of a positive errno value (the addon returns -errno): "ECONNREFUSED", else "errno N". */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** The compiled module's file name. */
export const ADDON_FILE = "skiff.node";
/** Where a prebuilt binary for this platform is looked for (prebuildify's layout). */
export const PREBUILT_PATH = join("prebuilds", `${process.platform}-${process.arch}`, ADDON_FILE);
/** Where `node-gyp` puts the module built from source. */
export const BUILT_PATH = join("native", "build", "Release", ADDON_FILE);

/** Everything the compiled addon exports. */
export type SkiffAddon = TapAddon & IcmpSocketAddon & UnixDgramAddon & TapOffloadAddon & HostSocketAddon & FileLimitAddon & FsAddon & WatchAddon;

let cached: SkiffAddon | undefined;

/**
 * Find the addon from `startDir` up to the package root: the one built from source first (a
 * fresh `npm run build:native` wins), then a prebuilt binary for this platform. Undefined when
 * neither exists.
 */
export function findAddon(startDir: string): string | undefined {
  for (let dir = startDir; ; dir = dirname(dir)) {
    for (const rel of [BUILT_PATH, PREBUILT_PATH]) {
      const candidate = join(dir, rel);
      if (existsSync(candidate)) return candidate;
    }
    if (existsSync(join(dir, "package.json")) || dirname(dir) === dir) return undefined;
  }
}

/** The addon is needed for `purpose` and was not found (or does not load on this platform). */
export class AddonMissingError extends Error {
  constructor(purpose: string, detail: string) {
    super(
      `skiff's native addon (${ADDON_FILE}) is needed for ${purpose}, ${detail}. ` +
        `Build it with \`npm rebuild skiff\` (in skiff's own checkout: \`npm run build:native\`); that needs python3, make and a C compiler.`,
    );
    this.name = "AddonMissingError";
  }
}

/** Load the addon once; throws `AddonMissingError` naming `purpose` when there is none for this platform. */
export function loadAddon(purpose: string): SkiffAddon {
  if (cached !== undefined) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const path = findAddon(here);
  if (path === undefined) {
    throw new AddonMissingError(purpose, `and none was found for ${process.platform}-${process.arch} (neither ${BUILT_PATH} nor ${PREBUILT_PATH} above ${here})`);
  }
  try {
    cached = createRequire(import.meta.url)(path) as SkiffAddon;
  } catch (e) {
    throw new AddonMissingError(purpose, `and ${path} does not load: ${(e as Error).message}`);
  }
  return cached;
}
