/**
 * TCP connection states (RFC 9293 §3.3.2) and the events a connection reports to its owner.
 *
 * LISTEN is not a connection state here: skiff's stack holds a guest's SYN itself and creates
 * a connection directly in SYN-RECEIVED once it decides to accept (see `TcpConnection.fromSyn`).
 */

export const TcpState = {
  Closed: 0,
  SynSent: 1,
  SynReceived: 2,
  Established: 3,
  FinWait1: 4,
  FinWait2: 5,
  CloseWait: 6,
  Closing: 7,
  LastAck: 8,
  TimeWait: 9,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

const NAMES = [
  "CLOSED",
  "SYN-SENT",
  "SYN-RECEIVED",
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
];

export function stateName(s: TcpState): string {
  return NAMES[s];
}

/**
 * Events, as bits: the engine sets them while it processes input, output and timers; the
 * owner collects them with `takeEvents()` and acts (no callbacks from inside the engine, so
 * there is no re-entrancy).
 */
export const TcpEvent = {
  /** The three-way handshake completed. */
  Established: 1,
  /** Data is available to `read`. */
  Readable: 2,
  /** Send buffer space was freed (after a `write` accepted less than offered). */
  Writable: 4,
  /** The peer sent FIN: no more data will arrive (after what is readable now). */
  PeerFin: 8,
  /** The connection was reset or timed out; `error` says why. */
  Reset: 16,
  /** The connection reached CLOSED (after TIME-WAIT, LAST-ACK, a reset or an abort). */
  Closed: 32,
} as const;

/** Why a connection ended abnormally. */
export type TcpError = "refused" | "reset" | "timeout" | "aborted";
