/**
 * The gateway's services assembled (network/services.ts): `leases()` lists the guests' addresses — a static
 * lease shows even though no DHCP client asked for it (skiff run configures its guest
 * statically, so the control API's GET /leases used to be empty) — and closing it leaves
 * nothing that keeps the process alive.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { pino } from "pino";
import { NetworkServices as Network } from "../../src/network/services.js";
import { root } from "../support/cli.js";

const MAC = 0x5254_0065_0003;
const log = pino({ level: "silent" });

describe("network/services: the assembled network", function () {
  it("leases() lists static leases no client has asked for yet, and ones added while running", () => {
    const net = new Network({ mtu: 1500, log, staticLeases: [{ mac: MAC, ip: 0xc0a8_4103 }] });
    try {
      expect(net.leases()).to.deep.equal([{ mac: MAC, ip: 0xc0a8_4103, expiresAt: Infinity, static: true }]);
      net.setStaticLeases([{ mac: MAC + 1, ip: 0xc0a8_4104 }]);
      expect(net.leases().map((l) => l.ip)).to.deep.equal([0xc0a8_4103, 0xc0a8_4104]);
    } finally {
      net.close();
    }
  });

  it("a process that builds a network and closes it exits by itself (a bad option too)", function () {
    this.timeout(20_000);
    const script = [
      'import { pino } from "pino";',
      'import { NetworkServices as Network } from "./src/network/services.ts";',
      'const log = pino({ level: "silent" });',
      "new Network({ mtu: 1500, log }).close();",
      'try { new Network({ mtu: 1500, log, dnsRecords: ["foo"] }); } catch {}',
      'try { new Network({ mtu: 1500, log, subnet: "10.0.0.0/30", staticLeases: [{ mac: 1, ip: 0x0a000003 }] }); } catch {}',
      'console.log("done");',
    ].join("\n");
    // Would be killed (and throw) after 8 s if anything kept its event loop alive.
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8", timeout: 8000 });
    expect(out.trim()).to.equal("done");
  });
});
