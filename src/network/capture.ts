/**
 * One pcap capture for a whole network: every guest link's frames, both directions, in one
 * file (a frame between two guests appears twice: leaving one, entering the other). Each
 * attachment sits behind a `CaptureChannel` (idle until a capture starts); this object shares
 * one `PcapWriter` among all of them, including guests that attach while it runs. The file is
 * opened safely (src/pcap/capture-file.ts: no links followed, a new or regular file of the
 * caller, mode 0600). A write error stops the capture, is kept for `status()` and reported once.
 */

import { CaptureChannel, captureStatus, openCaptureFile, type CaptureStatus } from "../link/capture.js";
import type { FrameChannel } from "../common/frame-channel.js";
import type { PcapWriter, PcapFileOptions } from "../pcap/writer.js";

export type { CaptureStatus };

/** What the control API and the CLI use of a capture (a `CaptureChannel` is one too). */
export interface CaptureControl {
  /** Start capturing to `path` (stopping a running capture); throws when the path is refused. */
  startFile(path: string, opts?: PcapFileOptions): void;
  stopCapture(): void;
  status(): CaptureStatus;
  /** The writer of the running capture, if any. */
  readonly capturing: PcapWriter | undefined;
  /** Be told once of each file capture's write error. */
  setErrorHandler(handler: (err: Error, path: string) => void): void;
}

export class NetworkCapture implements CaptureControl {
  private readonly channels = new Set<CaptureChannel>();
  private writer: PcapWriter | undefined;
  private last: { writer: PcapWriter; path: string } | undefined;
  private readonly handlers: Array<(err: Error, path: string) => void> = [];

  /** Put `channel` behind a capture wrapper that follows this capture. */
  wrap(channel: FrameChannel): CaptureChannel {
    const c = new CaptureChannel(channel);
    if (this.writer !== undefined) c.startCapture(this.writer, false);
    this.channels.add(c);
    c.once("closed", () => this.channels.delete(c));
    return c;
  }

  startFile(path: string, opts: PcapFileOptions = {}): void {
    const w = openCaptureFile(path, opts, (w) => this.writer === w && this.stopCapture(), (err, p) => this.handlers.forEach((h) => h(err, p)));
    this.stopCapture();
    this.writer = w;
    this.last = { writer: w, path };
    for (const c of this.channels) c.startCapture(w, false);
  }

  stopCapture(): void {
    const w = this.writer;
    if (w === undefined) return;
    this.writer = undefined;
    for (const c of this.channels) c.stopCapture();
    w.close();
  }

  get capturing(): PcapWriter | undefined {
    return this.writer;
  }

  setErrorHandler(handler: (err: Error, path: string) => void): void {
    this.handlers.push(handler);
  }

  status(): CaptureStatus {
    return captureStatus(this.writer !== undefined, this.last);
  }
}
