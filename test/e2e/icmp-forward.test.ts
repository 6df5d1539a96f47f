/**
 * End to end: a kernel guest (network namespace behind a TAP device and skiff's stack) pings
 * an address beyond the gateway, and skiff forwards the echo through its host-side ICMP
 * socket, in both modes: a raw socket (root, `ping_group_range` "1 0") and unprivileged
 * datagram ("ping") sockets (`ping_group_range` "0 2147483647").
 *
 * Nothing leaves the machine and no interface of the host is touched: the "host" side is a
 * namespace of its own ("far") whose loopback also carries 10.200.0.1/32, the address the
 * guest pings; `ping_group_range` is set inside that namespace only. Because an ICMP socket
 * belongs to the namespace it is made in, the stack runs in a child process started in "far"
 * (`ip netns exec`): this same file, run with SKIFF_ICMP_E2E_CHILD=<expected mode>. The child
 * makes the guest namespace, runs the pings in it and prints one RESULT line of JSON; the
 * assertions are here, in mocha.
 */
import { expect } from "chai";
import { createNetns, requireNetns, type ExecResult, type Netns } from "../support/netns.js";
import { childMain, printResult, runChildInNetns } from "../support/netns-child.js";

const CHILD_ENV = "SKIFF_ICMP_E2E_CHILD";
const TARGET = "10.200.0.1";
/** Routed nowhere in "far": the host socket's send fails. */
const UNROUTABLE = "10.201.0.1";
/** Refused by the address policy (link-local, cloud metadata). */
const DENIED = "169.254.169.254";

interface ChildResult {
  mode: string;
  reason: string;
  warnings: string[];
  pings: Record<string, ExecResult>;
  flowsAfterIdle: number;
  counters: {
    flowsOpened: number;
    flowsExpired: number;
    requestsForwarded: number;
    repliesReturned: number;
    dropped: Record<string, number>;
  };
  stackDrops: Record<string, number>;
}

if (process.env[CHILD_ENV] === undefined) {
  describe("e2e: guest ping beyond the gateway, forwarded through skiff's host ICMP sockets", function () {
    this.timeout(120_000);
    requireNetns(["/dev/net/tun"]);
    let far: Netns;

    before(async () => {
      far = await createNetns("skiff-e2e-icmpfar");
      const r = await far.exec(["ip", "addr", "add", `${TARGET}/32`, "dev", "lo"]);
      expect(r.code, r.stderr).to.equal(0);
    });
    after(async () => {
      await far?.destroy();
    });

    for (const [mode, range] of [
      ["raw", "1 0"],
      ["dgram", "0 2147483647"],
    ] as const) {
      describe(`${mode} mode (net.ipv4.ping_group_range "${range}" in the host namespace)`, () => {
        let r: ChildResult;
        let out: ExecResult;

        before(async () => {
          const set = await far.exec(["sysctl", "-qw", `net.ipv4.ping_group_range=${range}`]);
          expect(set.code, set.stderr).to.equal(0);
          const c = await runChildInNetns<ChildResult>(far, import.meta.url, CHILD_ENV, mode);
          out = c.out;
          if (c.result === undefined) expect.fail(`child exited ${out.code}\n${out.stdout}\n${out.stderr}`);
          r = c.result;
        });

        const why = () => `${JSON.stringify(r.counters)} stack drops ${JSON.stringify(r.stackDrops)} (${r.reason})`;

        it(`chooses ${mode} mode, logs no warning, and the child exits cleanly`, () => {
          expect(r.mode, r.reason).to.equal(mode);
          expect(r.warnings).to.deep.equal([]);
          expect(out.code, out.stderr).to.equal(0);
        });

        it(`ping -c 3 ${TARGET} gets 3 replies from ${TARGET}`, () => {
          const p = r.pings.three;
          expect(p.code, p.stdout + p.stderr + why()).to.equal(0);
          expect(p.stdout).to.match(/3 packets transmitted, 3 received, 0% packet loss/);
          expect(p.stdout).to.match(new RegExp(`64 bytes from ${TARGET.replace(/\./g, "\\.")}: icmp_seq=1 `));
          expect(p.stdout).to.not.match(/wrong data|DUP!/);
        });

        it("two concurrent pings (two identifiers, two flows) each get all their replies", () => {
          for (const k of ["concurrentA", "concurrentB"]) {
            const p = r.pings[k];
            expect(p.code, k + p.stdout + p.stderr + why()).to.equal(0);
            expect(p.stdout).to.match(/5 packets transmitted, 5 received/);
            expect(p.stdout).to.not.match(/DUP!/);
          }
        });

        it("a 1472-byte ping (a full 1500-byte packet each way) is answered with its data intact", () => {
          const p = r.pings.big;
          expect(p.code, p.stdout + p.stderr + why()).to.equal(0);
          expect(p.stdout).to.match(new RegExp(`1480 bytes from ${TARGET.replace(/\./g, "\\.")}`));
          expect(p.stdout).to.not.match(/wrong data/);
        });

        it("a ping to an unroutable address times out; the host's send error is counted", () => {
          const p = r.pings.unroutable;
          expect(p.code).to.not.equal(0);
          expect(p.stdout).to.match(/2 packets transmitted, 0 received/);
          expect(r.counters.dropped["send-error"] ?? 0, why()).to.equal(2);
        });

        it("a ping to a refused address is answered 'administratively prohibited' by the gateway", () => {
          const p = r.pings.denied;
          expect(p.code).to.not.equal(0);
          expect(p.stdout).to.match(/From 192\.168\.65\.1 icmp_seq=1 Packet filtered/);
          expect(r.counters.dropped.denied, why()).to.equal(1);
        });

        it("counts what it forwarded and returned, and expires idle flows", () => {
          // 3 + 5 + 5 + 2 answered requests, 2 failed sends (not forwarded).
          expect(r.counters.requestsForwarded, why()).to.equal(15);
          expect(r.counters.repliesReturned, why()).to.equal(15);
          expect(r.counters.flowsOpened, why()).to.equal(5);
          expect(r.flowsAfterIdle).to.equal(0);
          expect(r.counters.flowsExpired).to.equal(5);
          expect(r.stackDrops["icmp-unhandled"] ?? 0).to.equal(0);
        });
      });
    }
  });
} else childMain(CHILD_ENV, child);

