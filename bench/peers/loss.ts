// Loss rows of the peers benchmark (issue 19): a 20 MB transfer each way with random loss both ways between the guest and the contender (nftables netdev ingress drops: this kernel has no sch_netem), MTU 1500 and every offload off, so each contender's TCP — not the kernel's segmentation — meets the loss.

import { fileURLToPath } from "node:url";
import { inNs, type Session } from "./contenders.js";
import { Bg, run, sh, waitFor } from "./proc.js";
import { lossLink } from "../../test/support/lossy-link.js";
import type { Env, Step, StepResult } from "./measures.js";
import { median } from "./report.js";

/** Loss rates of the rows, percent each way (0: the same path without loss, for reference). */
export const LOSS_RATES = [0, 1, 5, 10];
/** Bytes of each transfer. */
export const LOSS_BYTES = 20_000_000;
/** A transfer slower than this is stopped and reported (no figure; the direction's other transfers are skipped). */
const TRANSFER_TIMEOUT_MS = 60_000;

const script = () => fileURLToPath(new URL("./transfer.mjs", import.meta.url));

export const lossMetric = (dir: "down" | "up", pct: number) => `loss${pct}_${dir}`;

/** The transfer servers on every address (download on `port`, upload sink on `port + 1`). */
export async function startTransferServers(dir: string, addrs: string[], port: number): Promise<Bg> {
  const bg = new Bg([process.execPath, script(), "server", String(port), String(LOSS_BYTES), ...addrs], `${dir}/transfer-server.log`);
  const listening = (a: string, p: number) => sh(["ss", "-Hltn", `( sport = :${p} )`]).includes(`${a}:${p}`);
  for (const a of addrs) {
    for (const p of [port, port + 1]) {
      await waitFor(`transfer server on ${a}:${p}`, 10_000, () => {
        if (!bg.alive) throw new Error(`transfer server ${bg.describe()}`);
        return listening(a, p) || undefined;
      });
    }
  }
  return bg;
}

/** One transfer from inside the guest; its time in seconds. */
export async function transfer(nsPath: string, hostIp: string, port: number, dir: "down" | "up"): Promise<number> {
  const argv = inNs(nsPath, [process.execPath, script(), dir, hostIp, String(port), String(LOSS_BYTES)]);
  const r = await run(argv, TRANSFER_TIMEOUT_MS);
  if (r.timedOut) throw new Error(`${dir} did not finish in ${TRANSFER_TIMEOUT_MS / 1000} s`);
  if (r.code !== 0) throw new Error(`${dir}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return (JSON.parse(r.stdout.trim().split("\n").pop()!) as { ms: number }).ms / 1000;
}

/**
 * One step per loss rate: loss on, 20 MB down then up (`lossTransfers` times each, 3 unless
 * --quick, the median kept: one transfer's luck with a lost tail swings it), loss off.
 */
export function lossSteps(): Step[] {
  return LOSS_RATES.map((pct) => ({
    name: `20 MB each way, ${pct}% random loss both ways`,
    async run(s: Session, env: Env): Promise<StepResult> {
      const values: Record<string, number> = {};
      const extra: Record<string, number[]> = {};
      const warnings: string[] = [];
      const link = lossLink(s, pct);
      try {
        for (const dir of ["down", "up"] as const) {
          const times: number[] = [];
          for (let k = 0; k < env.dur.lossTransfers; k++) {
            try {
              times.push(await transfer(link.nsPath, s.hostIp, env.ports.transfer, dir));
            } catch (e) {
              warnings.push(`loss ${pct}% ${dir}: ${(e as Error).message}`);
              if ((e as Error).message.includes("did not finish")) break;
            }
          }
          const m = median(times);
          if (m !== undefined) values[lossMetric(dir, pct)] = m;
          extra[`${lossMetric(dir, pct)}_all`] = times;
        }
      } finally {
        link.undo();
      }
      if (Object.keys(values).length === 0) throw new Error(warnings.join("; "));
      return { values, extra, warnings };
    },
  }));
}
