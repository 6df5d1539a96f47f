/**
 * Waiting for a long-running command to be told to stop: SIGINT or SIGTERM, or a promise a
 * test (or an embedding program) resolves.
 */
export class StopSignal {
  /** The signal that stopped us, if one did. */
  signal: NodeJS.Signals | undefined;
  readonly stopped: Promise<void>;
  private wake: () => void = () => {};
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.signal ??= sig;
    this.wake();
  };

  constructor(stop?: Promise<unknown>) {
    this.stopped = new Promise<void>((r) => (this.wake = r));
    process.on("SIGINT", this.onSignal);
    process.on("SIGTERM", this.onSignal);
    void stop?.then(() => this.wake());
  }

  /** Stop listening for the signals. */
  dispose(): void {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
  }
}
