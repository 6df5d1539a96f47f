/**
 * A FrameChannel on a Linux TAP device (IFF_TAP | IFF_NO_PI: whole Ethernet frames, no
 * packet-info header), through the small N-API addon in `native/tap.c`. The device can be
 * created inside another network namespace (`netns: "/run/netns/NAME"` or
 * `"/proc/PID/ns/net"`); only the device lives there, the process stays where it is.
 *
 * Receive: the addon polls the non-blocking fd on the event loop (uv_poll, no thread-pool
 * read) and reads up to 64 frames per wakeup into fixed slots of one reused ring, then calls
 * us once per batch; each frame is delivered as a view of its slot (borrowed, no copy). A
 * frame longer than `mtu + 18` is counted in `rxDrops`. A read error closes the channel with
 * that error.
 *
 * Send: a synchronous `write()` on the non-blocking fd, so an accepted frame is already in the
 * kernel when `send` returns. A TAP write only fails with EAGAIN when the device's socket send
 * buffer is exhausted (sk_sndbuf, INT_MAX unless TUNSETSNDBUF lowers it), which is rare, so
 * instead of a second (writable) poll the channel copies the frame into a bounded queue and
 * retries the queue from a 1 ms timer until it is empty: simple, in order, and correct.
 * `send` returns false once `highWaterFrames` are queued and `drain` fires when the queue
 * empties; above `limitFrames` frames are dropped and counted in `txDrops`. Other write
 * errors (EINVAL for a runt, EIO, …) drop that one frame and count it.
 *
 * Offload mode (`offload: true`): the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD
 * (TUN_F_CSUM | TUN_F_TSO4), like a virtio-net NIC (see ./vnet.ts). The guest's kernel then
 * hands us TCP super-segments of up to 64 KiB with partial checksums (delivered with
 * RX_CSUM_VERIFIED), and we may send it partial checksums and super-segments that its stack
 * takes whole (GRO-like): far fewer frames, no checksum work on either side. Frames carry the
 * 10-byte header on the fd; the channel adds and strips it. Without offload the device works
 * exactly as before.
 */

import { constants } from "node:os";
import { BaseFrameChannel, GSO_MAX_FRAME, maxFrameLen, RX_CSUM_VERIFIED, type ChannelOffloads } from "../common/frame-channel.js";
import { errnoName, loadAddon, TUN_F_CSUM, TUN_F_TSO4, type TapAddon } from "../native/addon.js";
import { emitVnetHeader, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_HDR_LEN, vnetFlags, vnetGsoType } from "./vnet.js";

const EAGAIN = constants.errno.EAGAIN;
/** Frames the addon reads per wakeup (its own cap is also 64). */
const BATCH = 64;
const RETRY_MS = 1;

export interface TapChannelOptions {
  /** IP MTU of the link (default 1500); should match the interface's MTU. */
  mtu?: number;
  /** Queued frames (after EAGAIN) at which `send` returns false. Default 64. */
  highWaterFrames?: number;
  /** Queued frames beyond which frames are dropped. Default 256. */
  limitFrames?: number;
  /**
   * The fd was opened with IFF_VNET_HDR and TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4) succeeded:
   * frames carry a virtio-net header and the channel advertises checksum and segmentation
   * offload. (`TapChannel.open({ offload: true })` sets this up.)
   */
  vnetOffload?: boolean;
}

export interface TapOpenOptions extends TapChannelOptions {
  /** Interface name (at most 15 bytes); a pattern such as "tap%d" lets the kernel choose. */
  name: string;
  /** Network namespace to create the device in: "/run/netns/NAME" or "/proc/PID/ns/net". */
  netns?: string;
  /** Checksum and TCP segmentation offload through a virtio-net header (see the file comment). */
  offload?: boolean;
}

