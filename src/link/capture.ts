/**
 * Capture wrapper: a FrameChannel around any other channel that records every frame in both
 * directions to a pcap writer, and otherwise passes everything through unchanged. The capture
 * can be started and stopped while traffic flows (`startCapture` / `stopCapture`): the control
 * API's `POST /capture` uses this. A file capture (`toFile`, `startFile`) is opened safely
 * (`src/pcap/capture-file.ts`: no links followed, only a new or regular file of the caller,
 * mode 0600) and written asynchronously through a capped queue (`src/pcap/file-sink.ts`): a
 * disk that does not keep up costs counted drops (`status().packetsDropped`), never a blocked
 * event loop. The file is readable by tshark while the capture is still open. A write error
 * stops the capture: it is reported once (`onError`) and kept in `status().error`.
 *
 * smoltcp's `PcapWriter` device and gvisor-tap-vsock's capture file are the same idea: capture
 * is a decorator of the link, not woven into the stack.
 *
 * Offloads of the inner channel are passed through (flags and metadata unchanged). Frames
 * whose TCP/UDP checksum is partial (sent with TX_CSUM_PARTIAL, or received with
 * RX_CSUM_VERIFIED, which covers the guest kernel's partial checksums) are written with the
 * checksum completed, only while capturing (`src/pcap/l4-checksum.ts`); super-segments longer
 * than the MTU are recorded as they are, as tcpdump on such a device shows them.
 */

import { BaseFrameChannel, RX_CSUM_VERIFIED, TX_CSUM_PARTIAL, type ChannelOffloads, type FrameChannel } from "./channel.js";
import { PcapWriter, wallClockNs, type PcapFileOptions } from "../pcap/writer.js";

/** A capture's state, as the control API reports it. */
export interface CaptureStatus {
  running: boolean;
  /** File of the running (or last) file capture. */
  path?: string;
  packetsWritten: number;
  /** Packets not written: the queue for the disk was full, or after an error. */
  packetsDropped: number;
  bytesWritten: number;
  /** The write error that stopped the capture. */
  error?: string;
}

export class CaptureChannel extends BaseFrameChannel {
  private writer: PcapWriter | undefined;
  /** The last writer (running or stopped) and its file, for `status()`. */
  private last: { writer: PcapWriter; path?: string } | undefined;
  /** Told once of each file capture's write error (besides the capture's own onError). */
  private errorHandler: ((err: Error, path: string) => void) | undefined;

  constructor(
    private readonly inner: FrameChannel,
    writer?: PcapWriter,
  ) {
    super(`capture(${inner.name})`, inner.mtu);
    this.writer = writer;
    if (writer) this.last = { writer };
    inner.setReceiver((frame, rxFlags) => {
      this.writer?.writePacket(frame, wallClockNs(), (rxFlags & RX_CSUM_VERIFIED) !== 0);
      this.deliver(frame, rxFlags);
    });
    inner.on("drain", () => this.emit("drain"));
    inner.once("closed", (err) => this.finish(err));
  }

  /**
   * Wrap `inner` and capture to `path` at once. The wrapper owns `inner` from the start: when
   * the path is refused, `inner` is closed and the `CaptureFileError` thrown (a caller that
   * gave up on the wrapper then leaves no open link behind). `opts.onError` hears of a later
   * write error, which stops the capture.
   */
  static toFile(inner: FrameChannel, path: string, opts: PcapFileOptions = {}): CaptureChannel {
    const c = new CaptureChannel(inner);
    try {
      c.startFile(path, opts);
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  /**
   * Start capturing to the file `path` (stopping any capture already running). Throws when
   * the path is refused, and then nothing changes; a later write error stops the capture,
   * is kept for `status()` and handed to `opts.onError` once.
   */
  startFile(path: string, opts: PcapFileOptions = {}): void {
    let w: PcapWriter | undefined;
    w = PcapWriter.toFile(path, {
      ...opts,
      onError: (err) => {
        if (w !== undefined && this.writer === w) this.stopCapture();
        opts.onError?.(err);
        this.errorHandler?.(err, path);
      },
    });
    this.startCapture(w);
    this.last = { writer: w, path };
  }

  /** Be told of file captures' write errors (the CLI logs them). */
  setErrorHandler(handler: (err: Error, path: string) => void): void {
    this.errorHandler = handler;
  }

  /** The running or last capture's counters, and the error that stopped it. */
  status(): CaptureStatus {
    const w = this.last?.writer;
    const s: CaptureStatus = {
      running: this.writer !== undefined,
      packetsWritten: w?.packetsWritten ?? 0,
      packetsDropped: w?.packetsDropped ?? 0,
      bytesWritten: w?.bytesWritten ?? 0,
    };
    if (this.last?.path !== undefined) s.path = this.last.path;
    if (w?.error) s.error = w.error.message;
    return s;
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
    this.last = { writer };
  }

  /** Stop and close the running capture, if any. */
  stopCapture(): void {
    const w = this.writer;
    this.writer = undefined;
    w?.close();
  }

  protected transmit(frame: Uint8Array, txMeta: number): boolean {
    this.writer?.writePacket(frame, wallClockNs(), (txMeta & TX_CSUM_PARTIAL) !== 0);
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    return this.inner.send(frame, txMeta);
  }

  protected shutdown(): void {
    this.stopCapture();
    this.inner.close();
  }
}
