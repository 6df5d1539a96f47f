/**
 * Stand-ins for ICMP echo translation tests (test/socket-translate/icmp*.test.ts): a manual
 * clock and timer host, an addon whose "kernel" grants or refuses ICMP and ICMPv6 sockets and
 * records what is sent, and a datagram socket that records sends.
 */
import { constants } from "node:os";
import type { TimerHost } from "../../src/stack/timers.js";
import type { IcmpAddon, IcmpDgramSocket, IcmpDgramWrapper } from "../../src/socket-translate/icmp-translator.js";

const { EPERM } = constants.errno;

/** A clock and timers that move only when the test says so. */
export class ManualTimers implements TimerHost {
  t = 1000;
  private pending: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const h = { at: this.t + ms, fn, live: true };
    this.pending.push(h);
    return h;
  };
  clearTimeout = (h: unknown): void => {
    (h as { live: boolean }).live = false;
  };
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = this.pending.filter((p) => p.live && p.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.live = false;
      due.fn();
    }
    this.pending = this.pending.filter((p) => p.live);
  }
}

/** The addon as the translator sees it: which ICMP sockets the "kernel" grants, and what was sent. */
export class FakeAddon implements IcmpAddon {
  /** Result of icmpSocket(false) / icmpSocket(true): >= 0 grants a fresh fd, < 0 is -errno. */
  dgram = 0;
  raw = -EPERM;
  /** The same for ICMPv6 sockets (icmpSocket(raw, true)). */
  dgram6 = 0;
  raw6 = -EPERM;
  sent6: Array<{ fd: number; bytes: Uint8Array; addr: Uint8Array }> = [];
  nextFd = 100;
  opened: Array<{ fd: number; raw: boolean; ipv6?: boolean }> = [];
  closed: number[] = [];
  sent: Array<{ fd: number; bytes: Uint8Array; ip: number }> = [];
  sendResult: number | undefined;
  reader: { fd: number; ring: ArrayBuffer; slot: number; lengths: Uint32Array; cb: (n: number) => void } | undefined;
  icmpSocket(raw: boolean, ipv6 = false): number {
    const r = ipv6 ? (raw ? this.raw6 : this.dgram6) : raw ? this.raw : this.dgram;
    if (r < 0) return r;
    const fd = this.nextFd++;
    this.opened.push(ipv6 ? { fd, raw, ipv6 } : { fd, raw });
    return fd;
  }
  sendTo6(fd: number, bytes: Uint8Array, addr: Uint8Array): number {
    this.sent6.push({ fd, bytes: Uint8Array.from(bytes), addr: Uint8Array.from(addr) });
    return this.sendResult ?? bytes.length;
  }
  sendTo(fd: number, bytes: Uint8Array, ip: number): number {
    this.sent.push({ fd, bytes: Uint8Array.from(bytes), ip });
    return this.sendResult ?? bytes.length;
  }
  startRead(fd: number, ring: ArrayBuffer, slot: number, lengths: Uint32Array, cb: (n: number) => void): void {
    this.reader = { fd, ring, slot, lengths, cb };
  }
  stopRead(): void {}
  close(fd: number): number {
    this.closed.push(fd);
    if (this.reader?.fd === fd) this.reader = undefined;
    return 0;
  }
  /** The kernel hands the raw socket these IP packets in one batch. */
  deliver(...packets: Uint8Array[]): void {
    const r = this.reader!;
    const ring = new Uint8Array(r.ring);
    packets.forEach((p, i) => {
      ring.set(p.subarray(0, r.slot), i * r.slot);
      r.lengths[i] = p.length;
    });
    r.cb(packets.length);
  }
}

export class FakeSocket implements IcmpDgramSocket {
  sent: Array<{ msg: Uint8Array; address: string }> = [];
  closed = false;
  sendError: Error | null = null;
  constructor(
    readonly fd: number,
    readonly receive: (msg: Uint8Array, address: string) => void,
    readonly fail: (err: Error) => void,
  ) {}
  send(msg: Uint8Array, address: string, done: (err: Error | null) => void): void {
    this.sent.push({ msg: Uint8Array.from(msg), address });
    done(this.sendError);
  }
  close(): void {
    this.closed = true;
  }
}


/** A datagram wrapper that makes FakeSockets, recorded in `sockets`. */
export function fakeWrapper(sockets: FakeSocket[]): IcmpDgramWrapper {
  return (fd, onMessage, onError) => {
    const s = new FakeSocket(fd, onMessage, onError);
    sockets.push(s);
    return s;
  };
}
