/**
 * Child process of the "QEMU does not outlive skiff" tests (test/vm/qemu.test.ts with a
 * stand-in binary, test/e2e/vm.test.ts with real QEMU): starts a VM through the library, prints
 * `CHILDREN <pid>=<name> …` (this process's child processes: the QEMU it started) once the VM runs,
 * then calls process.exit(0) with the VM still running — as mocha's `--exit` or a library
 * user's process does.
 *
 * VM_EXIT_CHILD_BINARY set: `Vm.start` with that binary as QEMU, "running" once it has started.
 * Otherwise `vmRun` (what `skiff vm run` runs) with the image cache VM_EXIT_CHILD_CACHE and a
 * guest command that sleeps for 10 minutes, "running" once the guest reports ready.
 */
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { Vm } from "../../src/vm/qemu.js";
import { vmRun } from "../../src/cli/vm.js";

/** This process's child processes (of its main thread, which spawned QEMU) as `pid=name`. */
function children(): string {
  const pids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(" ").filter(Boolean);
  return pids.map((pid) => `${pid}=${readFileSync(`/proc/${pid}/comm`, "utf8").trim()}`).join(" ");
}

function exitNow(): void {
  process.stdout.write(`CHILDREN ${children()}\n`, () => process.exit(0));
}

const binary = process.env.VM_EXIT_CHILD_BINARY;
if (binary) {
  const vm = Vm.start({ kernel: "/k/vmlinuz", initrd: "/k/initrd.img", accel: "tcg", cpus: 1, memoryMiB: 128 }, { binary });
  // The stand-in prints one line once it runs.
  await vm.waitFor(/started/);
  exitNow();
} else {
  await vmRun({
    cpus: 1,
    memoryMiB: 256,
    mtu: 1500,
    accel: "tcg",
    cacheDir: process.env.VM_EXIT_CHILD_CACHE,
    command: ["sleep", "600"],
    onReady: exitNow,
    output: () => {},
    log: pino({ level: "silent" }),
  });
  process.stdout.write("the guest's command ended first\n");
  process.exit(1);
}
