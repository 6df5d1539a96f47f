/**
 * pcap replay for tests: split a recorded session into the guest's frames and the gateway's,
 * and feed the guest's frames to a fresh stack through a recording channel — at once
 * (`replayGuest`), or on the recorded clock with the stack's services and timers running
 * (`replayOnClock`).
 */
import { readPcapFile } from "../../src/pcap/reader.js";
import { isWireError } from "../../src/common/wire-error.js";
import { getMac } from "../../src/common/bytes.js";
import { RecordingChannel } from "./stack.js";
import { NetworkStack, type StackOptions } from "../../src/stack/stack.js";

export { RecordingChannel };

export interface Session {
  /** Frames in capture order, each marked with who sent it. */
  frames: Array<{ fromGateway: boolean; data: Uint8Array; /** capture time, ms since the first frame */ ms: number }>;
}

export function loadSession(path: string, gatewayMac: number): Session {
  const c = readPcapFile(path);
  if (isWireError(c)) throw new Error(`${path}: ${c.reason}`);
  const t0 = c.packets.length ? c.packets[0].tsSec * 1000 + c.packets[0].tsFrac / 1e6 : 0;
  return {
    frames: c.packets.map((p) => ({ fromGateway: getMac(p.data, 6) === gatewayMac, data: Uint8Array.from(p.data), ms: p.tsSec * 1000 + p.tsFrac / 1e6 - t0 })),
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

/** Recorded gateway frames grouped by the guest frame they followed (index i: after the i-th guest frame, before the next). */
export function recordedAnswers(session: Session): Uint8Array[][] {
  const groups: Uint8Array[][] = [];
  for (const f of session.frames) {
    if (!f.fromGateway) groups.push([]);
    else if (groups.length) groups[groups.length - 1].push(f.data);
  }
  return groups;
}

/**
 * Replay the guest's frames on the recorded clock: the stack's clock is the capture's (ms since
 * its first frame, from 1000), `services(stack)` attaches what the recording ran (TCP, DNS, …)
 * and returns its closer. Before each guest frame the clock moves to the frame's time and due
 * timers fire; after it, pending promises settle. `rewrite(i, frame)` may change a guest frame
 * before it is fed (e.g. to translate TCP sequence numbers); `seen(i, ours)` is told each group
 * of answers as soon as it is complete. Answers are grouped as `recordedAnswers` groups the
 * recording: what the stack sent after guest frame i and before guest frame i + 1.
 */
export async function replayOnClock(
  session: Session,
  opts: StackOptions,
  services: (stack: NetworkStack) => () => void,
  hooks: { rewrite?: (i: number, frame: Uint8Array) => Uint8Array; seen?: (i: number, ours: Uint8Array[]) => void } = {},
): Promise<{ stack: NetworkStack; answers: Uint8Array[][] }> {
  let t = 1000;
  const stack = new NetworkStack({ ...opts, now: () => t });
  const close = services(stack);
  const ch = new RecordingChannel(opts.mtu ?? 1500);
  const port = stack.attach(ch);
  const answers: Uint8Array[][] = [];
  const settle = async () => {
    for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
  };
  const guest = session.frames.filter((f) => !f.fromGateway);
  try {
    for (let i = 0; i < guest.length; i++) {
      // Sends until the next guest frame (timers due by its time included) go to group i - 1.
      t = Math.max(t, 1000 + guest[i].ms);
      stack.timers.run();
      await settle();
      if (i > 0) hooks.seen?.(i - 1, answers[i - 1]);
      answers.push((ch.sent = []));
      stack.receive(port, hooks.rewrite ? hooks.rewrite(i, guest[i].data) : guest[i].data);
      await settle();
    }
    stack.timers.run();
    await settle();
    if (guest.length) hooks.seen?.(guest.length - 1, answers[guest.length - 1]);
  } finally {
    close();
    stack.close();
  }
  return { stack, answers };
}
