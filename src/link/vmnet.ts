/**
 * VPNKit/hyperkit "vmnet" attachment (the protocol of VPNKit's vmnet module): the protocol hyperkit's
 * `virtio-vpnkit` device, VPNKit's Go client and RootlessKit's `--net=vpnkit` speak to vpnkit
 * over a Unix stream socket. skiff is the server: each accepted connection is one VIF.
 *
 * Wire format (every integer little-endian, §2.1):
 *   1. Init, client → server, 49 bytes: magic "VMN3T" (5), version u32 = 22, commit (40 ASCII).
 *   2. Init reply, server → client, 49 bytes: the same layout, our magic/version/commit.
 *   3. Command, client → server, 41 bytes: type (1), UUID (36 ASCII), IPv4 u32 (4).
 *        1 = Ethernet (IPv4 field ignored), 8 = Preferred_ipv4 (IPv4 as u32 LE of the
 *        host-order number, so 192.168.65.3 is `03 41 a8 c0`), 6 = Bind_ipv4 (unsupported).
 *   4. Response, server → client, always 258 bytes:
 *        1 = VIF: mtu u16, max packet size u16 (= mtu + 50), the client's MAC (6), zeros;
 *        2 = Disconnect: length L (1), reason (L), zeros; the server then closes.
 *   5. Frames both ways: u16 length, then one Ethernet frame (no FCS) — `StreamFrameChannel`
 *      with `VMNET_PREFIX`.
 *
 * The codecs below follow the repo's codec shape (parse never throws, emit into a caller's
 * buffer); the fixed structures are declared with buffer-layout (src/common/layout.ts).
 * `VmnetIdentities` keeps the UUID → (MAC, IPv4) table (§1.2: the same UUID always
 * gets the same MAC and IP, also on a second concurrent connection); unlike vpnkit, which
 * numbers VIFs in arrival order, both are derived from the UUID by a hash, so they are also
 * stable across restarts of skiff. `VmnetListener` accepts connections on a Unix socket,
 * runs the handshake and emits one channel per VIF.
 */

import { createServer, type Server, type Socket } from "node:net";
import { createHash, randomUUID } from "node:crypto";
import { unlinkSync } from "node:fs";
import { prepareSocketPath } from "../common/socket-path.js";
import { EventEmitter } from "node:events";
import { WireError, type Parsed } from "../common/wire-error.js";
import { setMac, getMac } from "../common/bytes.js";
import { DropCounters } from "../common/counters.js";
import { formatIpv4, formatMac } from "../common/addr.js";
import { blob, decodeLayout, encodeLayout, latin1All, latin1Field, struct, u16, u32, u8 } from "../common/layout.js";
import { StreamFrameChannel, VMNET_PREFIX, type StreamChannelOptions } from "./stream-channel.js";

export const VMNET_MAGIC = "VMN3T";
export const VMNET_VERSION = 22;
/** What vpnkit puts in its reply's commit field (§2.1). */
export const VMNET_SERVER_COMMIT = "0123456789012345678901234567890123456789";
export const VMNET_INIT_LEN = 49;
export const VMNET_COMMAND_LEN = 41;
export const VMNET_RESPONSE_LEN = 258;
/** `max_packet_size` in the VIF response is the MTU plus this (§2.1). */
export const VMNET_PACKET_OVERHEAD = 50;

export const VMNET_CMD_ETHERNET = 1;
export const VMNET_CMD_BIND_IPV4 = 6;
export const VMNET_CMD_PREFERRED_IPV4 = 8;
export const VMNET_RESP_VIF = 1;
export const VMNET_RESP_DISCONNECT = 2;

// ---- the structures (little-endian throughout), declared with buffer-layout (common/layout.ts) ----

interface InitFields { magic: Buffer; version: number; commit: Buffer }
/** §2.1 steps 1 and 2: magic (5), version u32, commit (40): 49 bytes. */
const INIT = struct<InitFields>([blob(5, "magic"), u32("version"), blob(40, "commit")]);

interface CommandFields { type: number; uuid: Buffer; ip: number }
/** §2.1 step 3, Ethernet and Preferred_ipv4: type (1), UUID (36 ASCII), IPv4 u32: 41 bytes. */
const COMMAND = struct<CommandFields>([u8("type"), blob(36, "uuid"), u32("ip")]);

