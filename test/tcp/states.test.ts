/**
 * Exact-segment tests of the TCP engine's connection establishment, state transitions and
 * closing (RFC 9293 §3.5-§3.6, §3.10.1-§3.10.7), with the options negotiated in the handshake
 * (RFC 7323 §1.3/§2.2/§3.2, RFC 2018 §2), TIME-WAIT reuse (RFC 6191) and the events the engine
 * reports at each step. RFC 5961 and PAWS live in rfc5961.test.ts.
 *
 * Numbers are built with `l(n)` (our ISS + n) and `r(n)` (the peer's ISS + n): the peer's ISS
 * sits just below 2^32, so every test crosses the wrap.
 */
import { expect } from "chai";
import { TcpConnection, resetForUnknown } from "../../src/tcp/connection.js";
import { TcpEvent, TcpState } from "../../src/tcp/state.js";
import type { TcpRepr } from "../../src/tcp/wire.js";
import {
  ACK,
  FIN,
  LOCAL_PORT,
  LOCAL_SEQ,
  PSH,
  RECV,
  REMOTE_PORT,
  REMOTE_SEQ,
  RST,
  SEND,
  SYN,
  bytes,
  closeWait,
  closing,
  drain,
  established,
  finWait1,
  finWait2,
  heldSyn,
  lastAck,
  recv,
  recvNothing,
  s,
  send,
  synReceived,
  synSent,
  testConfig,
  timeWait,
  type Seg,
} from "./harness.js";

const l = (n: number): number => s(LOCAL_SEQ, n);
const r = (n: number): number => s(REMOTE_SEQ, n);
/** The window we offer with a 64 KiB receive buffer and no scaling: 65535, less what arrived since. */
const W = 65535;
const { Established, Readable, Writable, PeerFin, Reset, Closed } = TcpEvent;

/** Our SYN-ACK to the fixtures' SYN (RFC 9293 §3.10.7.2: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>). */
const SYN_ACK: Seg = { ...RECV, seq: l(0), ack: r(1), flags: SYN | ACK, window: W, options: { mss: 1460 } };
/** Our SYN (RFC 9293 §3.10.1: <SEQ=ISS><CTL=SYN>). */
const OUR_SYN: Seg = { ...RECV, seq: l(0), ack: 0, flags: SYN, window: W, options: { mss: 1460 } };
/** The peer's SYN-ACK to our SYN. */
const PEER_SYN_ACK: Seg = { ...SEND, seq: r(0), ack: l(1), flags: SYN | ACK, options: { mss: 1460 } };

function plainSyn(options: TcpRepr["options"] = { mss: 1460 }): Seg {
  return { ...SEND, seq: r(0), ack: 0, flags: SYN, options };
}

/** Which of the interesting bits are set, as a sorted list of names (readable failures). */
function bits(e: number): string[] {
  return Object.entries(TcpEvent)
    .filter(([, v]) => (e & v) !== 0)
    .map(([k]) => k)
    .sort();
}

function activeOpen(cfg: Parameters<typeof testConfig>[0] = {}, tsOffset = 0): TcpConnection {
  return TcpConnection.connect(testConfig(cfg), { localPort: LOCAL_PORT, remotePort: REMOTE_PORT }, LOCAL_SEQ, 0, tsOffset);
}

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

// =========================================================================================

