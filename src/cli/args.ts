/**
 * Argument parsers and checks shared by the commands: one MTU range, one log-level default,
 * and checks of paths skiff will create, done before anything is opened.
 */
import { InvalidArgumentError } from "commander";
import { statSync } from "node:fs";
import { dirname } from "node:path";
import { MTU_MIN, MTU_MAX } from "../network/options.js";

/** An integer option in `min..max`; anything else is a usage error naming the range. */
export function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    return n;
  };
}

/** The MTU range of every command's `--mtu` (the library's, src/network/options.ts). */
export { MTU_MIN, MTU_MAX };
export const mtuArg = intArg(MTU_MIN, MTU_MAX);

/** Every command's `--log-level` default: warnings and errors only; a normal start prints nothing. */
export const DEFAULT_LOG_LEVEL = "warn";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export const LOG_LEVEL_HELP = `${LOG_LEVELS.join(", ")} (default ${DEFAULT_LOG_LEVEL})`;

/** `--log-level`: one of pino's levels. */
export function logLevelArg(v: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(", ")}`);
  return v;
}

/**
 * A file skiff will create or overwrite (`--pcap`): its directory must exist, and the path must
 * not be a directory. Checked before anything is opened; the message names the option.
 */
export function checkOutputFile(path: string, option: string): void {
  const dir = dirname(path);
  let d;
  try {
    d = statSync(dir);
  } catch {
    throw new Error(`${option} ${path}: directory ${dir} does not exist`);
  }
  if (!d.isDirectory()) throw new Error(`${option} ${path}: ${dir} is not a directory`);
  let s;
  try {
    s = statSync(path);
  } catch {
    return;
  }
  if (s.isDirectory()) throw new Error(`${option} ${path} is a directory (give a file name)`);
}
