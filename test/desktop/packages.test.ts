/** Parsing apt-cache output and the library closure (src/desktop/packages.ts), on recorded output. */
import { expect } from "chai";
import { libraryClosure, parseDepends, parsePolicy } from "../../src/desktop/packages.js";

const DEPENDS = `docker.io
  PreDepends: init-system-helpers
  Depends: libc6
  Depends: libdevmapper1.02.1
  Depends: libsystemd0
  Depends: adduser
  Depends: containerd
 |Depends: iptables
  Depends: nftables
  Depends: <lsb-base>
  Recommends: ca-certificates
libsystemd0
  Depends: libc6
  Depends: libcap2
  Depends: liblz4-1
libc6
  Depends: libgcc-s1
  Breaks: libnss-db
`;

describe("desktop/packages: apt-cache output", () => {
  it("Depends and PreDepends, first alternative of an or-group, no virtual packages, no Recommends/Breaks", () => {
    const m = parseDepends(DEPENDS);
    expect(m.get("docker.io")).to.deep.equal(["init-system-helpers", "libc6", "libdevmapper1.02.1", "libsystemd0", "adduser", "containerd", "iptables"]);
    expect(m.get("libsystemd0")).to.deep.equal(["libc6", "libcap2", "liblz4-1"]);
    expect(m.get("libc6")).to.deep.equal(["libgcc-s1"]);
  });

  it("candidate versions; (none) is no candidate", () => {
    const m = parsePolicy(`docker.io:
  Installed: (none)
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
     20.10.24+dfsg1-1+deb12u1+b6 500
docker-cli:
  Installed: (none)
  Candidate: (none)
`);
    expect([...m]).to.deep.equal([["docker.io", "20.10.24+dfsg1-1+deb12u1+b6"]]);
  });

  it("the closure follows lib* packages level by level and skips the others", () => {
    const graph: Record<string, string[]> = { a: ["libx", "adduser"], libx: ["liby", "libc6"], liby: ["libc6", "libx"], libc6: ["libgcc-s1"], adduser: ["libnotwanted"] };
    const calls: string[][] = [];
    const got = libraryClosure(["a"], (pkgs) => {
      calls.push(pkgs);
      return new Map(pkgs.map((p) => [p, graph[p] ?? []]));
    });
    expect(got).to.deep.equal(["libc6", "libgcc-s1", "libx", "liby"]);
    expect(calls).to.deep.equal([["a"], ["libx"], ["liby", "libc6"], ["libgcc-s1"]]);
  });
});