describe("tcp/states: passive open (RFC 9293 §3.10.7.2, SYN held until accept)", () => {
  it("a held SYN sends nothing and asks for no timer", () => {
    const c = heldSyn();
    recvNothing(c, 0);
    recvNothing(c, 100_000);
    expect(c.isHeld).to.equal(true);
    expect(c.state).to.equal(TcpState.SynReceived);
    expect(c.pollAt()).to.equal(Infinity);
  });

  it("a retransmitted SYN while held is absorbed; accept then sends one SYN-ACK", () => {
    const c = heldSyn();
    send(c, 500, plainSyn());
    recvNothing(c, 500);
    send(c, 1500, plainSyn());
    recvNothing(c, 1500);
    c.accept(1600);
    recv(c, 1600, [SYN_ACK]);
    recvNothing(c, 1600);
  });

  it("RFC 9293 §3.7.1: the SYN-ACK carries our MSS even when the SYN had no options", () => {
    const c = heldSyn({ windowScaling: true, sack: true, timestamps: true }, {});
    c.accept(0);
    recv(c, 0, [SYN_ACK]);
  });

  it("RFC 7323 §1.3, RFC 2018 §2: the SYN-ACK offers only options the SYN offered (MSS only)", () => {
    const c = heldSyn({ windowScaling: true, sack: true, timestamps: true }, { mss: 1460 });
    c.accept(0);
    recv(c, 0, [SYN_ACK]);
  });

  it("RFC 7323 §2.2: window scale in the SYN-ACK when offered (our shift for a 64 KiB buffer is 1)", () => {
    const c = heldSyn({ windowScaling: true }, { mss: 1460, windowScale: 7 });
    c.accept(0);
    recv(c, 0, [{ ...SYN_ACK, options: { mss: 1460, windowScale: 1 } }]);
  });

  it("RFC 7323 §2.2: no window scale in the SYN-ACK when scaling is disabled here", () => {
    const c = heldSyn({ windowScaling: false }, { mss: 1460, windowScale: 7 });
    c.accept(0);
    recv(c, 0, [SYN_ACK]);
  });

  it("RFC 7323 §2.2: a shift of 0 is answered with window scale 0 when the SYN offered it", () => {
    const c = heldSyn({ windowScaling: true, recvBufferSize: 65535 }, { mss: 1460, windowScale: 0 });
    c.accept(0);
    recv(c, 0, [{ ...SYN_ACK, options: { mss: 1460, windowScale: 0 } }]);
  });

  it("RFC 7323 §2.2: no window scale in the SYN-ACK when the SYN had none, even if our shift is 0", () => {
    // "It MAY also be sent in a <SYN,ACK> segment, but only if a Window Scale option was
    // received in the initial <SYN> segment."
    const c = heldSyn({ windowScaling: true, recvBufferSize: 65535 }, { mss: 1460 });
    c.accept(0);
    recv(c, 0, [SYN_ACK]);
  });

  it("RFC 2018 §2: SACK-permitted in the SYN-ACK only when the SYN carried it", () => {
    const offered = heldSyn({ sack: true }, { mss: 1460, sackPermitted: true });
    offered.accept(0);
    recv(offered, 0, [{ ...SYN_ACK, options: { mss: 1460, sackPermitted: true } }]);
    const off = heldSyn({ sack: false }, { mss: 1460, sackPermitted: true });
    off.accept(0);
    recv(off, 0, [SYN_ACK]);
  });

  it("RFC 7323 §3.2: timestamps in the SYN-ACK only when offered, with TSecr = the SYN's TSval", () => {
    const c = heldSyn({ timestamps: true }, { mss: 1460, timestamp: { tsVal: 0xfffffff0, tsEcr: 0 } });
    c.accept(25);
    recv(c, 25, [{ ...SYN_ACK, options: { mss: 1460, timestamp: { tsVal: 25, tsEcr: 0xfffffff0 } } }]);
    const off = heldSyn({ timestamps: false }, { mss: 1460, timestamp: { tsVal: 7, tsEcr: 0 } });
    off.accept(25);
    recv(off, 25, [SYN_ACK]);
  });

  it("RFC 7323, RFC 2018: every option answered when the SYN offered all of them", () => {
    const c = heldSyn(
      { windowScaling: true, sack: true, timestamps: true },
      { mss: 1400, windowScale: 3, sackPermitted: true, timestamp: { tsVal: 777, tsEcr: 0 } },
    );
    c.accept(9);
    recv(c, 9, [{ ...SYN_ACK, options: { mss: 1460, windowScale: 1, sackPermitted: true, timestamp: { tsVal: 9, tsEcr: 777 } } }]);
  });

  it("RFC 7323 §2.2: SYN windows are not scaled; later windows are, both ways", () => {
    const c = established({ windowScaling: true }, { mss: 1460, windowScale: 2 });
    // The completing ACK advertised 65535 with the peer's shift 2.
    expect(c.snapshot().sndWnd).to.equal(65535 << 2);
    send(c, 5, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc"), window: 100 });
    // Our window 65532 (64 KiB offered in the SYN-ACK, less 3 bytes) goes out >> 1.
    recv(c, 5, [{ ...RECV, seq: l(1), ack: r(4), window: 65532 >> 1 }]);
    expect(c.snapshot().sndWnd).to.equal(400);
  });

  it("RFC 9293 §3.10.7.1: refuse returns <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> and closes", () => {
    const c = heldSyn();
    const rst = c.refuse();
    expect({ ...rst, payload: Uint8Array.from(rst.payload) }).to.deep.equal({ ...RECV, seq: 0, ack: r(1), flags: RST | ACK });
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal(undefined);
    recvNothing(c, 0);
  });

  it("RFC 9293 §3.10.7.4: a RST at RCV.NXT while held closes the connection (Reset|Closed)", () => {
    const c = heldSyn();
    send(c, 10, { ...SEND, seq: r(1), flags: RST });
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("reset");
    expect(bits(c.takeEvents())).to.deep.equal(["Closed", "Reset"]);
    recvNothing(c, 10);
  });

  it("RFC 5961 §3.2: a RST not at RCV.NXT while held is ignored", () => {
    const c = heldSyn();
    send(c, 10, { ...SEND, seq: r(100), flags: RST });
    expect(c.isHeld).to.equal(true);
    c.accept(20);
    recv(c, 20, [SYN_ACK]);
  });

  it("RFC 9293 §3.10.7.4: a retransmitted SYN after accept re-sends the SYN-ACK", () => {
    const c = synReceived();
    send(c, 100, plainSyn());
    recv(c, 100, [SYN_ACK]);
    recvNothing(c, 100);
  });

  it("RFC 6298 (2.1)/(5.5): the SYN-ACK is retransmitted after 1 s, then 2 s, 4 s, 8 s", () => {
    const c = synReceived();
    recvNothing(c, 999);
    recv(c, 1000, [SYN_ACK]);
    recvNothing(c, 2999);
    recv(c, 3000, [SYN_ACK]);
    recvNothing(c, 6999);
    recv(c, 7000, [SYN_ACK]);
    recvNothing(c, 14_999);
    recv(c, 15_000, [SYN_ACK]);
    expect(c.state).to.equal(TcpState.SynReceived);
  });

  it("gives up after maxSynRetransmits: RST <SEQ=SND.MAX>, error timeout, Reset|Closed", () => {
    const c = synReceived({ maxSynRetransmits: 2 });
    recv(c, 1000, [SYN_ACK]);
    recv(c, 3000, [SYN_ACK]);
    recvNothing(c, 6999);
    recv(c, 7000, [{ ...RECV, seq: l(1), ack: r(1), flags: RST | ACK, window: W }]);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("timeout");
    expect(bits(c.takeEvents())).to.deep.equal(["Closed", "Reset"]);
    recvNothing(c, 100_000);
  });

  it("RFC 9293 §3.10.7.4: the completing ACK enters ESTABLISHED silently, with the Established event", () => {
    const c = synReceived();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1) });
    recvNothing(c, 30);
    expect(c.state).to.equal(TcpState.Established);
    const e = c.takeEvents();
    expect(e & Established).to.equal(Established);
    expect(e & (Reset | Closed | PeerFin | Readable)).to.equal(0);
    // The SYN-ACK's retransmission timer is off.
    recvNothing(c, 10_000);
  });

  it("RFC 9293 §3.10.7.4: data on the completing ACK is delivered and acknowledged", () => {
    const c = synReceived();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), flags: ACK | PSH, payload: bytes("abc") });
    recv(c, 30, [{ ...RECV, seq: l(1), ack: r(4), window: W - 3 }]);
    expect(c.takeEvents() & (Established | Readable)).to.equal(Established | Readable);
    expect(c.read()).to.deep.equal(bytes("abc"));
  });

  it("RFC 9293 §3.10.7.4: an ACK beyond SND.NXT in SYN-RECEIVED gets <SEQ=SEG.ACK><CTL=RST>", () => {
    const c = synReceived();
    send(c, 30, { ...SEND, seq: r(1), ack: l(5) });
    recv(c, 30, [{ ...RECV, seq: l(5), ack: 0, flags: RST }]);
    expect(c.state).to.equal(TcpState.SynReceived);
    expect(c.takeEvents()).to.equal(0);
    // The real ACK still completes the handshake.
    send(c, 40, { ...SEND, seq: r(1), ack: l(1) });
    expect(c.state).to.equal(TcpState.Established);
  });

  it("RFC 9293 §3.10.7.4: an ACK of ISS (not acknowledging our SYN) gets <SEQ=SEG.ACK><CTL=RST>", () => {
    const c = synReceived();
    send(c, 30, { ...SEND, seq: r(1), ack: l(0) });
    recv(c, 30, [{ ...RECV, seq: l(0), ack: 0, flags: RST }]);
    expect(c.state).to.equal(TcpState.SynReceived);
  });
});

