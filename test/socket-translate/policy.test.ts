import { expect } from "chai";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { parseIpv4Address } from "../../src/common/addr.js";

const ip = (s: string) => parseIpv4Address(s)!;
const ALIAS = ip("192.168.65.2");

describe("socket-translate/policy", () => {
  it("maps the host alias to 127.0.0.1, or refuses it when host loopback is off", () => {
    expect(new AddressPolicy({ hostAliasIp: ALIAS }).resolve(ALIAS)).to.deep.equal({ ok: true, host: "127.0.0.1", ip: 0x7f000001 });
    expect(new AddressPolicy({ hostAliasIp: ALIAS, hostLoopback: false }).resolve(ALIAS)).to.deep.equal({ ok: false, reason: "host-loopback-disabled" });
  });

  it("blocks the link-local metadata range by default, and whatever the deny list says instead", () => {
    const def = new AddressPolicy({ hostAliasIp: ALIAS });
    expect(def.resolve(ip("169.254.169.254"))).to.deep.equal({ ok: false, reason: "denied" });
    expect(def.resolve(ip("10.1.2.3"))).to.deep.equal({ ok: true, host: "10.1.2.3", ip: ip("10.1.2.3") });
    const custom = new AddressPolicy({ hostAliasIp: ALIAS, deny: ["10.0.0.0/8", "192.168.65.2"] });
    expect(custom.resolve(ip("10.1.2.3"))).to.deep.equal({ ok: false, reason: "denied" });
    expect(custom.resolve(ALIAS)).to.deep.equal({ ok: false, reason: "denied" });
    expect(custom.resolve(ip("169.254.169.254"))).to.deep.equal({ ok: true, host: "169.254.169.254", ip: ip("169.254.169.254") });
  });

  it("refuses addresses that are never a unicast host", () => {
    const p = new AddressPolicy({ hostAliasIp: ALIAS });
    for (const a of ["0.0.0.0", "127.0.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"]) {
      expect(p.resolve(ip(a)), a).to.deep.equal({ ok: false, reason: "not-unicast" });
    }
  });

  it("rejects a malformed CIDR with a message naming it", () => {
    expect(() => new AddressPolicy({ hostAliasIp: ALIAS, deny: ["10.0.0.0/33"] })).to.throw(/10\.0\.0\.0\/33/);
  });
});