/** The child: runs in the "far" namespace; the stack and its ICMP sockets live here. */
async function child(expected: string): Promise<void> {
  const { startGuest } = await import("../support/guest.js");
  const { AddressPolicy } = await import("../../src/socket-translate/policy.js");
  const { IcmpTranslator } = await import("../../src/socket-translate/icmp-translator.js");
  const { until } = await import("../support/wait.js");
  const guest = await startGuest("skiff-e2e-icmpguest");
  const warnings: string[] = [];
  const log = {
    warn: (_o: unknown, msg: string) => warnings.push(msg),
    info: () => {},
    debug: () => {},
  } as unknown as import("pino").Logger;
  const policy = new AddressPolicy({ hostAliasIp: guest.stack.config.hostAliasIp });
  const icmp = new IcmpTranslator(guest.stack, policy, { log, idleMs: 1500 });
  const pings: Record<string, ExecResult> = {};
  let flowsAfterIdle = -1;
  try {
    if (icmp.mode === expected) {
      const ping = (args: string[]) => guest.ns.exec(["ping", "-n", ...args], 20_000);
      pings.three = await ping(["-c", "3", "-i", "0.2", "-W", "2", TARGET]);
      [pings.concurrentA, pings.concurrentB] = await Promise.all([
        ping(["-c", "5", "-i", "0.2", "-W", "2", TARGET]),
        ping(["-c", "5", "-i", "0.2", "-W", "2", TARGET]),
      ]);
      pings.big = await ping(["-c", "2", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", TARGET]);
      pings.unroutable = await ping(["-c", "2", "-i", "0.2", "-W", "1", UNROUTABLE]);
      pings.denied = await ping(["-c", "1", "-W", "1", DENIED]);
      await until(() => icmp.size === 0, 6000, "idle ICMP flows expired").catch(() => {});
      flowsAfterIdle = icmp.size;
    }
    const c = icmp.counters;
    const result: ChildResult = {
      mode: icmp.mode,
      reason: icmp.reason,
      warnings,
      pings,
      flowsAfterIdle,
      counters: {
        flowsOpened: c.flowsOpened,
        flowsExpired: c.flowsExpired,
        requestsForwarded: c.requestsForwarded,
        repliesReturned: c.repliesReturned,
        dropped: { ...c.drops } as Record<string, number>,
      },
      stackDrops: { ...guest.stack.counters.drops } as Record<string, number>,
    };
    printResult(result);
  } finally {
    icmp.closeAll();
    await guest.close();
  }
  process.exit(0);
}
