/**
 * The host's name files: the hosts file (`/etc/hosts` format, hosts(5)) answered locally, and
 * resolv.conf (resolv.conf(5)) for the nameservers skiff forwards to.
 *
 * Both are re-read when they change: on use, at most once per `checkIntervalMs` (default 1 s),
 * the file's mtime/size/inode are compared with the last read. A missing or unreadable file
 * reads as empty, with one log line per change of state (not per query).
 */

import { readFileSync, statSync } from "node:fs";
import type { Logger } from "pino";
import { parseIpv4Address } from "../common/addr.js";
import { addAddress, emptyRecords, normalizeName, parseIpv6, type NameRecords } from "./records.js";

/** A parsed hosts file: addresses by normalised name, and the first name of each IPv4 address. */
export interface HostsTable {
  byName: Map<string, NameRecords>;
  byIpv4: Map<number, string>;
}

/**
 * hosts(5): `IP canonical_hostname [aliases...]`, `#` to end of line is a comment, fields
 * separated by blanks. IPv4 and IPv6 addresses (a `%zone` on IPv6 is ignored); lines whose
 * first field is not an address are skipped. Every name of a line gets the address.
 */
export function parseHosts(text: string): HostsTable {
  const byName = new Map<string, NameRecords>();
  const byIpv4 = new Map<number, string>();
  for (const raw of text.split(/\r?\n/)) {
    const hash = raw.indexOf("#");
    const fields = (hash < 0 ? raw : raw.slice(0, hash)).trim().split(/\s+/);
    if (fields.length < 2) continue;
    const ip = fields[0];
    const v4 = parseIpv4Address(ip);
    if (v4 === undefined && parseIpv6(ip) === undefined) continue;
    for (const f of fields.slice(1)) {
      const name = normalizeName(f);
      if (name.length === 0) continue;
      let r = byName.get(name);
      if (r === undefined) {
        r = emptyRecords();
        byName.set(name, r);
      }
      addAddress(r, ip);
      if (v4 !== undefined && !byIpv4.has(v4)) byIpv4.set(v4, name);
    }
  }
  return { byName, byIpv4 };
}

export interface ResolvConf {
  /** Addresses from `nameserver` lines, in order (IPv6 zone kept: `fe80::1%eth0`). */
  nameservers: string[];
  /** Domains of the last `search` (or `domain`) line. */
  search: string[];
}

/** resolv.conf(5): `nameserver`, `search` and `domain` lines; `#` and `;` start comments. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest.length >= 1) {
      const ip = rest[0];
      if (parseIpv4Address(ip) !== undefined || parseIpv6(ip) !== undefined) nameservers.push(ip);
    } else if ((key === "search" || key === "domain") && rest.length >= 1) {
      search = rest.map(normalizeName).filter((d) => d.length > 0);
    }
  }
  return { nameservers, search };
}

export interface PolledFileOptions {
  /** Milliseconds clock (injected in tests). */
  now?: () => number;
  /** Look at the file at most this often (ms). */
  checkIntervalMs?: number;
  log?: Logger;
}

/** A text file parsed on first use and again whenever it has changed (checked at most once per interval). */
export class PolledFile<T> {
  private value: T;
  private checkedAt = -Infinity;
  private stamp = "";
  private readonly now: () => number;
  private readonly interval: number;
  private readonly log: Logger | undefined;
  /** How many times the file was (re)parsed. */
  loads = 0;

  constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly empty: T,
    opts: PolledFileOptions = {},
  ) {
    this.value = empty;
    this.now = opts.now ?? (() => performance.now());
    this.interval = opts.checkIntervalMs ?? 1000;
    this.log = opts.log;
  }

  /** The current contents, re-read first if the file changed. */
  get(): T {
    const now = this.now();
    if (now - this.checkedAt < this.interval) return this.value;
    this.checkedAt = now;
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (stamp === this.stamp) return this.value;
      this.value = this.parse(readFileSync(this.path, "utf8"));
      this.loads++;
      this.log?.debug({ path: this.path }, "dns: loaded");
    } catch (e) {
      stamp = "missing";
      if (stamp !== this.stamp) this.log?.warn({ path: this.path, err: (e as Error).message }, "dns: cannot read file; treating it as empty");
      this.value = this.empty;
    }
    this.stamp = stamp;
    return this.value;
  }
}

export const EMPTY_HOSTS: HostsTable = { byName: new Map(), byIpv4: new Map() };

/** The hosts file as the resolver uses it. */
export class HostsFile {
  private readonly file: PolledFile<HostsTable>;

  constructor(path = "/etc/hosts", opts: PolledFileOptions = {}) {
    this.file = new PolledFile(path, parseHosts, EMPTY_HOSTS, opts);
  }

  lookup(name: string): NameRecords | undefined {
    return this.file.get().byName.get(name);
  }

  reverse(ip: number): string | undefined {
    return this.file.get().byIpv4.get(ip);
  }

  get loads(): number {
    return this.file.loads;
  }
}

/** resolv.conf as the forwarder uses it. */
export class ResolvConfFile {
  private readonly file: PolledFile<ResolvConf>;

  constructor(path = "/etc/resolv.conf", opts: PolledFileOptions = {}) {
    this.file = new PolledFile(path, parseResolvConf, { nameservers: [], search: [] }, opts);
  }

  get nameservers(): readonly string[] {
    return this.file.get().nameservers;
  }

  get search(): readonly string[] {
    return this.file.get().search;
  }
}
