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

import { BaseFrameChannel, RX_CSUM_VERIFIED, TX_CSUM_PARTIAL, type ChannelOffloads, type FrameChannel } from "../common/frame-channel.js";
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

/**
 * Open a file capture's writer safely (src/pcap/capture-file.ts). On its first write error,
 * `stop(writer)` runs (to stop the capture if that writer is still the current one), then
 * `opts.onError` and `report`.
 */
export function openCaptureFile(path: string, opts: PcapFileOptions, stop: (w: PcapWriter) => void, report: (err: Error, path: string) => void): PcapWriter {
  let w: PcapWriter | undefined;
  w = PcapWriter.toFile(path, {
    ...opts,
    onError: (err) => {
      if (w !== undefined) stop(w);
      opts.onError?.(err);
      report(err, path);
    },
  });
  return w;
}

/** A capture's status from its last writer (running or stopped) and file. */
export function captureStatus(running: boolean, last: { writer: PcapWriter; path?: string } | undefined): CaptureStatus {
  const w = last?.writer;
  const s: CaptureStatus = {
    running,
    packetsWritten: w?.packetsWritten ?? 0,
    packetsDropped: w?.packetsDropped ?? 0,
    bytesWritten: w?.bytesWritten ?? 0,
  };
  if (last?.path !== undefined) s.path = last.path;
  if (w?.error) s.error = w.error.message;
  return s;
}

export class CaptureChannel extends BaseFrameChannel {
  private writer: PcapWriter | undefined;
  /** Whether stopping the capture closes `writer` (false for a writer shared by several channels). */
  private ownsWriter = true;
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
    const w = openCaptureFile(path, opts, (w) => this.writer === w && this.stopCapture(), (err, p) => this.errorHandler?.(err, p));
    this.startCapture(w);
    this.last = { writer: w, path };
  }

  /** Be told of file captures' write errors (the CLI logs them). */
  setErrorHandler(handler: (err: Error, path: string) => void): void {
    this.errorHandler = handler;
  }

  /** The running or last capture's counters, and the error that stopped it. */
  status(): CaptureStatus {
    return captureStatus(this.writer !== undefined, this.last);
  }

  get offloads(): ChannelOffloads | undefined {
    return this.inner.offloads;
  }

  /** The writer in use, if a capture is running. */
  get capturing(): PcapWriter | undefined {
    return this.writer;
  }

  /**
   * Start capturing to `writer` (stopping any capture already running). With `owned` false the
   * writer is shared (one file for several channels): stopping this channel's capture, or
   * closing the channel, leaves it open for its owner to close.
   */
  startCapture(writer: PcapWriter, owned = true): void {
    this.stopCapture();
    this.writer = writer;
    this.ownsWriter = owned;
    this.last = { writer };
  }

  /** Stop the running capture, if any, and close its writer if this channel owns it. */
  stopCapture(): void {
    const w = this.writer;
    this.writer = undefined;
    if (this.ownsWriter) w?.close();
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