// =========================================================================================

describe("tcp/states: active open (RFC 9293 §3.10.1, §3.10.7.3)", () => {
  it("RFC 9293 §3.10.1: the SYN is <SEQ=ISS><CTL=SYN> with our MSS when the other options are off", () => {
    const c = activeOpen();
    recv(c, 0, [OUR_SYN]);
    expect(c.state).to.equal(TcpState.SynSent);
  });

  it("RFC 7323 §2.2/§3.2, RFC 2018 §2: the SYN offers window scale, SACK-permitted and timestamps (TSecr 0)", () => {
    const c = activeOpen({ windowScaling: true, sack: true, timestamps: true }, 123_456);
    recv(c, 0, [{ ...OUR_SYN, options: { mss: 1460, windowScale: 1, sackPermitted: true, timestamp: { tsVal: 123_456, tsEcr: 0 } } }]);
  });

  it("RFC 6298 (2.1)/(5.5): the SYN is retransmitted after 1 s, then 2 s, then 4 s", () => {
    const c = activeOpen();
    recv(c, 0, [OUR_SYN]);
    recvNothing(c, 999);
    recv(c, 1000, [OUR_SYN]);
    recvNothing(c, 2999);
    recv(c, 3000, [OUR_SYN]);
    recvNothing(c, 6999);
    recv(c, 7000, [OUR_SYN]);
  });

  it("RFC 9293 §3.10.5: giving up in SYN-SENT sends no RST; error timeout, Reset|Closed", () => {
    const c = activeOpen({ maxSynRetransmits: 1 });
    recv(c, 0, [OUR_SYN]);
    recv(c, 1000, [OUR_SYN]);
    recvNothing(c, 2999);
    expect(c.state).to.equal(TcpState.SynSent);
    recvNothing(c, 3000);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("timeout");
    expect(bits(c.takeEvents())).to.deep.equal(["Closed", "Reset"]);
  });

  it("RFC 9293 §3.10.7.3: a SYN-ACK acknowledging our SYN enters ESTABLISHED and is acknowledged", () => {
    const c = synSent();
    send(c, 50, PEER_SYN_ACK);
    recv(c, 50, [{ ...RECV, seq: l(1), ack: r(1), window: W }]);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.takeEvents() & (Established | Reset | Closed)).to.equal(Established);
    recvNothing(c, 10_000); // the SYN's timer is off
  });

  it("RFC 7323 §3.2: after a SYN-ACK with timestamps, our ACK echoes its TSval", () => {
    const c = activeOpen({ timestamps: true }, 1000);
    drain(c, 0);
    send(c, 50, { ...PEER_SYN_ACK, options: { mss: 1460, timestamp: { tsVal: 4242, tsEcr: 1000 } } });
    recv(c, 50, [{ ...RECV, seq: l(1), ack: r(1), window: W, options: { timestamp: { tsVal: 1050, tsEcr: 4242 } } }]);
  });

  it("RFC 9293 §3.10.7.3: a SYN-ACK with SEG.ACK =< ISS gets <SEQ=SEG.ACK><CTL=RST>, stays SYN-SENT", () => {
    const c = synSent();
    send(c, 50, { ...PEER_SYN_ACK, ack: l(0) });
    recv(c, 50, [{ ...RECV, seq: l(0), ack: 0, flags: RST }]);
    expect(c.state).to.equal(TcpState.SynSent);
    send(c, 60, PEER_SYN_ACK);
    expect(c.state).to.equal(TcpState.Established);
  });

  it("RFC 9293 §3.10.7.3: a SYN-ACK with SEG.ACK > SND.NXT gets <SEQ=SEG.ACK><CTL=RST>", () => {
    const c = synSent();
    send(c, 50, { ...PEER_SYN_ACK, ack: l(1000) });
    recv(c, 50, [{ ...RECV, seq: l(1000), ack: 0, flags: RST }]);
    expect(c.state).to.equal(TcpState.SynSent);
  });

  it("RFC 9293 §3.10.7.3: a RST with an acceptable ACK closes with error refused", () => {
    const c = synSent();
    send(c, 50, { ...SEND, seq: 0, ack: l(1), flags: RST | ACK, window: 0 });
    recvNothing(c, 50);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("refused");
    expect(bits(c.takeEvents())).to.deep.equal(["Closed", "Reset"]);
  });

  it("RFC 9293 §3.10.7.3, RFC 5961 §3.2: a RST without ACK is dropped in SYN-SENT", () => {
    const c = synSent();
    send(c, 50, { ...SEND, seq: r(0), ack: 0, flags: RST });
    recvNothing(c, 50);
    expect(c.state).to.equal(TcpState.SynSent);
    expect(c.takeEvents()).to.equal(0);
  });

  it("RFC 9293 §3.10.7.3: a RST with an unacceptable ACK is dropped without a reply", () => {
    const c = synSent();
    send(c, 50, { ...SEND, seq: 0, ack: l(7), flags: RST | ACK });
    recvNothing(c, 50);
    send(c, 51, { ...SEND, seq: 0, ack: l(0), flags: RST | ACK });
    recvNothing(c, 51);
    expect(c.state).to.equal(TcpState.SynSent);
    expect(c.takeEvents()).to.equal(0);
  });

  it("RFC 9293 §3.10.7.3 'fifth': a segment with neither SYN nor RST is dropped in SYN-SENT", () => {
    const c = synSent();
    send(c, 50, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc") });
    recvNothing(c, 50);
    expect(c.state).to.equal(TcpState.SynSent);
    expect(c.readable).to.equal(0);
  });

  it("RFC 9293 §3.10.7.3: simultaneous open: a SYN in SYN-SENT enters SYN-RECEIVED and sends SYN,ACK", () => {
    const c = synSent();
    send(c, 10, plainSyn());
    recv(c, 10, [SYN_ACK]);
    expect(c.state).to.equal(TcpState.SynReceived);
  });

  it("RFC 9293 §3.10.7.4: simultaneous open completes on the peer's ACK", () => {
    const c = synSent();
    send(c, 10, plainSyn());
    drain(c, 10);
    send(c, 20, { ...SEND, seq: r(1), ack: l(1) });
    recvNothing(c, 20);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.takeEvents() & Established).to.equal(Established);
  });

  it("RFC 9293 §3.5 (simultaneous open figure): simultaneous open completes on the peer's SYN,ACK acknowledging our SYN", () => {
    // Line 6 of the simultaneous-open figure in §3.5: TCP A in SYN-RECEIVED gets <SEQ=300><ACK=101><CTL=SYN,ACK> and is ESTABLISHED.
    const c = synSent();
    send(c, 10, plainSyn());
    drain(c, 10);
    send(c, 20, PEER_SYN_ACK);
    drain(c, 20);
    expect(c.stateName).to.equal("ESTABLISHED");
    expect(c.takeEvents() & Established).to.equal(Established);
  });
});

