/**
 * `skiff slirp4netns`'s command line (src/cli/slirp4netns-args.ts): the exact argument lists
 * RootlessKit 1.1 and Podman 4.3 pass, getopt-style forms, the help text's feature names the
 * callers grep for, and errors for what is wrong or unsupported.
 */
import { expect } from "chai";
import { parseSlirpArgs, slirpHelpText, slirpVersionText } from "../../src/cli/slirp4netns-args.js";
import { slirpAddresses } from "../../src/cli/slirp4netns.js";

describe("skiff slirp4netns: command line", () => {
  it("takes RootlessKit 1.1's arguments", () => {
    const p = parseSlirpArgs(["--mtu", "65520", "-r", "3", "--disable-host-loopback", "--api-socket", "/run/x/.bp.sock", "--enable-sandbox", "--enable-seccomp", "4242", "tap0"]);
    expect(p.kind).to.equal("run");
    if (p.kind !== "run") return;
    expect(p.opts).to.include({ mtu: 65520, readyFd: 3, disableHostLoopback: true, apiSocket: "/run/x/.bp.sock", enableSandbox: true, enableSeccomp: true, target: "4242", tap: "tap0", netnsType: "pid", configure: false });
  });

  it("takes Podman 4.3's arguments (= forms, -c -e -r, --netns-type=path)", () => {
    const p = parseSlirpArgs(["--disable-host-loopback", "--mtu=65520", "--enable-sandbox", "--enable-seccomp", "-c", "-e", "3", "-r", "4", "--netns-type=path", "/run/user/1000/netns/netns-1", "tap0"]);
    expect(p.kind).to.equal("run");
    if (p.kind !== "run") return;
    expect(p.opts).to.include({ configure: true, exitFd: 3, readyFd: 4, mtu: 65520, netnsType: "path", target: "/run/user/1000/netns/netns-1", tap: "tap0" });
  });

  it("takes attached short values and options after operands, and -- ends options", () => {
    const p = parseSlirpArgs(["12", "-r3", "tap1", "--cidr=10.9.0.0/16", "--userns-path", "/proc/12/ns/user"]);
    expect(p.kind === "run" && p.opts).to.include({ readyFd: 3, target: "12", tap: "tap1", cidr: "10.9.0.0/16", usernsPath: "/proc/12/ns/user" });
    const q = parseSlirpArgs(["--netns-type=path", "--", "-weird", "tap0"]);
    expect(q.kind === "run" && q.opts.target).to.equal("-weird");
  });

  it("refuses what is wrong, naming it", () => {
    const msg = (a: string[]) => {
      const p = parseSlirpArgs(a);
      return p.kind === "error" ? p.message : `no error (${p.kind})`;
    };
    expect(msg(["--bogus", "1", "tap0"])).to.match(/unrecognized option '--bogus'/);
    expect(msg(["-m", "70000", "1", "tap0"])).to.match(/MTU/);
    expect(msg(["-r", "x", "1", "tap0"])).to.match(/ready-fd must be a non-negative integer/);
    expect(msg(["abc", "tap0"])).to.match(/PID must be a positive integer/);
    expect(msg(["1"])).to.match(/TAPNAME/);
    expect(msg(["1", "tap0", "extra"])).to.match(/too many arguments/);
    expect(msg(["--macaddress=02:00:00:00:00:01", "1", "tap0"])).to.match(/--configure/);
    expect(msg(["--outbound-addr=10.0.0.1", "1", "tap0"])).to.match(/not supported by skiff/);
    expect(msg(["--netns-type=tapfd", "3", "tap0"])).to.match(/pid or path/);
    expect(msg(["--mtu"])).to.match(/requires an argument/);
  });

  it("help lists every flag RootlessKit and Podman detect; -h, --help, -v, --version", () => {
    const help = slirpHelpText("slirp4netns");
    for (const f of ["--netns-type", "--enable-ipv6", "--cidr", "--disable-host-loopback", "--api-socket", "--enable-sandbox", "--enable-seccomp", "--mtu", "--userns-path", "--ready-fd", "--exit-fd", "--configure"]) {
      expect(help, f).to.include(f);
    }
    expect(help).not.to.include("--outbound-addr"); // Podman would pass it when asked: skiff has none
    expect(parseSlirpArgs(["-h"]).kind).to.equal("help");
    expect(parseSlirpArgs(["--version"]).kind).to.equal("version");
    expect(parseSlirpArgs(["-v"]).kind).to.equal("version");
    expect(slirpVersionText("0.1.0").split("\n")[0]).to.match(/^slirp4netns version \d+\.\d+\.\d+/);
  });

  it("slirp4netns's addresses for --cidr: host .2, DNS .3, guest .100; a /26 is too small", () => {
    expect(slirpAddresses("10.0.2.0/24")).to.deep.equal({ network: "10.0.2.0", mask: "255.255.255.0", host: "10.0.2.2", dns: "10.0.2.3", guest: "10.0.2.100", prefix: 24 });
    expect(slirpAddresses("10.9.0.0/16")).to.include({ host: "10.9.0.2", dns: "10.9.0.3", guest: "10.9.0.100", mask: "255.255.0.0" });
    expect(() => slirpAddresses("10.0.2.0/26")).to.throw(/too small/);
  });
});
