/**
 * What `skiff run`'s two ways in share: the root way (src/cli/run.ts, `ip netns`) and the
 * rootless way (src/cli/run-rootless.ts, a user namespace): the guest's MAC, how long a command
 * may take to exit after a signal, and the shell's status for a signal.
 */

import { constants as osConstants } from "node:os";

/** How long a command may take to exit after SIGINT/SIGTERM before it is killed. */
export const KILL_GRACE_MS = 5000;

/** MAC of the guest's interface: QEMU's prefix, then the guest address's last octets. */
export const GUEST_MAC = 0x5254_0065_0003;

/** Shell convention: 128 + signal number. */
export function signalStatus(sig: NodeJS.Signals): number {
  return 128 + (osConstants.signals[sig] ?? 9);
}
