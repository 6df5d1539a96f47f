/**
 * End to end: ICMPv6 echo from a kernel guest (a namespace behind TAP) to the host alias goes
 * through skiff's host ICMPv6 socket to the host's ::1 and the host's replies come back
 * (RFC 4443 §4.1, §4.2; src/socket-translate/icmp6-translator.ts), in whichever mode this host
 * allows (raw as root with the default `ping_group_range`, datagram otherwise); the counters
 * show every request forwarded and every reply returned. Only loopback is pinged.
 */
import { expect } from "chai";
import { requireNetns } from "../support/netns.js";
import { startGuest, type Guest } from "../support/guest.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { Icmp6Translator } from "../../src/socket-translate/icmp6-translator.js";

describe("e2e: ping -6 from the guest to the host alias, through host ICMPv6 sockets", function () {
  this.timeout(60_000);
  requireNetns(["/dev/net/tun"]);

  let guest: Guest;
  let icmp6: Icmp6Translator;

  before(async () => {
    guest = await startGuest("skiff-e2e-ping6", { mtu: 1500, ipv6: "fd73:6b69:6666::3" });
    const policy = new AddressPolicy({ hostAliasIp: guest.stack.config.hostAliasIp });
    icmp6 = new Icmp6Translator(guest.stack, policy);
  });

  after(async () => {
    icmp6?.closeAll();
    await guest?.close();
  });

  it("3 of 3 echo requests answered by the host's ::1 (small and 1200-byte payloads)", async function () {
    if (icmp6.mode === "disabled") {
      console.log(`    skipped: no ICMPv6 socket on this host: ${icmp6.reason}`);
      this.skip();
    }
    for (const size of ["56", "1200"]) {
      const r = await guest.ns.exec(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", size, "fd73:6b69:6666::2"]);
      expect(r.code, `${r.stdout} ${r.stderr}`).to.equal(0);
      expect(r.stdout).to.match(/3 received/);
      expect(r.stdout).to.include("from fd73:6b69:6666::2");
    }
    expect(icmp6.counters.snapshot(), `mode ${icmp6.mode}`).to.include({ requestsForwarded: 6, repliesReturned: 6 });
  });
});
