/**
 * The descriptor budget (src/socket-translate/fd-budget.ts): raising the soft open-file limit
 * to the hard one (with a stand-in addon, and the real one in this process), the budget's
 * arithmetic, refusal past it with one warning per episode, and UDP translation dropping new
 * flows past it. The end-to-end proof under a lowered limit is test/e2e/fd-budget.test.ts.
 */
import { expect } from "chai";
import { pino } from "pino";
import { Writable } from "node:stream";
import { FdBudget, raiseFileLimit } from "../../src/socket-translate/fd-budget.js";
import { loadAddon, type FileLimitAddon } from "../../src/native/addon.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { UdpTranslator } from "../../src/socket-translate/udp-translator.js";
import { AddressPolicy } from "../../src/socket-translate/policy.js";
import { RecordingChannel, GUEST_MAC, GUEST_IP, HOST_IP } from "../support/stack.js";
import { udpFrame } from "../support/frames.js";

function recordingLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

function fakeAddon(soft: number, hard: number, setResult = 0): FileLimitAddon & { calls: number[][] } {
  const calls: number[][] = [];
  return {
    calls,
    getNofile: () => [soft, hard],
    setNofile: (s, h) => {
      calls.push([s, h]);
      return setResult;
    },
  };
}

describe("socket-translate/fd-budget", () => {
  it("raises the soft limit to the hard one, and only when below it", () => {
    const a = fakeAddon(1024, 4096);
    expect(raiseFileLimit(undefined, a)).to.deep.equal({ soft: 4096, hard: 4096, raised: true });
    expect(a.calls).to.deep.equal([[4096, 4096]]);
    const b = fakeAddon(4096, 4096);
    expect(raiseFileLimit(undefined, b)).to.deep.equal({ soft: 4096, hard: 4096, raised: false });
    expect(b.calls).to.deep.equal([]);
    // An unlimited hard limit: the soft one goes to the cap.
    expect(raiseFileLimit(undefined, fakeAddon(1024, Infinity), 65536)?.soft).to.equal(65536);
  });

  it("leaves the limit unchanged and says so when it cannot read or raise it", () => {
    const { log, lines } = recordingLog();
    const broken: FileLimitAddon = { getNofile: () => -1, setNofile: () => 0 };
    expect(raiseFileLimit(log, broken)).to.equal(undefined);
    expect(raiseFileLimit(log, fakeAddon(100, 200, -1))).to.deep.equal({ soft: 100, hard: 200, raised: false });
    expect(lines.map((l) => l.msg)).to.deep.equal(["fd budget: getrlimit failed; the open-file limit is left unchanged", "fd budget: could not raise the open-file limit"]);
  });

  it("the real addon: getNofile/setNofile round-trip in this process", () => {
    const a = loadAddon("tests");
    const before = a.getNofile();
    if (typeof before === "number") throw new Error(`getNofile: ${before}`);
    const [soft, hard] = before;
    const lower = Math.min(soft, 512);
    expect(a.setNofile(lower, hard)).to.equal(0);
    expect(a.getNofile()).to.deep.equal([lower, hard]);
    expect(raiseFileLimit(undefined, a, soft)?.soft).to.equal(Math.min(hard, soft));
    expect(a.getNofile()).to.deep.equal([soft, hard]);
  });

  it("budget = limit - reserve - baseline; past it tryAcquire refuses, counts, and warns once per episode", () => {
    const { log, lines } = recordingLog();
    const b = new FdBudget({ limit: 300, reserve: 256, baseline: 40, log });
    expect(b.size).to.equal(4);
    for (let i = 0; i < 4; i++) expect(b.tryAcquire()).to.equal(true);
    expect(b.tryAcquire()).to.equal(false);
    expect(b.tryAcquire()).to.equal(false);
    expect(b.counters).to.deep.include({ inUse: 4, refused: 2, exhausted: 1 });
    const warns = () => lines.filter((l) => l.level === 40).length;
    expect(warns()).to.equal(1);
    b.release();
    b.release(); // 2 of 4 in use: below 90 %, recovered (logged)
    expect(lines.some((l) => /recovered/.test(l.msg))).to.equal(true);
    expect(b.tryAcquire() && b.tryAcquire()).to.equal(true);
    expect(b.tryAcquire()).to.equal(false);
    expect(warns()).to.equal(2);
    expect(b.counters.exhausted).to.equal(2);
  });

  it("without a known limit there is no budget", () => {
    const b = new FdBudget({});
    expect(b.size).to.equal(Infinity);
    for (let i = 0; i < 1000; i++) expect(b.tryAcquire()).to.equal(true);
  });

  it("UDP translation drops (and counts) a new flow past the budget; existing flows keep working", () => {
    const stack = new NetworkStack({ now: () => 0 });
    const port = stack.attach(new RecordingChannel());
    const fds = new FdBudget({ limit: 258, reserve: 256, baseline: 0 });
    const udp = new UdpTranslator(stack, new AddressPolicy({ hostAliasIp: HOST_IP }), { fds, hostSockets: "node" });
    try {
      for (let i = 0; i < 4; i++) stack.receive(port, udpFrame(GUEST_MAC, GUEST_IP, 7000 + i, HOST_IP, 9, Uint8Array.of(1)));
      expect(udp.size).to.equal(2);
      expect(udp.counters.fdBudgetRefused).to.equal(2);
      stack.receive(port, udpFrame(GUEST_MAC, GUEST_IP, 7000, HOST_IP, 9, Uint8Array.of(1)));
      expect(udp.counters.datagramsToHost).to.equal(3);
    } finally {
      udp.closeAll();
    }
    expect(fds.counters.inUse).to.equal(0);
  });
});
