/**
 * Forward specifications: docker's `-p` syntax (ranges, protocols, host address) and the
 * control API's JSON validation. Every refusal is a message naming the problem; nothing throws.
 */
import { expect } from "chai";
import fc from "fast-check";
import { parsePublish, validateForward } from "../../src/forward/spec.js";

const G = "192.168.65.3";
const G6 = "fd73:6b69:6666:0:5054:ff:fe65:3";

describe("forward/spec: -p [hostAddr:]hostPort:guestPort[/udp]", () => {
  it("hostPort:guestPort defaults to TCP on 127.0.0.1", () => {
    expect(parsePublish("8080:80", G)).to.deep.equal([{ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 8080, guestAddr: G, guestPort: 80 }]);
  });

  it("takes a host address and /udp", () => {
    expect(parsePublish("0.0.0.0:5353:53/udp", G)).to.deep.equal([{ proto: "udp", hostAddr: "0.0.0.0", hostPort: 5353, guestAddr: G, guestPort: 53 }]);
  });

  it("takes a bracketed IPv6 host address ([::1], [::])", () => {
    expect(parsePublish("[::1]:8080:80", G)).to.deep.equal([{ proto: "tcp", hostAddr: "::1", hostPort: 8080, guestAddr: G, guestPort: 80 }]);
    expect(parsePublish("[::]:5353:53/udp", G)).to.deep.equal([{ proto: "udp", hostAddr: "::", hostPort: 5353, guestAddr: G, guestPort: 53 }]);
    expect(validateForward({ hostAddr: "::1", hostPort: 8080, guestPort: 80 }, G)).to.deep.include({ hostAddr: "::1" });
  });

  it("takes a guest address before the guest port: IPv4 bare, IPv6 in brackets", () => {
    expect(parsePublish("8080:192.168.65.4:80", G)).to.deep.equal([{ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 8080, guestAddr: "192.168.65.4", guestPort: 80 }]);
    expect(parsePublish("[::1]:8080:[fd73:6b69:6666::100]:80", G)).to.deep.equal([{ proto: "tcp", hostAddr: "::1", hostPort: 8080, guestAddr: "fd73:6b69:6666::100", guestPort: 80 }]);
    expect(parsePublish("127.0.0.1:5353:[fd73:6b69:6666::100]:53/udp", G)).to.deep.equal([{ proto: "udp", hostAddr: "127.0.0.1", hostPort: 5353, guestAddr: "fd73:6b69:6666::100", guestPort: 53 }]);
    expect(parsePublish("9000:[fd73:6b69:6666::100]:90", G, G6)).to.deep.equal([{ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 9000, guestAddr: "fd73:6b69:6666::100", guestPort: 90 }]);
  });

  it("with a known guest IPv6 address, TCP on an IPv6 host address goes there, falling back to IPv4; UDP and IPv4 listeners stay on IPv4", () => {
    expect(parsePublish("[::1]:8080:80", G, G6)).to.deep.equal([{ proto: "tcp", hostAddr: "::1", hostPort: 8080, guestAddr: G6, guestPort: 80, guestAddrFallback: G }]);
    expect(parsePublish("[::]:5353:53/udp", G, G6)).to.deep.equal([{ proto: "udp", hostAddr: "::", hostPort: 5353, guestAddr: G, guestPort: 53 }]);
    expect(parsePublish("8080:80", G, G6)).to.deep.equal([{ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 8080, guestAddr: G, guestPort: 80 }]);
    expect(validateForward({ hostAddr: "::1", hostPort: 8080, guestPort: 80 }, G, G6)).to.deep.equal({ proto: "tcp", hostAddr: "::1", hostPort: 8080, guestAddr: G6, guestPort: 80, guestAddrFallback: G });
    expect(validateForward({ hostAddr: "::1", hostPort: 8080, guestPort: 80, guestAddr: "fd73:6b69:6666::7" }, G, G6)).to.deep.equal({ proto: "tcp", hostAddr: "::1", hostPort: 8080, guestAddr: "fd73:6b69:6666::7", guestPort: 80 });
  });

  it("expands equal ranges port by port", () => {
    const r = parsePublish("8000-8002:9000-9002/tcp", G);
    expect(r).to.deep.equal([8000, 8001, 8002].map((p, i) => ({ proto: "tcp", hostAddr: "127.0.0.1", hostPort: p, guestAddr: G, guestPort: 9000 + i })));
  });

  for (const [text, why] of [
    ["80", /expected \[hostAddr:\]hostPort:\[guestAddr:\]guestPort/],
    ["8080:80/sctp", /unknown protocol "sctp"/],
    ["localhost:8080:80", /not an IPv4 address or a bracketed IPv6 address: "localhost"/],
    ["::1:8080:80", /expected/],
    ["[127.0.0.1]:8080:80", /not an IPv4 address or a bracketed IPv6 address/],
    ["[fe80::1%eth0]:8080:80", /not an IPv4 address or a bracketed IPv6 address/],
    ["70000:80", /bad host port "70000"/],
    ["8080:0", /bad guest port "0"/],
    ["8000-8002:80", /host range has 3 ports, guest range 1/],
    ["8002-8000:80-82", /bad host port "8002-8000"/],
    ["a:b:c:d", /not an IPv4 address or a bracketed IPv6 address: "a"/],
    ["8080:[::1:80", /expected/],
    ["8080:[fd00::x]:80", /guest address: not an IPv4 address or a bracketed IPv6 address: "\[fd00::x\]"/],
    ["8080:fd00::1:80", /expected/],
    ["1.2.3.4:8080:[::1]:80:90", /expected/],
  ] as const) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const r = parsePublish(text, G);
      expect(r).to.be.a("string");
      expect(r as string).to.match(why);
      expect(r as string).to.contain(JSON.stringify(text));
    });
  }

  it("never throws, and every result is a message or ports in range", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (s) => {
        const r = parsePublish(s, G);
        if (typeof r === "string") return;
        for (const x of r) {
          expect(x.hostPort).to.be.within(1, 65535);
          expect(x.guestPort).to.be.within(1, 65535);
        }
      }),
    );
  });
});

