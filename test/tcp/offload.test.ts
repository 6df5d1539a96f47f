/**
 * Segmentation offload in the engine (TcpConnection.setSegmentationOffload): new data leaves as
 * super-segments of whole MSS pieces within cwnd and the peer's window; the tail of the queue
 * may end a super-segment short; retransmissions stay one MSS.
 */
import { expect } from "chai";
import { ACK, PSH, drain, established, ourData, pattern, peerAck, send, testConfig } from "./harness.js";

describe("tcp/offload: super-segments for a link with TSO", () => {
  it("sends cwnd's worth as one super-segment of whole MSS pieces, then the tail", () => {
    const c = established(testConfig({ sendBufferSize: 256 * 1024, initialCwndSegments: 10 }));
    c.setSegmentationOffload(65_000);
    const data = pattern(20_000);
    expect(c.write(data)).to.equal(20_000);
    // IW10: 14,600 bytes = 10 MSS, one segment.
    const first = drain(c, 0);
    expect(first.map((s) => s.payload.length)).to.deep.equal([14_600]);
    expect(first[0]).to.deep.equal(ourData(data, 0, 14_600, ACK));
    // Slow start after the ACK: the remaining 5,400 bytes (the tail: not a multiple of MSS) go whole.
    send(c, 10, peerAck(14_600));
    const second = drain(c, 10);
    expect(second.map((s) => s.payload.length)).to.deep.equal([5_400]);
    expect(second[0]).to.deep.equal(ourData(data, 14_600, 20_000, ACK | PSH));
  });

  it("cuts a super-segment to whole MSS pieces when the window ends mid-piece", () => {
    const c = established(testConfig({ sendBufferSize: 256 * 1024, initialCwndSegments: 40 }));
    c.setSegmentationOffload(65_000);
    send(c, 0, peerAck(0, 10_000)); // the peer offers 10,000 bytes: 6 MSS + 1,240
    expect(c.write(pattern(50_000))).to.equal(50_000);
    const segs = drain(c, 0);
    expect(segs[0].payload.length).to.equal(6 * 1460);
  });

  it("retransmits one MSS after a timeout, not the whole super-segment", () => {
    const c = established(testConfig({ sendBufferSize: 256 * 1024, initialCwndSegments: 10 }));
    c.setSegmentationOffload(65_000);
    expect(c.write(pattern(14_600))).to.equal(14_600);
    expect(drain(c, 0).map((s) => s.payload.length)).to.deep.equal([14_600]);
    const rtx = drain(c, 1_100); // the initial RTO is 1 s
    expect(rtx.length).to.be.above(0);
    expect(rtx[0].payload.length).to.equal(1460);
  });

  it("off by default: MSS-sized segments", () => {
    const c = established(testConfig({ sendBufferSize: 256 * 1024, initialCwndSegments: 10 }));
    expect(c.write(pattern(14_600))).to.equal(14_600);
    expect(drain(c, 0).map((s) => s.payload.length)).to.deep.equal(new Array(10).fill(1460));
  });
});