export class TapChannel extends BaseFrameChannel {
  /** Open (creating if needed) a TAP device and wrap it. Throws on a bad name or namespace. */
  static open(opts: TapOpenOptions): TapChannel {
    const addon = loadAddon("TAP devices");
    const { fd, name } = addon.openTap(opts.name, opts.netns ?? null, { vnetHdr: opts.offload === true });
    try {
      if (opts.offload === true) {
        const r = addon.tapSetOffload(fd, TUN_F_CSUM | TUN_F_TSO4);
        if (r < 0) throw new Error(`${name}: TUNSETOFFLOAD failed: ${errnoName(-r)}`);
      }
      return new TapChannel(addon, fd, name, { ...opts, vnetOffload: opts.offload === true });
    } catch (err) {
      addon.close(fd);
      throw err;
    }
  }

  private readonly slot: number;
  private readonly maxFrame: number;
  private readonly ring: Uint8Array;
  private readonly lengths = new Uint32Array(BATCH);
  private readonly highWater: number;
  private readonly limit: number;
  /** Frames waiting after EAGAIN (owned copies), oldest at `queueHead`. */
  private queue: Uint8Array[] = [];
  private queueHead = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private needDrain = false;
  /** Bytes of virtio-net header before each frame on the fd (0 or VNET_HDR_LEN). */
  private readonly hdrLen: number;
  /** The virtio-net header of the frame being written, in offload mode. */
  private readonly txHdr: Uint8Array | undefined;
  readonly offloads: ChannelOffloads | undefined;
  /** Received super-segments (GSO frames) and partial-checksum frames, in offload mode. */
  readonly offloadStats = { rxSuperSegments: 0, rxPartialChecksum: 0, txSuperSegments: 0, txPartialChecksum: 0, rxBadHeader: 0 };

  /** Wrap an open TAP fd (the channel owns it from now on). `addon` is injectable for tests. */
  constructor(
    private readonly addon: TapAddon,
    private readonly fd: number,
    /** The interface name the kernel gave the device. */
    readonly ifname: string,
    opts: TapChannelOptions = {},
  ) {
    super(`tap:${ifname}`, opts.mtu ?? 1500);
    this.maxFrame = maxFrameLen(this.mtu);
    this.hdrLen = opts.vnetOffload === true ? VNET_HDR_LEN : 0;
    this.offloads = opts.vnetOffload === true ? { txChecksum: true, tcpSegmentation: true } : undefined;
    this.txHdr = opts.vnetOffload === true ? new Uint8Array(VNET_HDR_LEN) : undefined;
    // One byte more than the largest frame we accept, so a truncated read is never mistaken
    // for a frame that fits (the kernel reports the untruncated length anyway).
    this.slot = this.hdrLen + (this.hdrLen > 0 ? Math.max(GSO_MAX_FRAME, this.maxFrame) : this.maxFrame) + 1;
    this.ring = new Uint8Array(this.slot * BATCH);
    this.highWater = opts.highWaterFrames ?? 64;
    this.limit = opts.limitFrames ?? 256;
    addon.startRead(fd, this.ring.buffer as ArrayBuffer, this.slot, this.lengths, (count) => this.onBatch(count));
  }

  /** Frames waiting in the EAGAIN queue. */
  get queuedFrames(): number {
    return this.queue.length - this.queueHead;
  }

  private onBatch(count: number): void {
    if (count < 0) {
      this.finish(new Error(`${this.name}: read failed: ${errnoName(-count)}`));
      return;
    }
    const ring = this.ring;
    const slot = this.slot;
    if (this.hdrLen > 0) return this.onOffloadBatch(count);
    for (let i = 0; i < count; i++) {
      const len = this.lengths[i];
      if (len > this.maxFrame) this.stats.rxDrops++;
      else this.deliver(ring.subarray(i * slot, i * slot + len));
    }
  }