interface BindFields { type: number; ip: number; port: number; protocol: number }
/** §2.1 step 3, Bind_ipv4: type (1), IPv4 u32, port u16, protocol u8 (1 = UDP): 8 bytes. */
const BIND = struct<BindFields>([u8("type"), u32("ip"), u16("port"), u8("protocol")]);

interface VifFields { type: number; mtu: number; maxPacketSize: number; mac: Buffer }
/** §2.1 step 4, VIF response (then zeros to 258 bytes): type, mtu u16, max packet size u16, MAC (6). */
const VIF = struct<VifFields>([u8("type"), u16("mtu"), u16("maxPacketSize"), blob(6, "mac")]);

// ---- Init (§2.1 step 1 and 2) ------------------------------------------------------------

export interface VmnetInitRepr {
  /** Five bytes as Latin-1; "VMN3T" from every current client. */
  magic: string;
  version: number;
  /** 40 bytes as Latin-1 (a git SHA, digits, or NULs): opaque. */
  commit: string;
}

export function parseVmnetInit(b: Uint8Array): Parsed<VmnetInitRepr> {
  if (b.length < VMNET_INIT_LEN) return new WireError("vmnet", `init of ${b.length} bytes, need ${VMNET_INIT_LEN}`);
  const f = decodeLayout(INIT, b);
  return { magic: latin1All(f.magic), version: f.version, commit: latin1All(f.commit) };
}

export function emitVmnetInit(repr: VmnetInitRepr, buf: Uint8Array, off = 0): number {
  return encodeLayout(INIT, { magic: latin1Field(repr.magic, 5), version: repr.version, commit: latin1Field(repr.commit, 40) }, buf, off);
}

/** The reply vpnkit always sends. */
export const VMNET_SERVER_INIT: VmnetInitRepr = { magic: VMNET_MAGIC, version: VMNET_VERSION, commit: VMNET_SERVER_COMMIT };

// ---- Command (§2.1 step 3) ---------------------------------------------------------------

