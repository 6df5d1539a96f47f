import { expect } from "chai";
import fc from "fast-check";
import {
  evaluateTargets,
  ipv6Key,
  ipv6Table,
  formatRatio,
  formatValue,
  markdownTable,
  median,
  normalised,
  ratio,
  renderSvg,
  stat,
  summarize,
  targetsSection,
  MAIN_METRICS,
  METRICS,
  type Summary,
} from "../../bench/peers/report.js";

const contenders = [
  { key: "skiff", label: "skiff" },
  { key: "slirp4netns", label: "slirp4netns" },
  { key: "veth", label: "kernel veth" },
];

function one(v: number) {
  return stat([v])!;
}

describe("bench/peers report", () => {
  describe("median and stat", () => {
    it("takes the middle value, or the mean of the two middle ones", () => {
      expect(median([3, 1, 2])).to.equal(2);
      expect(median([4, 1, 3, 2])).to.equal(2.5);
      expect(median([])).to.equal(undefined);
    });

    it("lies between min and max and does not reorder the caller's array", () => {
      fc.assert(
        fc.property(fc.array(fc.double({ noNaN: true, min: -1e9, max: 1e9 }), { minLength: 1, maxLength: 20 }), (xs) => {
          const copy = [...xs];
          const s = stat(xs)!;
          expect(s.median).to.be.at.least(s.min).and.at.most(s.max);
          expect(s.n).to.equal(xs.length);
          expect(xs).to.deep.equal(copy);
        }),
      );
    });

    it("summarizes per contender and metric", () => {
      const s = summarize({ skiff: { tcp_up_1500: [1, 3, 2] } });
      expect(s.skiff.tcp_up_1500).to.deep.include({ median: 2, min: 1, max: 3, n: 3 });
    });
  });

  describe("ratio and formatting", () => {
    it("divides, and gives nothing for a missing figure or a zero divisor", () => {
      expect(ratio(6, 3)).to.equal(2);
      expect(ratio(undefined, 3)).to.equal(undefined);
      expect(ratio(1, 0)).to.equal(undefined);
      expect(formatRatio(1.5)).to.equal("1.50×");
      expect(formatRatio(undefined)).to.equal("—");
    });

    it("formats by unit", () => {
      expect(formatValue(12845, "req/s")).to.equal("12.8k");
      expect(formatValue(950, "conn/s")).to.equal("950");
      expect(formatValue(3.281, "Gbit/s")).to.equal("3.28");
      expect(formatValue(0.0123, "s/GB")).to.equal("0.012");
      expect(formatValue(35.66, "µs")).to.equal("35.7");
      expect(formatValue(183.7, "MB")).to.equal("184");
      expect(formatValue(undefined, "MB")).to.equal("—");
    });
  });

  describe("markdownTable", () => {
    const s: Summary = {
      skiff: { tcp_up_65520: one(6), latency: one(40) },
      slirp4netns: { tcp_up_65520: one(3), latency: one(50) },
      veth: { tcp_up_65520: one(18), latency: one(32) },
    };

    it("has a column per contender and skiff's ratios to slirp4netns and veth", () => {
      const t = markdownTable(s, contenders).split("\n");
      expect(t[0]).to.equal("| metric | unit | better | skiff | slirp4netns | kernel veth | skiff ÷ slirp4netns | skiff ÷ kernel veth |");
      expect(t[1]).to.equal("|---|---|---|---:|---:|---:|---:|---:|");
      expect(t).to.include("| TCP ns→host, MTU 65520 | Gbit/s | ↑ higher | 6.00 | 3.00 | 18.00 | 2.00× | 0.33× |");
      expect(t).to.include("| TCP ping-pong latency (sockperf) | µs | ↓ lower | 40.0 | 50.0 | 32.0 | 0.80× | 1.25× |");
    });

    it("leaves out metrics nobody has and shows a dash for a missing figure", () => {
      const t = markdownTable({ ...s, veth: { tcp_up_65520: one(18) } }, contenders);
      expect(t).not.to.include("RSS");
      expect(t).to.include("| TCP ping-pong latency (sockperf) | µs | ↓ lower | 40.0 | 50.0 | — | 0.80× | — |");
    });
  });

  describe("targets", () => {
    it("passes and fails by ratio to a peer or by an absolute bound", () => {
      const s: Summary = {
        skiff: { tcp_up_65520: one(4.4), tcp_up_1500: one(1.9), latency: one(40), rss_10k: one(250) },
        slirp4netns: { tcp_up_65520: one(3) },
        veth: { latency: one(32) },
      };
      const r = evaluateTargets(s);
      const by = (label: string) => r.find((x) => x.label.startsWith(label))!;
      expect(by("bulk ns→host").pass).to.equal(false); // 1.47× < 1.5×
      expect(by("bulk ns→host").detail).to.equal("1.47× (skiff 4.40 Gbit/s, slirp4netns 3.00 Gbit/s)");
      expect(by("ns→host at MTU 1500").pass).to.equal(false);
      expect(by("ping-pong").pass).to.equal(true); // 1.25× ≤ 1.3×
      expect(by("RSS").pass).to.equal(true);
      expect(by("host→ns at MTU 1500").pass).to.equal(undefined);
      const text = targetsSection(r);
      expect(text).to.match(/^Targets:\n/);
      expect(text).to.include("- PASS RSS with 10,000 idle conns ≤ 300 MB: skiff 250 MB");
      expect(text).to.include("- FAIL bulk ns→host");
      expect(text).to.include("- N/A  host→ns at MTU 1500");
    });

    it("has issue 20's goals: strictly ahead of slirp4netns where the goal says ahead, and loss compared by value when slirp4netns lost nothing", () => {
      const s: Summary = {
        skiff: { conn_rate: one(7000), http_c50: one(60000), http_c1: one(12000), latency: one(20), udp_loss: one(0.5), rss_idle: one(60), rss_10k: one(225) },
        slirp4netns: { conn_rate: one(3600), http_c50: one(41000), http_c1: one(12000), latency: one(20), udp_loss: one(0) },
      };
      const r = evaluateTargets(s).filter((t) => t.label.endsWith("(issue 20)"));
      expect(r.map((t) => [t.label, t.pass])).to.deep.equal([
        ["new conns/s ≥ 2× slirp4netns (issue 20)", false], // 1.94×
        ["HTTP req/s, 50 conns ≥ 1.5× slirp4netns (issue 20)", false], // 1.46×
        ["HTTP req/s, 1 conn ahead of slirp4netns (issue 20)", false], // level is not ahead
        ["ping-pong latency below slirp4netns (issue 20)", false],
        ["UDP loss at 1 Gbit/s offered ≤ 1% (issue 20)", true],
        ["UDP loss below slirp4netns (issue 20)", false], // 0.5% against 0%
        ["RSS idle ≤ 45 MB (issue 20)", false],
        ["RSS with 10,000 idle conns under 225 MB (issue 20)", false],
      ]);
      const loss = r.find((t) => t.label === "UDP loss below slirp4netns (issue 20)")!;
      expect(loss.detail).to.equal("— (skiff 0.5 %, slirp4netns 0.0 %)");
      s.skiff.udp_loss = one(0);
      s.slirp4netns.udp_loss = one(0.2);
      expect(evaluateTargets(s).find((t) => t.label === "UDP loss below slirp4netns (issue 20)")!.pass).to.equal(true);
    });
  });

  describe("SVG chart", () => {
    it("scales the best contender's bar to full length for both directions of better", () => {
      expect(normalised(10, [10, 5], "higher")).to.equal(1);
      expect(normalised(5, [10, 5], "higher")).to.equal(0.5);
      expect(normalised(20, [20, 40], "lower")).to.equal(1);
      expect(normalised(40, [20, 40], "lower")).to.equal(0.5);
      expect(normalised(0, [0, 3], "lower")).to.equal(1);
      expect(normalised(3, [0, 3], "lower")).to.equal(0);
    });

    it("is well-formed, labels values and draws one bar per figure", () => {
      const s: Summary = { skiff: { tcp_up_1500: one(2), http_c1: one(8000) }, slirp4netns: { tcp_up_1500: one(1) }, veth: {} };
      const svg = renderSvg(s, contenders, METRICS, "a < b & c");
      expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).to.equal(true);
      expect(svg.trim().endsWith("</svg>")).to.equal(true);
      expect(svg).to.include("a &lt; b &amp; c");
      expect(svg).to.include(">2.00 Gbit/s<");
      expect(svg).to.include(">8.0k req/s<");
      // 3 legend squares + 3 bars (skiff and slirp4netns TCP, skiff HTTP) + the background.
      expect(svg.match(/<rect /g)!.length).to.equal(1 + 3 + 3);
      const widths = [...svg.matchAll(/<rect x="170" y="\d+" width="(\d+)" height="14"/g)].map((m) => Number(m[1]));
      expect(widths).to.deep.equal([640, 320, 640]);
      expect(svg).not.to.include("RSS");
    });
  });

  describe("loss rows (issue 19)", () => {
    it("20 MB times under loss: seconds with two decimals below 10 s, and a 3× kernel veth target per rate and direction", () => {
      expect(formatValue(0.27, "s")).to.equal("0.27");
      expect(formatValue(41.7, "s")).to.equal("41.7");
      const s: Summary = { skiff: { loss5_down: one(0.9), loss5_up: one(0.2) }, veth: { loss5_down: one(0.25), loss5_up: one(0.5) } };
      const t = evaluateTargets(s).filter((r) => r.label.includes("5% loss"));
      expect(t.map((r) => [r.label, r.pass])).to.deep.equal([
        ["20 MB host→ns at 5% loss ≤ 3× kernel veth", false],
        ["20 MB ns→host at 5% loss ≤ 3× kernel veth", true],
      ]);
      expect(METRICS.filter((m) => m.key.startsWith("loss")).map((m) => m.key)).to.deep.equal(
        [0, 1, 5, 10].flatMap((p) => [`loss${p}_down`, `loss${p}_up`]),
      );
    });
  });

  describe("IPv6 rows (issue 18)", () => {
    it("have the keys of their IPv4 twins with a 6, and stay out of the main table", () => {
      expect(ipv6Key("tcp_up_1500")).to.equal("tcp6_up_1500");
      expect(ipv6Key("http_c50")).to.equal("http6_c50");
      const v6 = METRICS.filter((m) => m.v4 !== undefined);
      expect(v6.map((m) => [m.key, m.v4])).to.deep.equal(
        ["tcp_up_1500", "tcp_down_1500", "tcp_up_65520", "tcp_down_65520", "http_c1", "http_c50"].map((k) => [ipv6Key(k), k]),
      );
      expect(v6.every((m) => m.label.startsWith("IPv6 ") && METRICS.some((x) => x.key === m.v4))).to.equal(true);
      expect(MAIN_METRICS.some((m) => m.v4 !== undefined)).to.equal(false);
      const s: Summary = { skiff: { tcp_up_1500: one(2), tcp6_up_1500: one(1.5) }, slirp4netns: { tcp_up_1500: one(1) } };
      expect(markdownTable(s, contenders)).not.to.include("IPv6");
    });

    it("their table sets skiff beside pasta and the veth, divides by both and by skiff's IPv4 figure, and leaves out who has no IPv6 figure", () => {
      const all = [...contenders, { key: "pasta", label: "pasta" }];
      const s: Summary = {
        skiff: { tcp_up_1500: one(2), tcp6_up_1500: one(1.5), http6_c1: one(9000) },
        slirp4netns: { tcp_up_1500: one(1) },
        pasta: { tcp6_up_1500: one(0.5), http6_c1: one(12000) },
        veth: { tcp6_up_1500: one(6) },
      };
      const t = ipv6Table(s, all).split("\n");
      expect(t[0]).to.equal("| metric | unit | better | skiff | kernel veth | pasta | skiff ÷ kernel veth | skiff ÷ pasta | skiff IPv6 ÷ IPv4 |");
      expect(t).to.include("| IPv6 TCP ns→host, MTU 1500 | Gbit/s | ↑ higher | 1.50 | 6.00 | 0.50 | 0.25× | 3.00× | 0.75× |");
      expect(t).to.include("| IPv6 HTTP 1 KiB, 1 conn keep-alive | req/s | ↑ higher | 9.0k | — | 12.0k | — | 0.75× | — |");
      expect(t.length).to.equal(4);
      expect(ipv6Table({ skiff: { tcp_up_1500: one(2) } }, all)).to.equal("");
    });
  });
});
