/** Test support: run `skiff serve` in-process until the test stops it. */
import { pino } from "pino";
import { serve, type ServeOptions } from "../../src/cli/serve.js";

export interface RunningServe {
  /** Resolves with serve's exit status once stopped. */
  done: Promise<number>;
  stop(): void;
}

/** Start `serve` with `opts` (silent log; no attachment kinds unless given) and wait until it is ready. */
export async function startServe(opts: Partial<ServeOptions>): Promise<RunningServe> {
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const done = serve({ qemuStream: [], qemuDgram: [], vmnet: [], vfkit: [], mtu: 1500, log: pino({ level: "silent" }), ...opts, stop: stopped, onReady: () => ready() });
  await Promise.race([isReady, done]);
  return { done, stop };
}
