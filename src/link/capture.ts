/**
 * Capture wrapper: a FrameChannel around any other channel that records every frame in both
 * directions to a pcap writer, and otherwise passes everything through unchanged. The capture
 * can be started and stopped while traffic flows (`startCapture` / `stopCapture`): the control
 * API's `POST /capture` uses this. Frames written to a file are readable by tshark while the
 * capture is still open (one write per record; see `src/pcap/writer.ts`).
 *
 * smoltcp's `PcapWriter` device and gvisor-tap-vsock's capture file are the same idea: capture
 * is a decorator of the link, not woven into the stack.
 *
 * Offloads of the inner channel are passed through (flags and metadata unchanged), so with a
 * checksum-offloading TAP the capture shows what tcpdump on such a device shows: TCP/UDP
 * checksums left partial and super-segments longer than the MTU.
 */

import { BaseFrameChannel, type ChannelOffloads, type FrameChannel } from "./channel.js";
import { PcapWriter, wallClockNs, type PcapWriterOptions } from "../pcap/writer.js";

export class CaptureChannel extends BaseFrameChannel {
  private writer: PcapWriter | undefined;

  constructor(
    private readonly inner: FrameChannel,
    writer?: PcapWriter,
  ) {
    super(`capture(${inner.name})`, inner.mtu);
    this.writer = writer;
    inner.setReceiver((frame, rxFlags) => {
      this.writer?.writePacket(frame, wallClockNs());
      this.deliver(frame, rxFlags);
    });
    inner.on("drain", () => this.emit("drain"));
    inner.once("closed", (err) => this.finish(err));
  }

  /** Wrap `inner` and capture to `path` at once. */
  static toFile(inner: FrameChannel, path: string, opts: PcapWriterOptions = {}): CaptureChannel {
    return new CaptureChannel(inner, PcapWriter.toFile(path, opts));
  }

  get offloads(): ChannelOffloads | undefined {
    return this.inner.offloads;
  }

  /** The writer in use, if a capture is running. */
  get capturing(): PcapWriter | undefined {
    return this.writer;
  }

  /** Start capturing to `writer` (stopping any capture already running). */
  startCapture(writer: PcapWriter): void {
    this.stopCapture();
    this.writer = writer;
  }

  /** Stop and close the running capture, if any. */
  stopCapture(): void {
    const w = this.writer;
    this.writer = undefined;
    w?.close();
  }

  protected transmit(frame: Uint8Array, txMeta: number): boolean {
    this.writer?.writePacket(frame, wallClockNs());
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    return this.inner.send(frame, txMeta);
  }

  protected shutdown(): void {
    this.stopCapture();
    this.inner.close();
  }
}