// =========================================================================================

describe("tcp/states: closing from ESTABLISHED (RFC 9293 §3.6, §3.10.4)", () => {
  it("RFC 9293 §3.10.4: the FIN rides on the last data segment (FIN-WAIT-1)", () => {
    const c = established();
    const data = pattern(3000);
    expect(c.write(data)).to.equal(3000);
    c.shutdownWrite();
    expect(c.state).to.equal(TcpState.FinWait1);
    recv(c, 0, [
      { ...RECV, seq: l(1), ack: r(1), window: W, payload: data.subarray(0, 1460) },
      { ...RECV, seq: l(1461), ack: r(1), window: W, payload: data.subarray(1460, 2920) },
      { ...RECV, seq: l(2921), ack: r(1), flags: ACK | PSH | FIN, window: W, payload: data.subarray(2920) },
    ]);
  });

  it("RFC 9293 §3.10.4: the FIN waits behind queued data the peer's window holds back", () => {
    const c = established();
    send(c, 0, { ...SEND, seq: r(1), ack: l(1), window: 0 });
    c.write(bytes("abc"));
    c.shutdownWrite();
    recvNothing(c, 0);
    expect(c.state).to.equal(TcpState.FinWait1);
    send(c, 50, { ...SEND, seq: r(1), ack: l(1), window: 1000 });
    recv(c, 50, [{ ...RECV, seq: l(1), ack: r(1), flags: ACK | PSH | FIN, window: W, payload: bytes("abc") }]);
  });

  it("a FIN after data already sent goes alone at the next sequence number", () => {
    const c = established();
    c.write(bytes("abc"));
    recv(c, 0, [{ ...RECV, seq: l(1), ack: r(1), flags: ACK | PSH, window: W, payload: bytes("abc") }]);
    c.shutdownWrite();
    recv(c, 1, [{ ...RECV, seq: l(4), ack: r(1), flags: ACK | FIN, window: W }]);
  });

  it("a bare FIN is sent whatever the peer's window (documented: it carries no data)", () => {
    const c = established();
    send(c, 0, { ...SEND, seq: r(1), ack: l(1), window: 0 });
    c.shutdownWrite();
    recv(c, 0, [{ ...RECV, seq: l(1), ack: r(1), flags: ACK | FIN, window: W }]);
  });

  it("RFC 9293 §3.10.7.4: FIN-WAIT-1 enters FIN-WAIT-2 when the FIN is acknowledged, silently", () => {
    const c = finWait1();
    send(c, 10, { ...SEND, seq: r(1), ack: l(2) });
    recvNothing(c, 10);
    expect(c.state).to.equal(TcpState.FinWait2);
    expect(c.takeEvents() & (Reset | Closed | PeerFin)).to.equal(0);
  });

  it("RFC 9293 §3.10.7.4: an ACK short of the FIN keeps FIN-WAIT-1", () => {
    const c = established();
    c.write(bytes("abc"));
    c.shutdownWrite();
    drain(c, 0);
    send(c, 10, { ...SEND, seq: r(1), ack: l(4) });
    expect(c.state).to.equal(TcpState.FinWait1);
    send(c, 11, { ...SEND, seq: r(1), ack: l(5) });
    expect(c.state).to.equal(TcpState.FinWait2);
  });

  it("RFC 6298 (5.4)-(5.6): an unacknowledged FIN is retransmitted on RTO, backing off", () => {
    const c = finWait1();
    // The handshake measured an RTT of 0: RTO = max(minRtoMs 200, 0 + max(G, 4*0)) = 200 ms.
    expect(c.snapshot().rto).to.equal(200);
    const fin: Seg = { ...RECV, seq: l(1), ack: r(1), flags: ACK | FIN, window: W };
    recvNothing(c, 199);
    recv(c, 200, [fin]);
    recvNothing(c, 599);
    recv(c, 600, [fin]);
    send(c, 700, { ...SEND, seq: r(1), ack: l(2) });
    expect(c.state).to.equal(TcpState.FinWait2);
    recvNothing(c, 10_000);
  });

  it("RFC 9293 §3.10.7.4: FIN-WAIT-2 + FIN: ACK sent, TIME-WAIT, PeerFin", () => {
    const c = finWait2();
    send(c, 10, { ...SEND, seq: r(1), ack: l(2), flags: FIN | ACK });
    recv(c, 10, [{ ...RECV, seq: l(2), ack: r(2), window: W - 1 }]);
    expect(c.state).to.equal(TcpState.TimeWait);
    const e = c.takeEvents();
    expect(e & PeerFin).to.equal(PeerFin);
    expect(e & (Reset | Closed)).to.equal(0);
    expect(c.peerFinished).to.equal(true);
  });

  it("RFC 9293 §3.10.7.4: FIN-WAIT-1 + FIN acknowledging our FIN goes straight to TIME-WAIT", () => {
    const c = finWait1();
    send(c, 10, { ...SEND, seq: r(1), ack: l(2), flags: FIN | ACK });
    recv(c, 10, [{ ...RECV, seq: l(2), ack: r(2), window: W - 1 }]);
    expect(c.state).to.equal(TcpState.TimeWait);
    expect(c.takeEvents() & PeerFin).to.equal(PeerFin);
  });

  it("RFC 9293 §3.10.8: TIME-WAIT ends after exactly timeWaitMs (Closed, no error)", () => {
    const c = timeWait({ timeWaitMs: 2000 });
    expect(c.pollAt()).to.equal(2000);
    recvNothing(c, 1999);
    expect(c.state).to.equal(TcpState.TimeWait);
    expect(c.takeEvents()).to.equal(0);
    recvNothing(c, 2000);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal(undefined);
    expect(bits(c.takeEvents())).to.deep.equal(["Closed"]);
  });

  it("RFC 9293 §3.10.7.4 TIME-WAIT: a retransmitted FIN is acknowledged and the 2 MSL timer restarted", () => {
    const c = timeWait({ timeWaitMs: 2000 });
    send(c, 1500, { ...SEND, seq: r(1), ack: l(2), flags: FIN | ACK });
    recv(c, 1500, [{ ...RECV, seq: l(2), ack: r(2), window: W - 1 }]);
    recvNothing(c, 3499);
    expect(c.state).to.equal(TcpState.TimeWait);
    recvNothing(c, 3500);
    expect(c.state).to.equal(TcpState.Closed);
  });

  it("finWait2TimeoutMs: FIN-WAIT-2 without the peer's FIN closes at exactly the timeout", () => {
    const c = finWait2({ finWait2TimeoutMs: 5000 });
    drain(c, 4999);
    expect(c.state).to.equal(TcpState.FinWait2);
    drain(c, 5000);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("timeout");
    expect(c.takeEvents() & Closed).to.equal(Closed);
  });

  it("finWait2TimeoutMs null (default): a half-closed connection waits in FIN-WAIT-2 for ever", () => {
    const c = finWait2({ finWait2TimeoutMs: null });
    expect(c.pollAt()).to.equal(Infinity);
    recvNothing(c, 48 * 3600 * 1000);
    expect(c.state).to.equal(TcpState.FinWait2);
  });

  it("RFC 9293 §3.10.2: write after shutdownWrite is refused (connection closing)", () => {
    const c = finWait1();
    expect(c.writable).to.equal(0);
    expect(c.write(bytes("late"))).to.equal(0);
    recvNothing(c, 0);
  });
});