export type VmnetCommandRepr =
  /** uuid null: the client sent 36 NUL bytes and asks the server to pick one. */
  | { kind: "ethernet"; uuid: string | null }
  | { kind: "preferred-ipv4"; uuid: string | null; ip: number }
  | { kind: "bind-ipv4"; ip: number; port: number; udp: boolean };

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function parseUuid(field: Uint8Array): Parsed<string | null> {
  if (field.every((x) => x === 0)) return null;
  const s = latin1All(field);
  if (!UUID_RE.test(s)) return new WireError("vmnet", "command UUID is not 36 characters xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
  return s.toLowerCase();
}

export function parseVmnetCommand(b: Uint8Array): Parsed<VmnetCommandRepr> {
  if (b.length < 1) return new WireError("vmnet", "empty command");
  const type = b[0];
  if (type === VMNET_CMD_BIND_IPV4) {
    // IP u32, port u16, protocol u8 (§2.1): 8 bytes in all.
    if (b.length < BIND.span) return new WireError("vmnet", "truncated Bind_ipv4 command");
    const f = decodeLayout(BIND, b);
    return { kind: "bind-ipv4", ip: f.ip, port: f.port, udp: f.protocol === 1 };
  }
  if (type !== VMNET_CMD_ETHERNET && type !== VMNET_CMD_PREFERRED_IPV4) return new WireError("vmnet", `unknown command ${type}`);
  if (b.length < VMNET_COMMAND_LEN) return new WireError("vmnet", `command of ${b.length} bytes, need ${VMNET_COMMAND_LEN}`);
  const f = decodeLayout(COMMAND, b);
  const uuid = parseUuid(f.uuid);
  if (uuid instanceof WireError) return uuid;
  if (type === VMNET_CMD_ETHERNET) return { kind: "ethernet", uuid };
  // The address is the host-order number written little-endian: octets reversed on the wire.
  return { kind: "preferred-ipv4", uuid, ip: f.ip };
}

/** Bytes of a command as a client sends it (always 41 for Ethernet and Preferred_ipv4). */
export function vmnetCommandLen(repr: VmnetCommandRepr): number {
  return repr.kind === "bind-ipv4" ? 8 : VMNET_COMMAND_LEN;
}

export function emitVmnetCommand(repr: VmnetCommandRepr, buf: Uint8Array, off = 0): number {
  if (repr.kind === "bind-ipv4") return encodeLayout(BIND, { type: VMNET_CMD_BIND_IPV4, ip: repr.ip, port: repr.port, protocol: repr.udp ? 1 : 0 }, buf, off);
  return encodeLayout(
    COMMAND,
    {
      type: repr.kind === "ethernet" ? VMNET_CMD_ETHERNET : VMNET_CMD_PREFERRED_IPV4,
      uuid: latin1Field(repr.uuid ?? "", 36),
      ip: repr.kind === "preferred-ipv4" ? repr.ip : 0,
    },
    buf,
    off,
  );
}

// ---- Response (§2.1 step 4) --------------------------------------------------------------

export type VmnetResponseRepr =
  | { kind: "vif"; mtu: number; maxPacketSize: number; mac: number }
  | { kind: "disconnect"; reason: string };

export function parseVmnetResponse(b: Uint8Array): Parsed<VmnetResponseRepr> {
  if (b.length < VMNET_RESPONSE_LEN) return new WireError("vmnet", `response of ${b.length} bytes, need ${VMNET_RESPONSE_LEN}`);
  if (b[0] === VMNET_RESP_VIF) {
    const f = decodeLayout(VIF, b);
    return { kind: "vif", mtu: f.mtu, maxPacketSize: f.maxPacketSize, mac: getMac(f.mac, 0) };
  }
  if (b[0] === VMNET_RESP_DISCONNECT) return { kind: "disconnect", reason: latin1All(b.subarray(2, 2 + b[1])) };
  return new WireError("vmnet", `unknown response type ${b[0]}`);
}

export function emitVmnetResponse(repr: VmnetResponseRepr, buf: Uint8Array, off = 0): number {
  buf.fill(0, off, off + VMNET_RESPONSE_LEN);
  if (repr.kind === "vif") {
    const mac = Buffer.alloc(6);
    setMac(mac, 0, repr.mac);
    encodeLayout(VIF, { type: VMNET_RESP_VIF, mtu: repr.mtu, maxPacketSize: repr.maxPacketSize, mac }, buf, off);
  } else {
    // Disconnect: type, reason length (1), reason (Latin-1), zeros.
    const reason = repr.reason.slice(0, 255);
    buf[off] = VMNET_RESP_DISCONNECT;
    buf[off + 1] = reason.length;
    buf.set(latin1Field(reason, reason.length), off + 2);
  }
  return VMNET_RESPONSE_LEN;
}

// ---- UUID → MAC and IPv4 (§1.2) ----------------------------------------------------------

export interface VmnetIdentity {
  uuid: string;
  mac: number;
  ip: number;
}

export interface VmnetIdentitiesOptions {
  /** Addresses handed out: poolFirst … poolLast (192.168.65.3 … .254 in the default plan). */
  poolFirst: number;
  poolLast: number;
  /** Addresses in the pool never handed out (the gateway, the host alias). */
  reserved?: number[];
  /** MACs never handed out (the gateway's). */
  reservedMacs?: number[];
}

/** sha256 of the UUID (lower case), for the MAC and the address probe start. */
function uuidDigest(uuid: string, salt: number): Uint8Array {
  return createHash("sha256").update(`${salt}:${uuid}`).digest();
}

/**
 * The UUID → (MAC, IPv4) table. A UUID's MAC is `02:` followed by five bytes of a hash of the
 * UUID (locally administered, unicast); its address is the preferred one when the client
 * asked for one and it is free, or the first free address probing the pool from a hash of the
 * UUID. A binding lasts as long as the table (the process), like vpnkit's.
 */
export class VmnetIdentities {
  private readonly byUuid = new Map<string, VmnetIdentity>();
  private readonly ipOwner = new Map<number, string>();
  private readonly macOwner = new Map<number, string>();
  private readonly reserved: Set<number>;
  private readonly reservedMacs: Set<number>;

  constructor(private readonly opts: VmnetIdentitiesOptions) {
    this.reserved = new Set(opts.reserved ?? []);
    this.reservedMacs = new Set(opts.reservedMacs ?? []);
  }

  get(uuid: string): VmnetIdentity | undefined {
    return this.byUuid.get(uuid.toLowerCase());
  }

  all(): VmnetIdentity[] {
    return [...this.byUuid.values()];
  }

  /**
   * The identity of `uuid`, creating it on first use; a string is the refusal reason (vpnkit's
   * wording, §1.2), sent to the client in a Disconnect response.
   */
  assign(uuidIn: string, preferredIp?: number): VmnetIdentity | string {
    const uuid = uuidIn.toLowerCase();
    const known = this.byUuid.get(uuid);
    if (known !== undefined) {
      if (preferredIp !== undefined && preferredIp !== known.ip) return "UUID already assigned to a different IP than the IP requested by the client";
      return known;
    }
    let ip: number | undefined;
    if (preferredIp !== undefined) {
      if (!this.inPool(preferredIp)) return "Preferred IP address out of range.";
      if (this.ipOwner.has(preferredIp)) return `Preferred IP address ${formatIpv4(preferredIp)} already used.`;
      ip = preferredIp;
    } else {
      const { poolFirst, poolLast } = this.opts;
      const n = poolLast - poolFirst + 1;
      const d = uuidDigest(uuid, 0);
      const start = n > 0 ? (((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0) % n : 0;
      for (let i = 0; i < n; i++) {
        const cand = (poolFirst + ((start + i) % n)) >>> 0;
        if (this.inPool(cand) && !this.ipOwner.has(cand)) {
          ip = cand;
          break;
        }
      }
      if (ip === undefined) return "No IP addresses available.";
    }
    let mac = 0;
    for (let salt = 0; ; salt++) {
      const d = uuidDigest(uuid, salt);
      mac = 0x02 * 0x100_0000_0000 + d[0] * 0x1_0000_0000 + (((d[1] << 24) | (d[2] << 16) | (d[3] << 8) | d[4]) >>> 0);
      if (!this.macOwner.has(mac) && !this.reservedMacs.has(mac)) break;
    }
    const id: VmnetIdentity = { uuid, mac, ip };
    this.byUuid.set(uuid, id);
    this.ipOwner.set(ip, uuid);
    this.macOwner.set(mac, uuid);
    return id;
  }

  private inPool(ip: number): boolean {
    return ip >= this.opts.poolFirst && ip <= this.opts.poolLast && !this.reserved.has(ip);
  }
}

// ---- the server: listener and handshake --------------------------------------------------

export type VmnetRejectReason =
  | "bad-magic"
  | "bad-version"
  | "bad-command"
  | "unsupported-command"
  | "refused"
  | "closed-during-handshake"
  | "handshake-timeout";

export class VmnetCounters extends DropCounters<VmnetRejectReason> {
  accepted = 0;
  handshakes = 0;
}

export interface VmnetListenerOptions extends StreamChannelOptions {
  /** The UUID table (shared by every connection of this listener, and across listeners if given). */
  identities: VmnetIdentities;
  /** A connection that has not finished the handshake after this long is closed (default 10 s). */
  handshakeTimeoutMs?: number;
}

export interface VmnetVifInfo extends VmnetIdentity {
  /** The client's Init (its commit names hyperkit's build; opaque). */
  init: VmnetInitRepr;
  command: VmnetCommandRepr["kind"];
}

export interface VmnetListenerEvents {
  channel: [channel: StreamFrameChannel, vif: VmnetVifInfo];
  rejected: [reason: VmnetRejectReason, detail: string];
  error: [error: Error];
}

/**
 * Listens on a Unix socket path (a stale socket file is replaced; `close()` removes it) and
 * runs the server side of the handshake on every connection; emits `channel` with a
 * `StreamFrameChannel` (2-byte LE length framing) for each VIF, and `rejected` — counted in
 * `counters` — for each connection closed during the handshake.
 */
export class VmnetListener extends EventEmitter<VmnetListenerEvents> {
  readonly counters = new VmnetCounters();
  private readonly sockets = new Set<Socket>();
  private n = 0;

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly opts: VmnetListenerOptions,
  ) {
    super();
  }

  static async listen(path: string, opts: VmnetListenerOptions): Promise<VmnetListener> {
    await prepareSocketPath(path);
    const server = createServer();
    const listener = new VmnetListener(server, path, opts);
    server.on("connection", (s) => listener.handshake(s));
    return new Promise((resolve, reject) => {
      // A failed listen leaves nothing open (the server's handle would keep the process alive).
      const fail = (e: Error) => {
        server.close();
        reject(e);
      };
      server.once("error", fail);
      server.listen(path, () => {
        server.off("error", fail);
        server.on("error", (e) => listener.emit("error", e));
        resolve(listener);
      });
    });
  }

  /**
   * Stop accepting, close connections still in their handshake, remove the socket file.
   * Channels already handed out stay open (their owner closes them).
   */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
    return Promise.resolve();
  }

  private reject(socket: Socket, reason: VmnetRejectReason, detail: string, disconnect: boolean): void {
    this.counters.drop(reason);
    if (disconnect && !socket.destroyed) {
      const b = Buffer.alloc(VMNET_RESPONSE_LEN);
      emitVmnetResponse({ kind: "disconnect", reason: detail }, b);
      socket.end(b);
      socket.destroySoon();
    } else {
      socket.destroy();
    }
    this.emit("rejected", reason, detail);
  }

  /** Read exactly 49 then 41 bytes (control plane: plain buffer concatenation is fine here). */
  private handshake(socket: Socket): void {
    this.counters.accepted++;
    const label = `vmnet:${this.path}#${++this.n}`;
    this.sockets.add(socket);
    let buf: Buffer = Buffer.alloc(0);
    let stage: "init" | "command" | "done" = "init";
    let init: VmnetInitRepr | undefined;
    const timer = setTimeout(() => {
      cleanup();
      this.reject(socket, "handshake-timeout", "handshake not finished in time", false);
    }, this.opts.handshakeTimeoutMs ?? 10_000);
    const onClose = () => {
      cleanup();
      if (stage !== "done") this.counters.drop("closed-during-handshake");
    };
    const onError = () => {
      /* followed by close */
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
      this.sockets.delete(socket);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (stage === "init") {
        if (buf.length < VMNET_INIT_LEN) return;
        const parsed = parseVmnetInit(buf.subarray(0, VMNET_INIT_LEN));
        buf = buf.subarray(VMNET_INIT_LEN);
        if (parsed instanceof WireError) return; // cannot happen: the length is checked
        init = parsed;
        // vpnkit replies with its own Init before judging the client's (§2.1).
        const reply = Buffer.alloc(VMNET_INIT_LEN);
        emitVmnetInit(VMNET_SERVER_INIT, reply);
        socket.write(reply);
        if (parsed.magic !== VMNET_MAGIC) {
          cleanup();
          return this.reject(socket, "bad-magic", `bad magic ${JSON.stringify(parsed.magic)}, expected "${VMNET_MAGIC}"`, false);
        }
        if (parsed.version !== VMNET_VERSION) {
          cleanup();
          return this.reject(socket, "bad-version", `Client requested unsupported protocol version ${parsed.version}`, false);
        }
        stage = "command";
      }
      if (stage === "command") {
        if (buf.length < VMNET_COMMAND_LEN) {
          // Bind_ipv4 is 8 bytes: answer it as soon as it is recognisable.
          if (!(buf.length >= 8 && buf[0] === VMNET_CMD_BIND_IPV4)) return;
        }
        const cmd = parseVmnetCommand(buf);
        const used = buf.length >= 1 && buf[0] === VMNET_CMD_BIND_IPV4 ? 8 : VMNET_COMMAND_LEN;
        const rest = buf.subarray(Math.min(used, buf.length));
        cleanup();
        if (cmd instanceof WireError) return this.reject(socket, "bad-command", cmd.reason, true);
        if (cmd.kind === "bind-ipv4") return this.reject(socket, "unsupported-command", "Unsupported command Bind_ipv4", true);
        const uuid = cmd.uuid ?? randomUUID();
        const id = this.opts.identities.assign(uuid, cmd.kind === "preferred-ipv4" ? cmd.ip : undefined);
        if (typeof id === "string") return this.reject(socket, "refused", id, true);
        const mtu = this.opts.mtu ?? 1500;
        const resp = Buffer.alloc(VMNET_RESPONSE_LEN);
        emitVmnetResponse({ kind: "vif", mtu, maxPacketSize: mtu + VMNET_PACKET_OVERHEAD, mac: id.mac }, resp);
        socket.write(resp);
        stage = "done";
        this.counters.handshakes++;
        // Hand the socket to the framed phase; bytes that arrived with the command go first.
        socket.pause();
        if (rest.length > 0) socket.unshift(rest);
        const channel = new StreamFrameChannel(`${label}/${id.uuid}`, socket, VMNET_PREFIX, this.opts);
        this.emit("channel", channel, { ...id, init: init!, command: cmd.kind });
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.on("error", onError);
  }
}

/** "02:…" text of a VIF for logs. */
export function describeVif(v: VmnetIdentity): string {
  return `${v.uuid} mac ${formatMac(v.mac)} ip ${formatIpv4(v.ip)}`;
}
