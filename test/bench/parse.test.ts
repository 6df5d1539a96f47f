import { expect } from "chai";
import { parseCpuTicks, parseIperf, parseSockperf, parseVmRssKb, parseWrk } from "../../bench/peers/parse.js";

describe("bench/peers parse", () => {
  describe("iperf3 -J", () => {
    it("takes the receiver's rate and bytes of a TCP run", () => {
      const j = {
        end: {
          sum_sent: { bytes: 2617507840, bits_per_second: 20933824440.3, retransmits: 6 },
          sum_received: { bytes: 2617000000, bits_per_second: 20923365874.0 },
        },
      };
      expect(parseIperf(JSON.stringify(j))).to.deep.equal({ bitsPerSecond: 20923365874.0, bytes: 2617000000 });
    });

    it("takes the received rate and loss of a UDP run", () => {
      const j = {
        end: {
          sum: { bytes: 249825800, bits_per_second: 999298703.1, lost_percent: 25.6 },
          sum_sent: { bytes: 249825800, bits_per_second: 999298703.1, lost_percent: 0 },
          sum_received: { bytes: 185775800, bits_per_second: 743073848.5, lost_percent: 25.6 },
        },
      };
      expect(parseIperf(JSON.stringify(j))).to.deep.equal({ bitsPerSecond: 743073848.5, bytes: 185775800, lostPercent: 25.6 });
    });

    it("reports iperf3's own error and output that is not JSON", () => {
      expect(() => parseIperf(JSON.stringify({ start: {}, error: "unable to connect to server: Connection refused" }))).to.throw("iperf3: unable to connect");
      expect(() => parseIperf("iperf3: error - bad")).to.throw("no JSON");
      expect(() => parseIperf("{}")).to.throw("no end.sum_received");
    });
  });

  describe("wrk", () => {
    const out = `Running 5s test @ http://10.0.2.2:25311/1k
  2 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.43ms    1.10ms  30.22ms   91.00%
    Req/Sec     3.66k   312.45     4.21k    70.00%
  36432 requests in 5.00s, 44.61MB read
  Socket errors: connect 0, read 231, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   7286.11
Transfer/sec:      8.92MB
`;
    it("reads requests/s, the request count and every kind of error", () => {
      expect(parseWrk(out)).to.deep.equal({ requestsPerSecond: 7286.11, requests: 36432, errors: 238 });
    });

    it("counts no errors when wrk prints none, and refuses output without a rate", () => {
      const clean = out.replace(/ {2}Socket errors.*\n/, "").replace(/ {2}Non-2xx.*\n/, "");
      expect(parseWrk(clean).errors).to.equal(0);
      expect(() => parseWrk("unable to connect to 10.0.2.2:25311 Connection refused")).to.throw("no Requests/sec");
    });
  });

  describe("sockperf", () => {
    it("reads the average and percentiles through its colour codes", () => {
      const out = [
        "sockperf: [Valid Duration] RunTime=1.550 sec; SentMessages=77915; ReceivedMessages=77915",
        "sockperf: \x1b[2;35m====> avg-latency=9.934 (std-dev=25.929)\x1b[0m",
        "sockperf: ---> percentile 99.000 =  100.834",
        "sockperf: ---> percentile 50.000 =    6.915",
      ].join("\n");
      expect(parseSockperf(out)).to.deep.equal({ avgUs: 9.934, p50Us: 6.915, p99Us: 100.834 });
      expect(() => parseSockperf("sockperf: ERROR: connect failed")).to.throw("no avg-latency");
    });
  });

  describe("/proc", () => {
    it("sums utime and stime even when the command name has spaces and parentheses", () => {
      const fields = Array.from({ length: 50 }, (_, i) => String(i + 3)); // fields 3..52
      const stat = `1234 (node (x) y) ${fields.join(" ")}`;
      expect(parseCpuTicks(stat)).to.equal(14 + 15);
    });

    it("reads VmRSS", () => {
      expect(parseVmRssKb("Name:\tnode\nVmPeak:\t 100 kB\nVmRSS:\t   63348 kB\nRssAnon: 1 kB\n")).to.equal(63348);
      expect(() => parseVmRssKb("Name:\tkthread\n")).to.throw("no VmRSS");
    });
  });
});