// =========================================================================================

describe("tcp/states: the peer closes first (RFC 9293 §3.10.7.4 'eighth, check the FIN bit')", () => {
  it("ESTABLISHED + FIN: CLOSE-WAIT, ACK of the FIN, PeerFin|Readable", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1), flags: FIN | ACK });
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(2), window: W - 1 }]);
    expect(c.state).to.equal(TcpState.CloseWait);
    expect(c.takeEvents() & (PeerFin | Readable | Reset | Closed)).to.equal(PeerFin | Readable);
    expect(c.peerFinished).to.equal(true);
  });

  it("data received before the FIN stays deliverable in CLOSE-WAIT", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1), flags: ACK | PSH, payload: bytes("abc") });
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(4), window: W - 3 }]);
    send(c, 20, { ...SEND, seq: r(4), ack: l(1), flags: FIN | ACK });
    recv(c, 20, [{ ...RECV, seq: l(1), ack: r(5), window: W - 4 }]);
    expect(c.state).to.equal(TcpState.CloseWait);
    expect(c.peerFinished).to.equal(false);
    expect(c.read()).to.deep.equal(bytes("abc"));
    expect(c.peerFinished).to.equal(true);
  });

  it("FIN and data in one segment: both accepted, ACK covers data and FIN", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1), flags: FIN | PSH | ACK, payload: bytes("hello") });
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(7), window: W - 6 }]);
    expect(c.state).to.equal(TcpState.CloseWait);
    expect(c.takeEvents() & (PeerFin | Readable)).to.equal(PeerFin | Readable);
    expect(c.read()).to.deep.equal(bytes("hello"));
  });

  it("RFC 9293 §3.10.7.4: an out-of-order FIN with data is not acknowledged until the gap fills", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(4), ack: l(1), flags: FIN | ACK, payload: bytes("def") });
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(1), window: W }]);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.takeEvents() & PeerFin).to.equal(0);
    send(c, 20, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc") });
    recv(c, 20, [{ ...RECV, seq: l(1), ack: r(8), window: W - 7 }]);
    expect(c.state).to.equal(TcpState.CloseWait);
    expect(c.takeEvents() & PeerFin).to.equal(PeerFin);
    expect(c.read()).to.deep.equal(bytes("abcdef"));
  });

  it("RFC 9293 §3.10.7.4: a bare FIN ahead of missing data does not close until the gap fills", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(4), ack: l(1), flags: FIN | ACK });
    for (const seg of drain(c, 10)) expect(seg.ack).to.equal(r(1));
    expect(c.state).to.equal(TcpState.Established);
    send(c, 20, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc") });
    recv(c, 20, [{ ...RECV, seq: l(1), ack: r(5), window: W - 4 }]);
    expect(c.state).to.equal(TcpState.CloseWait);
  });

  it("RFC 5681 §4.2: a bare FIN ahead of missing data gets an immediate duplicate ACK", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(4), ack: l(1), flags: FIN | ACK });
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(1), window: W }]);
  });

  it("RFC 9293 §3.10.4: CLOSE in CLOSE-WAIT sends FIN and enters LAST-ACK", () => {
    const c = closeWait();
    c.shutdownWrite();
    expect(c.state).to.equal(TcpState.LastAck);
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(2), flags: FIN | ACK, window: W - 1 }]);
  });

  it("RFC 9293 §3.10.7.4: LAST-ACK enters CLOSED when the FIN is acknowledged (Closed, no error)", () => {
    const c = lastAck();
    send(c, 10, { ...SEND, seq: r(2), ack: l(1) });
    expect(c.state).to.equal(TcpState.LastAck);
    send(c, 11, { ...SEND, seq: r(2), ack: l(2) });
    recvNothing(c, 11);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal(undefined);
    expect(bits(c.takeEvents())).to.deep.equal(["Closed"]);
  });

  it("LAST-ACK retransmits its FIN on RTO", () => {
    const c = lastAck();
    recv(c, 200, [{ ...RECV, seq: l(1), ack: r(2), flags: FIN | ACK, window: W - 1 }]);
  });
});

