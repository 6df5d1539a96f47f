/**
 * vfkit / Apple Virtualization attachment (`VZFileHandleNetworkDeviceAttachment`; also libkrun):
 * one Ethernet frame per Unix datagram. skiff binds a path and gives it to vfkit; the peer's
 * path is learned from the sender address of the first datagram received, and every frame goes
 * there. vfkit's original protocol opened with a 4-byte "VFKT" datagram just so the server
 * could learn that address; a first datagram of exactly "VFKT" is consumed, not delivered (newer
 * vfkit sends frames straight away, as gvproxy's `peekAddress` accepts).
 * Until the peer has sent something, frames toward it are counted drops (`noPeerDrops`).
 */

import { UnixDgramChannel, type UnixDgramOptions } from "./unix-dgram.js";

/** Bind `path` and return the channel; the vfkit side is learned from its first datagram. */
export function openVfkit(path: string, opts: UnixDgramOptions = {}): UnixDgramChannel {
  return UnixDgramChannel.open(`vfkit:${path}`, { localPath: path, vfkitHandshake: true }, opts);
}
