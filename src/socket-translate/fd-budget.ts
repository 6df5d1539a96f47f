/**
 * The budget of file descriptors for host sockets of socket translation (issue 19).
 *
 * Every guest flow costs the process one descriptor (a TCP connection, a UDP socket, a
 * datagram ICMP socket), and the API, DNS upstream sockets, port forwards and new guests need
 * descriptors too. Before this, flows could reach 65 536 while the limit was 20 000: past it
 * every accept(), socket() and open() failed with EMFILE, the API and DNS included, and nothing
 * was logged.
 *
 * At start (`raiseFileLimit`) the soft RLIMIT_NOFILE is raised to the hard one (POSIX
 * setrlimit(2); an unprivileged process may do that); without the addon the limit is left as it
 * is and that is logged. (Node itself already raises the soft limit at start-up on Linux, so
 * under Node this normally finds nothing to do; it matters for embedders that lowered it.) The budget is then `limit - reserve - baseline`: `reserve` (default
 * 256) is kept for everything that is not a translated flow, `baseline` is what the process
 * had open when the budget was made (read from /proc/self/fd). Translation asks `tryAcquire()`
 * before opening a host socket and `release()`s it when the socket closes; past the budget a
 * new guest flow is refused cleanly (TCP: RST; UDP and ICMP: a counted drop), counted in
 * `refused`, and one warning is logged; the next warning comes only after the budget has
 * recovered (usage back under 90 %, logged too). The count is of skiff's own translation
 * sockets, so it is cheap (no system call per flow) and exact for them; anything else that
 * grows is the reserve's to absorb.
 */
import { readdirSync } from "node:fs";
import type { Logger } from "pino";
import { errnoName, loadAddon, type FileLimitAddon } from "../native/addon.js";
import { Counters } from "../common/counters.js";

export const DEFAULT_FD_RESERVE = 256;

export interface FileLimit {
  soft: number;
  hard: number;
  /** The soft limit was raised now. */
  raised: boolean;
}

/**
 * Raise the soft open-file limit to the hard one (at most `cap`, default 1 048 576, when the
 * hard limit is unlimited). Returns the limits after, or undefined without the addon (logged).
 */
export function raiseFileLimit(log?: Logger, addon?: FileLimitAddon, cap = 1 << 20): FileLimit | undefined {
  let a: FileLimitAddon;
  try {
    a = addon ?? loadAddon("the open-file limit");
  } catch (err) {
    log?.warn({ err: (err as Error).message }, "fd budget: the native addon is not available; the open-file limit is left unchanged");
    return undefined;
  }
  const got = a.getNofile();
  if (typeof got === "number") {
    log?.warn({ code: errnoName(-got) }, "fd budget: getrlimit failed; the open-file limit is left unchanged");
    return undefined;
  }
  const [soft, hard] = got;
  const want = Math.min(hard, cap);
  if (soft >= want) return { soft, hard, raised: false };
  const rc = a.setNofile(want, hard);
  if (rc < 0) {
    log?.warn({ soft, hard, code: errnoName(-rc) }, "fd budget: could not raise the open-file limit");
    return { soft, hard, raised: false };
  }
  log?.info({ from: soft, to: want }, "fd budget: raised the open-file limit to the hard limit");
  return { soft: want, hard, raised: true };
}

/** Descriptors open now (/proc/self/fd), or 0 where that cannot be read. */
export function openDescriptors(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}

export interface FdBudgetOptions {
  /** The open-file limit (default: the soft limit after `raiseFileLimit`; no budget when unknown). */
  limit?: number;
  /** Descriptors kept for the API, DNS, forwards and new guests (default DEFAULT_FD_RESERVE). */
  reserve?: number;
  /** Descriptors open before any flow (default: counted now). */
  baseline?: number;
  log?: Logger;
}

export class FdBudgetCounters extends Counters {
  /** Host sockets of translated flows open now. */
  inUse = 0;
  /** New guest flows refused because the budget was spent. */
  refused = 0;
  /** Times the budget ran out (each logged once). */
  exhausted = 0;
}

export class FdBudget {
  readonly counters = new FdBudgetCounters();
  /** Host sockets translation may have open at once (Infinity: no limit known). */
  readonly size: number;
  private readonly log: Logger | undefined;
  private spent = false;

  constructor(opts: FdBudgetOptions = {}) {
    const reserve = opts.reserve ?? DEFAULT_FD_RESERVE;
    if (!Number.isInteger(reserve) || reserve < 0) throw new Error(`invalid fd reserve ${reserve}`);
    const limit = opts.limit ?? Infinity;
    this.size = Number.isFinite(limit) ? Math.max(0, limit - reserve - (opts.baseline ?? openDescriptors())) : Infinity;
    this.log = opts.log;
    if (Number.isFinite(this.size)) this.log?.info({ limit, reserve, budget: this.size }, "fd budget: host sockets of translated flows");
  }

  /** Take one descriptor for a new flow's host socket; false (counted, logged once) past the budget. */
  tryAcquire(): boolean {
    const c = this.counters;
    if (c.inUse >= this.size) {
      c.refused++;
      if (!this.spent) {
        this.spent = true;
        c.exhausted++;
        this.log?.warn(
          { budget: this.size, inUse: c.inUse },
          "fd budget: file descriptors for host sockets are spent; new guest connections are refused until some close (raise the hard limit: ulimit -Hn)",
        );
      }
      return false;
    }
    c.inUse++;
    return true;
  }

  /** Give back a descriptor taken by `tryAcquire`. */
  release(): void {
    const c = this.counters;
    if (c.inUse > 0) c.inUse--;
    if (this.spent && c.inUse < this.size * 0.9) {
      this.spent = false;
      this.log?.info({ budget: this.size, inUse: c.inUse, refused: c.refused }, "fd budget: recovered; new guest connections are accepted again");
    }
  }
}