// =========================================================================================

describe("tcp/states: simultaneous close (RFC 9293 §3.6, simultaneous close sequence)", () => {
  it("FIN-WAIT-1 + FIN not acknowledging ours: CLOSING, ACK sent, PeerFin", () => {
    const c = finWait1();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1), flags: FIN | ACK });
    recv(c, 10, [{ ...RECV, seq: l(2), ack: r(2), window: W - 1 }]);
    expect(c.state).to.equal(TcpState.Closing);
    expect(c.takeEvents() & PeerFin).to.equal(PeerFin);
  });

  it("CLOSING enters TIME-WAIT on the ACK of our FIN, then CLOSED after timeWaitMs", () => {
    const c = closing({ timeWaitMs: 1000 });
    send(c, 10, { ...SEND, seq: r(2), ack: l(1) });
    expect(c.state).to.equal(TcpState.Closing);
    send(c, 20, { ...SEND, seq: r(2), ack: l(2) });
    recvNothing(c, 20);
    expect(c.state).to.equal(TcpState.TimeWait);
    recvNothing(c, 1019);
    expect(c.state).to.equal(TcpState.TimeWait);
    recvNothing(c, 1020);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal(undefined);
  });

  it("CLOSING retransmits its FIN on RTO", () => {
    const c = closing();
    recv(c, 200, [{ ...RECV, seq: l(1), ack: r(2), flags: FIN | ACK, window: W - 1 }]);
  });
});

// =========================================================================================

describe("tcp/states: half-close (RFC 9293 §3.6: data flows toward the side that closed first)", () => {
  it("FIN-WAIT-1 still receives and acknowledges data", () => {
    const c = finWait1();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc") });
    recv(c, 10, [{ ...RECV, seq: l(2), ack: r(4), window: W - 3 }]);
    expect(c.state).to.equal(TcpState.FinWait1);
    expect(c.read()).to.deep.equal(bytes("abc"));
  });

  it("FIN-WAIT-2 still receives and acknowledges data (Readable)", () => {
    const c = finWait2();
    send(c, 10, { ...SEND, seq: r(1), ack: l(2), flags: ACK | PSH, payload: bytes("abc") });
    recv(c, 10, [{ ...RECV, seq: l(2), ack: r(4), window: W - 3 }]);
    expect(c.takeEvents() & Readable).to.equal(Readable);
    send(c, 20, { ...SEND, seq: r(4), ack: l(2), payload: bytes("def") });
    recv(c, 20, [{ ...RECV, seq: l(2), ack: r(7), window: W - 6 }]);
    expect(c.read()).to.deep.equal(bytes("abcdef"));
    expect(c.state).to.equal(TcpState.FinWait2);
  });

  it("CLOSE-WAIT still sends data, and takes its ACK", () => {
    const c = closeWait();
    expect(c.write(bytes("xyz"))).to.equal(3);
    recv(c, 10, [{ ...RECV, seq: l(1), ack: r(2), flags: ACK | PSH, window: W - 1, payload: bytes("xyz") }]);
    send(c, 20, { ...SEND, seq: r(2), ack: l(4) });
    recvNothing(c, 20);
    expect(c.unacknowledged).to.equal(0);
    expect(c.state).to.equal(TcpState.CloseWait);
    c.shutdownWrite();
    recv(c, 30, [{ ...RECV, seq: l(4), ack: r(2), flags: ACK | FIN, window: W - 1 }]);
  });
});

