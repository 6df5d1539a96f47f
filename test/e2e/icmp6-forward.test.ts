/**
 * End to end: ICMPv6 echo from a kernel guest forwarded through skiff's host ICMPv6 sockets in
 * both modes (RFC 4443 §4.1, §4.2; src/socket-translate/icmp6-translator.ts): raw
 * (`ping_group_range` "1 0", root) and unprivileged datagram sockets ("0 2147483647"). As in
 * icmp-forward.test.ts, the "host" is a namespace of its own ("far") whose loopback also holds
 * fd00:200::1/128: the stack runs in a child process started in "far" (an ICMP socket belongs to
 * the namespace it is made in), pings the host alias (far's ::1) and that address from the
 * guest, and prints one RESULT line; the assertions are here. Nothing leaves the machine.
 */
import { expect } from "chai";
import { createNetns, requireNetns, type ExecResult, type Netns } from "../support/netns.js";
import { childMain, printResult, runChildInNetns } from "../support/netns-child.js";

const CHILD_ENV = "SKIFF_ICMP6_E2E_CHILD";
const TARGET = "fd00:200::1";
const ALIAS6 = "fd73:6b69:6666::2";

interface ChildResult {
  mode: string;
  reason: string;
  pings: Record<string, ExecResult>;
  counters: { requestsForwarded: number; repliesReturned: number; flowsOpened: number };
}

if (process.env[CHILD_ENV] === undefined) {
  describe("e2e: guest ping -6 beyond the gateway, forwarded through skiff's host ICMPv6 sockets", function () {
    this.timeout(120_000);
    requireNetns(["/dev/net/tun"]);
    let far: Netns;

    before(async () => {
      far = await createNetns("skiff-e2e-icmp6far");
      const r = await far.exec(["ip", "-6", "addr", "add", `${TARGET}/128`, "dev", "lo"]);
      expect(r.code, r.stderr).to.equal(0);
    });
    after(async () => {
      await far?.destroy();
    });

    for (const [mode, range] of [
      ["raw", "1 0"],
      ["dgram", "0 2147483647"],
    ] as const) {
      it(`${mode} mode (ping_group_range "${range}"): the alias (the host's ::1) and ${TARGET} answer every echo, from the right source`, async () => {
        const set = await far.exec(["sysctl", "-qw", `net.ipv4.ping_group_range=${range}`]);
        expect(set.code, set.stderr).to.equal(0);
        const { out, result: r } = await runChildInNetns<ChildResult>(far, import.meta.url, CHILD_ENV, mode);
        if (r === undefined) expect.fail(`child exited ${out.code}\n${out.stdout}\n${out.stderr}`);
        expect(r.mode, r.reason).to.equal(mode);
        for (const [k, from] of [["alias", ALIAS6], ["far", TARGET], ["big", TARGET]] as const) {
          const p = r.pings[k];
          expect(p.code, `${k}: ${p.stdout}${p.stderr} ${JSON.stringify(r.counters)}`).to.equal(0);
          expect(p.stdout).to.match(/3 packets transmitted, 3 received/);
          expect(p.stdout).to.include(`from ${from}`);
          expect(p.stdout).to.not.match(/wrong data|DUP!/);
        }
        expect(r.counters).to.deep.equal({ requestsForwarded: 9, repliesReturned: 9, flowsOpened: 3 });
      });
    }
  });
} else childMain(CHILD_ENV, child);

/** The child: runs in the "far" namespace; the stack and its ICMPv6 sockets live here. */
async function child(expected: string): Promise<void> {
  const { startGuest } = await import("../support/guest.js");
  const { AddressPolicy } = await import("../../src/socket-translate/policy.js");
  const { Icmp6Translator } = await import("../../src/socket-translate/icmp6-translator.js");
  const guest = await startGuest("skiff-e2e-icmp6guest", { ipv6: "fd73:6b69:6666::3" });
  const policy = new AddressPolicy({ hostAliasIp: guest.stack.config.hostAliasIp });
  const icmp6 = new Icmp6Translator(guest.stack, policy);
  const pings: Record<string, ExecResult> = {};
  try {
    if (icmp6.mode === expected) {
      const ping = (args: string[]) => guest.ns.exec(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", ...args], 20_000);
      pings.alias = await ping([ALIAS6]);
      pings.far = await ping([TARGET]);
      pings.big = await ping(["-s", "1400", TARGET]);
    }
    const c = icmp6.counters;
    const result: ChildResult = { mode: icmp6.mode, reason: icmp6.reason, pings, counters: { requestsForwarded: c.requestsForwarded, repliesReturned: c.repliesReturned, flowsOpened: c.flowsOpened } };
    printResult(result);
  } finally {
    icmp6.closeAll();
    await guest.close();
  }
  process.exit(0);
}