  /** Offload mode: strip the virtio-net header; super-segments may exceed the MTU. */
  private onOffloadBatch(count: number): void {
    const ring = this.ring;
    const slot = this.slot;
    const h = this.hdrLen;
    const o = this.offloadStats;
    for (let i = 0; i < count; i++) {
      const at = i * slot;
      const len = this.lengths[i] - h;
      const flags = vnetFlags(ring, at);
      const gso = vnetGsoType(ring, at) & ~VNET_GSO_ECN;
      if (len < 0 || len > GSO_MAX_FRAME || (gso !== VNET_GSO_NONE && gso !== VNET_GSO_TCPV4)) {
        o.rxBadHeader++;
        this.stats.rxDrops++;
        continue;
      }
      if (gso === VNET_GSO_NONE && len > this.maxFrame) {
        this.stats.rxDrops++;
        continue;
      }
      if (gso !== VNET_GSO_NONE) o.rxSuperSegments++;
      let rxFlags = 0;
      if (flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) {
        if (flags & VNET_F_NEEDS_CSUM) o.rxPartialChecksum++;
        rxFlags = RX_CSUM_VERIFIED;
      }
      this.deliver(ring.subarray(at + h, at + h + len), rxFlags);
    }
  }

  /**
   * Write `frame` now: as is, or after its virtio-net header in offload mode (one writev, no
   * copy). Bytes written or -errno; false when the metadata cannot apply to the frame.
   */
  private writeNow(frame: Uint8Array, txMeta: number): number | false {
    const hdr = this.txHdr;
    if (hdr === undefined) return this.addon.write(this.fd, frame);
    if (!emitVnetHeader(hdr, frame, txMeta)) return false;
    const n = this.addon.write2(this.fd, hdr, frame);
    if (n >= 0 && txMeta !== 0) {
      if (txMeta > 0xffff) this.offloadStats.txSuperSegments++;
      else this.offloadStats.txPartialChecksum++;
    }
    return n;
  }

  /** A copy of what `writeNow` writes, for the EAGAIN queue (header included in offload mode). */
  private wireCopy(frame: Uint8Array): Uint8Array {
    const hdr = this.txHdr;
    if (hdr === undefined) return Uint8Array.from(frame);
    const out = new Uint8Array(VNET_HDR_LEN + frame.length);
    out.set(hdr, 0);
    out.set(frame, VNET_HDR_LEN);
    return out;
  }

  /** Count the result of one write: bytes written or -errno. */
  private account(result: number, len: number): void {
    if (result < 0) {
      this.stats.txDrops++;
    } else {
      this.stats.txFrames++;
      this.stats.txBytes += len;
    }
  }

  protected transmit(frame: Uint8Array, txMeta: number): boolean {
    if (this.queuedFrames === 0) {
      const n = this.writeNow(frame, txMeta);
      if (n === false) {
        this.stats.txDrops++;
        return true;
      }
      if (n !== -EAGAIN) {
        this.account(n, frame.length);
        return true;
      }
    } else if (this.txHdr !== undefined && !emitVnetHeader(this.txHdr, frame, txMeta)) {
      this.stats.txDrops++;
      return true;
    }
    if (this.queuedFrames >= this.limit) {
      this.stats.txDrops++;
      this.needDrain = true;
      return false;
    }
    this.queue.push(this.wireCopy(frame));
    this.retryTimer ??= setTimeout(() => this.flush(), RETRY_MS);
    if (this.queuedFrames >= this.highWater) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Retry the EAGAIN queue in order; re-arm the timer if the device is still full. */
  private flush(): void {
    this.retryTimer = undefined;
    while (this.queueHead < this.queue.length) {
      const frame = this.queue[this.queueHead];
      const n = this.addon.write(this.fd, frame);
      if (n === -EAGAIN) {
        this.retryTimer = setTimeout(() => this.flush(), RETRY_MS);
        return;
      }
      this.account(n, frame.length - this.hdrLen);
      this.queueHead++;
    }
    this.queue = [];
    this.queueHead = 0;
    if (this.needDrain) {
      this.needDrain = false;
      this.emit("drain");
    }
  }

  protected shutdown(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stats.txDrops += this.queuedFrames;
    this.queue = [];
    this.queueHead = 0;
    this.addon.close(this.fd);
  }
}