// =========================================================================================

describe("tcp/states: abort (RFC 9293 §3.10.5)", () => {
  it("ESTABLISHED: RST <SEQ=SND.MAX><ACK=RCV.NXT>, error aborted, Reset|Closed", () => {
    const c = established();
    c.write(bytes("abc"));
    drain(c, 0);
    c.abort();
    expect(c.state).to.equal(TcpState.Closed);
    recv(c, 5, [{ ...RECV, seq: l(4), ack: r(1), flags: RST | ACK, window: W }]);
    expect(c.error).to.equal("aborted");
    expect(bits(c.takeEvents())).to.deep.equal(["Closed", "Reset"]);
    recvNothing(c, 100_000);
  });

  const sendsRst: Array<[string, () => TcpConnection, Seg]> = [
    ["FIN-WAIT-1", () => finWait1(), { ...RECV, seq: l(2), ack: r(1), flags: RST | ACK, window: W }],
    ["FIN-WAIT-2", () => finWait2(), { ...RECV, seq: l(2), ack: r(1), flags: RST | ACK, window: W }],
    ["CLOSE-WAIT", () => closeWait(), { ...RECV, seq: l(1), ack: r(2), flags: RST | ACK, window: W - 1 }],
    // SYN-ACK sent: <SEQ=SND.NXT> is ISS+1.
    ["SYN-RECEIVED", () => synReceived(), { ...RECV, seq: l(1), ack: r(1), flags: RST | ACK, window: W }],
  ];
  for (const [name, make, rst] of sendsRst) {
    it(`${name}: abort sends RST <SEQ=SND.MAX><ACK=RCV.NXT> and closes`, () => {
      const c = make();
      c.abort();
      recv(c, 5, [rst]);
      expect(c.state).to.equal(TcpState.Closed);
    });
  }

  // "SYN-SENT: ... delete the TCB"; "CLOSING, LAST-ACK, TIME-WAIT: respond with ok and delete
  // the TCB"; a held SYN was never answered, so the peer knows none of our sequence numbers.
  const silent: Array<[string, () => TcpConnection]> = [
    ["SYN-SENT", () => synSent()],
    ["held SYN", () => heldSyn()],
    ["TIME-WAIT", () => timeWait()],
    ["LAST-ACK", () => lastAck()],
    ["CLOSING", () => closing()],
  ];
  for (const [name, make] of silent) {
    it(`${name}: abort sends nothing, closes with error aborted (Reset|Closed)`, () => {
      const c = make();
      c.takeEvents();
      c.abort();
      recvNothing(c, 5);
      expect(c.state).to.equal(TcpState.Closed);
      expect(c.error).to.equal("aborted");
      expect(bits(c.takeEvents())).to.deep.equal(["Closed", "Reset"]);
    });
  }
});

// =========================================================================================

describe("tcp/states: shutdownWrite before ESTABLISHED (RFC 9293 §3.10.4)", () => {
  it("SYN-SENT: the FIN is queued (documented) and follows the handshake", () => {
    const c = synSent();
    c.shutdownWrite();
    recvNothing(c, 0);
    expect(c.state).to.equal(TcpState.SynSent);
    send(c, 50, PEER_SYN_ACK);
    recv(c, 50, [{ ...RECV, seq: l(1), ack: r(1), flags: FIN | ACK, window: W }]);
    expect(c.state).to.equal(TcpState.FinWait1);
    send(c, 60, { ...SEND, seq: r(1), ack: l(2) });
    expect(c.state).to.equal(TcpState.FinWait2);
  });

  it("SYN-SENT: data written before shutdownWrite goes first, FIN on its segment", () => {
    const c = synSent();
    expect(c.write(bytes("early"))).to.equal(5);
    c.shutdownWrite();
    recvNothing(c, 0);
    send(c, 50, PEER_SYN_ACK);
    recv(c, 50, [{ ...RECV, seq: l(1), ack: r(1), flags: ACK | PSH | FIN, window: W, payload: bytes("early") }]);
  });

  it("SYN-RECEIVED: 'queue for processing after entering ESTABLISHED'", () => {
    const c = synReceived();
    c.shutdownWrite();
    recvNothing(c, 0);
    expect(c.state).to.equal(TcpState.SynReceived);
    send(c, 30, { ...SEND, seq: r(1), ack: l(1) });
    recv(c, 30, [{ ...RECV, seq: l(1), ack: r(1), flags: FIN | ACK, window: W }]);
    expect(c.state).to.equal(TcpState.FinWait1);
  });
});

// =========================================================================================

/** TIME-WAIT with timestamps in use; the peer's last TSval was 502. */
function timeWaitWithTimestamps(): TcpConnection {
  const c = heldSyn({ timestamps: true }, { mss: 1460, timestamp: { tsVal: 500, tsEcr: 0 } });
  c.accept(0);
  drain(c, 0);
  send(c, 1, { ...SEND, seq: r(1), ack: l(1), options: { timestamp: { tsVal: 501, tsEcr: 0 } } });
  c.shutdownWrite();
  drain(c, 1);
  send(c, 2, { ...SEND, seq: r(1), ack: l(2), flags: FIN | ACK, options: { timestamp: { tsVal: 502, tsEcr: 1 } } });
  drain(c, 2);
  expect(c.state).to.equal(TcpState.TimeWait);
  return c;
}