describe("forward/spec: POST /forwards body validation", () => {
  it("fills defaults (tcp, 127.0.0.1, the default guest)", () => {
    expect(validateForward({ hostPort: 8080, guestPort: 80 }, G)).to.deep.equal({ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 8080, guestAddr: G, guestPort: 80 });
  });

  for (const [body, why] of [
    [null, /expected a JSON object/],
    [[1], /expected a JSON object/],
    [{ hostPort: 1, guestPort: 2, extra: 1 }, /unknown field "extra"/],
    [{ proto: "sctp", hostPort: 1, guestPort: 2 }, /proto: expected "tcp" or "udp"/],
    [{ hostAddr: "1.2.3", hostPort: 1, guestPort: 2 }, /hostAddr: not an IPv4 or IPv6 address/],
    [{ hostPort: "80", guestPort: 2 }, /hostPort: expected an integer/],
    [{ hostPort: 65536, guestPort: 2 }, /hostPort: expected an integer in 0\.\.65535, got 65536/],
    [{ hostPort: 1, guestPort: 0 }, /guestPort: expected an integer in 1\.\.65535/],
    [{ hostPort: 1, guestPort: 1.5 }, /guestPort/],
    [{ hostPort: 1, guestPort: 2, guestAddr: "x" }, /guestAddr: not an IPv4 or IPv6 address: "x"/],
    [{ hostPort: 1, guestPort: 2, guestAddr: "fe80::1%eth0" }, /guestAddr: not an IPv4 or IPv6 address/],
    [{ hostPort: 1, guestPort: 2, guestAddr: "fd00::1", guestAddrFallback: "fd00::2" }, /guestAddrFallback: not an IPv4 address: "fd00::2"/],
    [{ hostPort: 1, guestPort: 2, guestAddrFallback: "192.168.65.4" }, /guestAddrFallback: only for a TCP forward to an IPv6 guestAddr/],
    [{ proto: "udp", hostPort: 1, guestPort: 2, guestAddr: "fd00::1", guestAddrFallback: "192.168.65.4" }, /guestAddrFallback: only for a TCP forward/],
  ] as const) {
    it(`refuses ${JSON.stringify(body)}`, () => {
      const r = validateForward(body, G);
      expect(r).to.be.a("string");
      expect(r as string).to.match(why);
    });
  }

  it("needs a guest address when there is no default", () => {
    expect(validateForward({ hostPort: 1, guestPort: 2 })).to.equal("guestAddr: missing");
  });
});
