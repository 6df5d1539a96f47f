/**
 * The host side of a relayed TCP connection, as `bridgeSocket` sees it: a byte stream with
 * write backpressure, pause/resume of reads, half-close, and close or reset. Two kinds:
 *  - `socketStream`: a Node `net.Socket` (port forwarding's accepted clients; dials when the
 *    addon is missing or the caller supplies its own `connect`);
 *  - `NativeStream` (native-stream.ts): a socket of the addon's epoll set, read in batches.
 */

import type { Socket } from "node:net";

/** What a host stream reports; set once with `attach`. */
export interface HostStreamHandlers {
  /** Bytes from the host. Not `owned`: the chunk is valid only during the call (copy to keep). */
  data(chunk: Uint8Array, owned: boolean): void;
  /** The host's FIN. */
  end(): void;
  /** Everything written has been handed to the kernel; write again. */
  drain(): void;
  /**
   * The stream is finished: after both FINs (`hadError` false) or after an error or a reset
   * from the host (true). Not called after `destroy()` or `reset()`.
   */
  close(hadError: boolean): void;
  /** An error, before `close(true)` (for logs). */
  error?(code: string): void;
}

export interface HostStream {
  attach(h: HostStreamHandlers): void;
  /**
   * Queue `d` for the host; false: wait for `drain`. Without `copiesWrites`, `d` is kept (not
   * copied) until written.
   */
  write(d: Uint8Array): boolean;
  /** `write` is done with `d` when it returns (it copies what it cannot send at once). */
  readonly copiesWrites: boolean;
  /** Send our FIN once everything written has gone out. */
  end(): void;
  /** Stop / restart delivering `data`. */
  pause(): void;
  resume(): void;
  /** Close without a word to the handlers. */
  destroy(): void;
  /** Close with an RST to the host. */
  reset(): void;
  readonly destroyed: boolean;
  /** Bytes written but not yet handed to the kernel. */
  readonly queuedBytes: number;
  /** Reading is paused. */
  readonly paused: boolean;
}

/** Node's `onread` connect option: reads go into one reused buffer, no stream machinery. */
export type OnRead = { buffer: Uint8Array; callback: (bytes: number, buf: Uint8Array) => boolean };

/** Where a socket opened with `readInto(hook)` delivers its reads: set by `socketStream`. */
export interface ReadHook {
  data: ((chunk: Uint8Array) => boolean) | undefined;
}

/**
 * One read buffer shared by every dialled Node socket: a read is handled (copied into a send
 * queue) before the next one starts, so nothing outlives the callback. Saves a Buffer
 * allocation and the Readable stream's work per read.
 */
const SHARED_READ_BUFFER = new Uint8Array(64 * 1024);

/** The `onread` option that routes a socket's reads to `hook`. */
export function readInto(hook: ReadHook): OnRead {
  return {
    buffer: SHARED_READ_BUFFER,
    callback: (n, buf) => (hook.data !== undefined ? hook.data(buf.subarray(0, n)) : false),
  };
}

/**
 * A Node socket as a `HostStream`. With `hook` (the socket was opened with `readInto(hook)`),
 * reads arrive through it; "data" events (whose chunks are ours to keep) are handled too, for
 * a socket that ignored `onread`.
 */
export function socketStream(sock: Socket, hook?: ReadHook): HostStream {
  let paused = false;
  let gone = false;
  return {
    attach(h) {
      if (hook !== undefined) {
        hook.data = (chunk) => {
          h.data(chunk, false);
          return !paused;
        };
      }
      sock.on("data", (chunk: Buffer) => h.data(chunk, true));
      sock.on("end", () => h.end());
      sock.on("drain", () => h.drain());
      sock.on("error", (err: NodeJS.ErrnoException) => h.error?.(err.code ?? "EIO"));
      sock.on("close", (hadError) => {
        if (!gone) h.close(hadError);
      });
    },
    write: (d) => sock.write(d),
    copiesWrites: false,
    end: () => void sock.end(),
    pause() {
      paused = true;
      sock.pause();
    },
    resume() {
      paused = false;
      sock.resume();
    },
    destroy() {
      gone = true;
      sock.destroy();
    },
    reset() {
      gone = true;
      // libuv forbids uv_tcp_close_reset after uv_shutdown (docs of uv_tcp_close_reset): the
      // shutdown request then never completes, and Node's exit waits for it forever, spinning
      // (seen with `skiff run` over IPv6, whose host sockets are Node's: CMD exits after the
      // guest's FIN was passed on with end()). Once ended, a plain destroy.
      if (sock.writableEnded) sock.destroy();
      else sock.resetAndDestroy();
    },
    get destroyed() {
      return sock.destroyed;
    },
    get queuedBytes() {
      return sock.writableLength;
    },
    get paused() {
      return sock.isPaused();
    },
  };
}
