/**
 * Tests whose subject must live in another network namespace (an ICMP socket belongs to the
 * namespace it is made in): the test file runs itself again as a child process inside the
 * namespace (`ip netns exec`), with an environment variable saying so; the child prints one
 * `RESULT <json>` line and the parent asserts on it.
 */
import { fileURLToPath } from "node:url";
import { run, type ExecResult, type Netns } from "./netns.js";

/** Run the test file `selfUrl` (its `import.meta.url`) in `ns` with `env`=`value`; its RESULT, parsed. */
export async function runChildInNetns<T>(ns: Netns, selfUrl: string, env: string, value: string, timeoutMs = 90_000): Promise<{ out: ExecResult; result: T | undefined }> {
  const self = fileURLToPath(selfUrl);
  const root = fileURLToPath(new URL("../../", import.meta.url)); // where `--import tsx` resolves
  const out = await run(["ip", "netns", "exec", ns.name, "env", "-C", root, `${env}=${value}`, process.execPath, "--import", "tsx", self], timeoutMs);
  const line = out.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  return { out, result: line === undefined ? undefined : (JSON.parse(line.slice("RESULT ".length)) as T) };
}

/** In the child: print `result` as the RESULT line. */
export function printResult(result: unknown): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** In the child: run `main` with the variable's value; exit 1 on an error. */
export function childMain(env: string, main: (value: string) => Promise<void>): void {
  main(process.env[env]!).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
