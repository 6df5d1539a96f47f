/** Argument parsers shared by the commands. */
import { InvalidArgumentError } from "commander";

/** An integer option in `min..max`; anything else is a usage error naming the range. */
export function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    return n;
  };
}
