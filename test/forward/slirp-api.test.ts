/**
 * slirp4netns's API socket requests (src/forward/slirp-api.ts) against a recording stand-in for
 * the forward manager: the replies' exact JSON (as slirp4netns 1.2's api.c writes them), ids,
 * defaults (host_addr 0.0.0.0, guest_addr the guest's), and each error.
 */
import { expect } from "chai";
import { SlirpApi } from "../../src/forward/slirp-api.js";
import type { ForwardManager } from "../../src/forward/manager.js";
import type { ForwardSpec } from "../../src/forward/spec.js";

function fakeManager(failWith?: string) {
  const added: ForwardSpec[] = [];
  const removed: string[] = [];
  let next = 7;
  const m = {
    async add(specs: ForwardSpec[]) {
      if (failWith) throw new Error(failWith);
      added.push(...specs);
      return specs.map((s) => ({ ...s, id: String(next++) }));
    },
    async remove(id: string) {
      removed.push(id);
      return true;
    },
  };
  return { m: m as unknown as ForwardManager, added, removed };
}

describe("skiff slirp4netns: API socket requests", () => {
  it("add_hostfwd, list_hostfwd, remove_hostfwd", async () => {
    const f = fakeManager();
    const api = new SlirpApi(f.m, "10.0.2.100");
    expect(await api.handle('{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}}')).to.equal('{"return":{"id":1}}');
    expect(await api.handle('{"execute":"add_hostfwd","arguments":{"proto":"udp","host_port":5353,"guest_port":53}}')).to.equal('{"return":{"id":2}}');
    expect(f.added).to.deep.equal([
      { proto: "tcp", hostAddr: "127.0.0.1", hostPort: 8080, guestAddr: "10.0.2.100", guestPort: 80 },
      { proto: "udp", hostAddr: "0.0.0.0", hostPort: 5353, guestAddr: "10.0.2.100", guestPort: 53 },
    ]);
    expect(JSON.parse(await api.handle('{"execute":"list_hostfwd"}'))).to.deep.equal({
      entries: [
        { id: 1, proto: "tcp", host_addr: "127.0.0.1", host_port: 8080, guest_addr: "10.0.2.100", guest_port: 80 },
        { id: 2, proto: "udp", host_addr: "0.0.0.0", host_port: 5353, guest_addr: "10.0.2.100", guest_port: 53 },
      ],
    });
    expect(await api.handle('{"execute":"remove_hostfwd","arguments":{"id":1}}')).to.equal('{"return":{}}');
    expect(f.removed).to.deep.equal(["7"]);
    expect(await api.handle('{"execute":"remove_hostfwd","arguments":{"id":1}}')).to.equal('{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}');
    expect(JSON.parse(await api.handle('{"execute":"list_hostfwd"}')).entries).to.have.length(1);
  });

  it("answers bad requests with slirp4netns's errors", async () => {
    const api = new SlirpApi(fakeManager().m, "10.0.2.100");
    const desc = async (t: string) => (JSON.parse(await api.handle(t)) as { error: { desc: string } }).error.desc;
    expect(await desc("{nope")).to.equal("bad request: cannot parse JSON");
    expect(await desc("[1]")).to.equal("bad request: json_object() failed");
    expect(await desc("{}")).to.equal("bad request: no execute found");
    expect(await desc('{"execute":"quit"}')).to.equal("bad request: unknown execute");
    expect(await desc('{"execute":"add_hostfwd","arguments":{"proto":"sctp","host_port":1,"guest_port":1}}')).to.equal("bad request: add_hostfwd: bad arguments.proto");
    expect(await desc('{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"x","host_port":1,"guest_port":1}}')).to.equal("bad request: add_hostfwd: bad arguments.host_addr");
    expect(await desc('{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":0,"guest_port":1}}')).to.equal("bad request: add_hostfwd: bad arguments.host_port");
    expect(await desc('{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_addr":"::1","guest_port":1}}')).to.equal("bad request: add_hostfwd: bad arguments.guest_addr");
    expect(await desc('{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_port":70000}}')).to.equal("bad request: add_hostfwd: bad arguments.guest_port");
    expect(await desc(" ".repeat(4096))).to.equal("bad request: too large message");
  });

  it("a forward that cannot open is an error, and takes no id", async () => {
    const api = new SlirpApi(fakeManager("port 80: EACCES").m, "10.0.2.100");
    expect(await api.handle('{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":80,"guest_port":80}}')).to.match(/"bad request: add_hostfwd: slirp_add_hostfwd failed \(port 80: EACCES\)"/);
    expect(await api.handle('{"execute":"list_hostfwd"}')).to.equal('{"entries":[]}');
  });
});
