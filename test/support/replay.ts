/**
 * pcap replay for tests: split a recorded session into the guest's frames and the gateway's,
 * and feed the guest's frames to a fresh stack through a recording channel.
 */
import { readPcapFile } from "../../src/pcap/reader.js";
import { isWireError } from "../../src/common/wire-error.js";
import { getMac } from "../../src/common/bytes.js";
import { RecordingChannel } from "./stack.js";
import { NetworkStack, type StackOptions } from "../../src/stack/stack.js";

export { RecordingChannel };

export interface Session {
  /** Frames in capture order, each marked with who sent it. */
  frames: Array<{ fromGateway: boolean; data: Uint8Array }>;
}

export function loadSession(path: string, gatewayMac: number): Session {
  const c = readPcapFile(path);
  if (isWireError(c)) throw new Error(`${path}: ${c.reason}`);
  return {
    frames: c.packets.map((p) => ({ fromGateway: getMac(p.data, 6) === gatewayMac, data: Uint8Array.from(p.data) })),
  };
}

/** Feed the guest's frames of `session` to a new stack; returns what the stack answered to each. */
export function replayGuest(session: Session, opts: StackOptions = {}): { stack: NetworkStack; answers: Uint8Array[][] } {
  const stack = new NetworkStack(opts);
  const ch = new RecordingChannel(opts.mtu ?? 1500);
  const port = stack.attach(ch);
  const answers: Uint8Array[][] = [];
  for (const f of session.frames) {
    if (f.fromGateway) continue;
    const before = ch.sent.length;
    stack.receive(port, f.data);
    answers.push(ch.sent.slice(before));
  }
  return { stack, answers };
}