describe("tcp/states: a new SYN in TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191)", () => {
  it("without timestamps: a SYN above RCV.NXT is accepted", () => {
    const c = timeWait();
    expect(c.acceptsNewSyn(plainSyn())).to.equal(false); // the old ISS
    expect(c.acceptsNewSyn({ ...plainSyn(), seq: r(3) })).to.equal(true);
    expect(c.acceptsNewSyn({ ...plainSyn(), seq: r(1_000_000) })).to.equal(true);
  });

  it("without timestamps: a SYN at or below RCV.NXT is refused", () => {
    const c = timeWait();
    expect(c.acceptsNewSyn({ ...plainSyn(), seq: r(2) })).to.equal(false);
    expect(c.acceptsNewSyn({ ...plainSyn(), seq: r(-5000) })).to.equal(false);
  });

  it("RFC 6191 §2: with timestamps, a higher TSval is accepted even with a lower sequence number", () => {
    const c = timeWaitWithTimestamps();
    expect(c.acceptsNewSyn({ ...plainSyn({ mss: 1460, timestamp: { tsVal: 503, tsEcr: 0 } }), seq: r(-5000) })).to.equal(true);
  });

  it("RFC 6191 §2: with timestamps, a lower or equal TSval is refused even with a higher sequence number", () => {
    const c = timeWaitWithTimestamps();
    expect(c.acceptsNewSyn({ ...plainSyn({ mss: 1460, timestamp: { tsVal: 501, tsEcr: 0 } }), seq: r(100_000) })).to.equal(false);
    expect(c.acceptsNewSyn({ ...plainSyn({ mss: 1460, timestamp: { tsVal: 502, tsEcr: 0 } }), seq: r(100_000) })).to.equal(false);
  });

  it("only TIME-WAIT accepts a new SYN", () => {
    for (const c of [established(), finWait2(), closeWait(), lastAck(), closing()]) {
      expect(c.acceptsNewSyn({ ...plainSyn(), seq: r(1_000_000) }), c.stateName).to.equal(false);
    }
  });
});

// =========================================================================================

describe("tcp/states: resetForUnknown (RFC 9293 §3.10.7.1, CLOSED)", () => {
  const norm = (seg: TcpRepr | undefined): unknown => (seg === undefined ? undefined : { ...seg, payload: Uint8Array.from(seg.payload) });

  it("a segment with ACK gets <SEQ=SEG.ACK><CTL=RST>", () => {
    const seg = { ...SEND, seq: r(1), ack: l(77), payload: bytes("data") };
    expect(norm(resetForUnknown(seg))).to.deep.equal({ ...RECV, seq: l(77), ack: 0, flags: RST });
  });

  it("a SYN without ACK gets <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> (the SYN counts)", () => {
    expect(norm(resetForUnknown(plainSyn()))).to.deep.equal({ ...RECV, seq: 0, ack: r(1), flags: RST | ACK });
  });

  it("data and FIN without ACK: SEG.LEN counts the bytes and the FIN", () => {
    const seg = { ...SEND, seq: r(10), ack: 0, flags: FIN | PSH, payload: bytes("hello") };
    expect(norm(resetForUnknown(seg))).to.deep.equal({ ...RECV, seq: 0, ack: r(16), flags: RST | ACK });
  });

  it("a RST is never answered", () => {
    expect(resetForUnknown({ ...SEND, seq: r(1), flags: RST })).to.equal(undefined);
    expect(resetForUnknown({ ...SEND, seq: r(1), ack: l(1), flags: RST | ACK })).to.equal(undefined);
  });
});

// =========================================================================================

describe("tcp/states: events", () => {
  it("Readable when in-order data arrives, not for a pure ACK", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1) });
    expect(c.takeEvents() & Readable).to.equal(0);
    send(c, 20, { ...SEND, seq: r(1), ack: l(1), payload: bytes("x") });
    expect(c.takeEvents() & Readable).to.equal(Readable);
    expect(c.takeEvents()).to.equal(0); // taken once
  });

  it("Writable after a write was cut short and the ACK frees send buffer", () => {
    const c = established({ sendBufferSize: 10 });
    expect(c.write(pattern(20))).to.equal(10);
    recv(c, 0, [{ ...RECV, seq: l(1), ack: r(1), flags: ACK | PSH, window: W, payload: pattern(10) }]);
    expect(c.takeEvents() & Writable).to.equal(0);
    send(c, 10, { ...SEND, seq: r(1), ack: l(6) });
    expect(c.takeEvents() & Writable).to.equal(Writable);
    expect(c.writable).to.equal(5);
  });

  it("no Writable when no write was cut short", () => {
    const c = established({ sendBufferSize: 10 });
    expect(c.write(pattern(4))).to.equal(4);
    drain(c, 0);
    send(c, 10, { ...SEND, seq: r(1), ack: l(5) });
    expect(c.takeEvents() & Writable).to.equal(0);
  });

  it("a full passive lifetime reports Established, Readable, PeerFin, Closed in order", () => {
    const c = synReceived();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1) });
    expect(c.takeEvents() & Established).to.equal(Established);
    send(c, 20, { ...SEND, seq: r(1), ack: l(1), payload: bytes("q") });
    drain(c, 20);
    expect(c.takeEvents() & (Readable | PeerFin)).to.equal(Readable);
    send(c, 30, { ...SEND, seq: r(2), ack: l(1), flags: FIN | ACK });
    drain(c, 30);
    expect(c.takeEvents() & (PeerFin | Closed)).to.equal(PeerFin);
    c.shutdownWrite();
    drain(c, 40);
    send(c, 50, { ...SEND, seq: r(3), ack: l(2) });
    expect(bits(c.takeEvents())).to.deep.equal(["Closed"]);
  });
});
