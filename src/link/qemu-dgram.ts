/**
 * QEMU `-netdev dgram` attachment over Unix datagram sockets (QEMU ≥ 7.2): one Ethernet frame
 * per datagram, both sides bound. QEMU is started with
 *
 *   -netdev dgram,id=n0,local.type=unix,local.path=QEMU_SIDE,remote.type=unix,remote.path=SKIFF_SIDE
 *
 * skiff binds SKIFF_SIDE and sends to QEMU_SIDE; QEMU sends from QEMU_SIDE, and datagrams from
 * any other sender are dropped (counted). Either side may start first: frames sent before
 * QEMU has bound its path are counted drops (`sendErrors`). No handshake, no peer in the
 * anchor projects supports this transport; the framing is QEMU's `net/dgram.c` behaviour of
 * one frame per `sendto`.
 */

import { UnixDgramChannel, type UnixDgramOptions } from "./unix-dgram.js";

export interface QemuDgramPaths {
  /** Path skiff binds (QEMU's `remote.path`). */
  skiffPath: string;
  /** Path QEMU binds (QEMU's `local.path`), where skiff sends. */
  qemuPath: string;
}

/** Bind `paths.skiffPath` and return the channel to the QEMU guest at `paths.qemuPath`. */
export function openQemuDgram(paths: QemuDgramPaths, opts: UnixDgramOptions = {}): UnixDgramChannel {
  return UnixDgramChannel.open(`qemu-dgram:${paths.skiffPath}`, { localPath: paths.skiffPath, peerPath: paths.qemuPath }, opts);
}

/** The value of QEMU's `-netdev` option that matches `openQemuDgram(paths)`. */
export function qemuDgramNetdev(id: string, paths: QemuDgramPaths): string {
  return `dgram,id=${id},local.type=unix,local.path=${paths.qemuPath},remote.type=unix,remote.path=${paths.skiffPath}`;
}
