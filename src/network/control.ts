/**
 * Port forwards and the control API of a running network: `-p`-style forwards opened all or
 * none (`parsePublishOptions`), and the HTTP+JSON API on a Unix socket (src/forward/api.ts)
 * wired to the network's forwards, leases, DNS records, counters and capture (`startControl`).
 */

import type { Logger } from "pino";
import { formatIpv4, formatMac } from "../common/addr.js";
import { ForwardManager, type ForwardInfo } from "../forward/manager.js";
import type { ApiServer, ApiLimits } from "../forward/api.js";
import { parsePublish, type ForwardSpec } from "../forward/spec.js";
import type { NetworkServices } from "./services.js";
import type { CaptureControl } from "./capture.js";
import { networkStats, networkStatsTree } from "./stats.js";
import type { StatsTree } from "../common/counters.js";

export interface ControlOptions {
  /** `-p` values. */
  publish?: string[];
  apiSocket?: string;
  /** Where forwards go by default (the guest's address); without it the API requires guestAddr. */
  guestIp?: string;
  /** The guest's IPv6 address, if known (see `NetworkOptions.defaultGuest6`). */
  guestIp6?: string;
  /** The capture of the guest links, for `POST /capture`. */
  capture?: CaptureControl;
  /** The forwards to serve (kept open by `close()`); default a new set that `close()` closes. */
  forwards?: ForwardManager;
  /** Bounds of the control API (connections, timeouts); defaults in src/forward/api.ts. */
  apiLimits?: ApiLimits;
  /** The stats tree GET /stats walks (`Network`'s own); default the services', forwards' and capture's. */
  stats?: StatsTree;
  log: Logger;
}

export interface Control {
  forwards: ForwardManager;
  /** The API server, when `apiSocket` was given. */
  api?: ApiServer;
  close(): Promise<void>;
}

/** Parse every `-p` first (nothing is opened on a parse error), then open them all or none. */
export function parsePublishOptions(publish: string[], guestIp: string, guestIp6?: string): ForwardSpec[] {
  const specs: ForwardSpec[] = [];
  for (const p of publish) {
    const r = parsePublish(p, guestIp, guestIp6);
    if (typeof r === "string") throw new Error(r);
    specs.push(...r);
  }
  return specs;
}

/** The leases as the API and `Network.leases()` show them. */
export function formatLeases(net: NetworkServices): LeaseInfo[] {
  const now = net.stack.now();
  return net.leases().map((l) => ({ mac: formatMac(l.mac), ip: formatIpv4(l.ip), static: l.static, expiresInMs: Number.isFinite(l.expiresAt) ? Math.max(0, l.expiresAt - now) : null }));
}

/** A guest's address: a DHCP binding, or a static lease. */
export interface LeaseInfo {
  mac: string;
  ip: string;
  static: boolean;
  /** Time left, ms; null for a static lease no client has asked for (it never expires). */
  expiresInMs: number | null;
}

export async function startControl(net: NetworkServices, opts: ControlOptions): Promise<Control> {
  if ((opts.publish ?? []).length > 0 && opts.guestIp === undefined) throw new Error("-p needs a guest address");
  const specs = parsePublishOptions(opts.publish ?? [], opts.guestIp ?? "", opts.guestIp6);
  const ownForwards = opts.forwards === undefined;
  const forwards = opts.forwards ?? new ForwardManager(net.stack, net.tcp, { log: opts.log });
  const opened: ForwardInfo[] = await forwards.add(specs);
  for (const f of opened) opts.log.info(f, "forwarding");
  let api: ApiServer | undefined;
  const cap = opts.capture;
  const tree = opts.stats ?? networkStatsTree(net, forwards, cap);
  // A write error stops the capture (--pcap or POST /capture); say so once.
  cap?.setErrorHandler((err, path) => opts.log.error({ path, err: err.message }, "capture stopped: write error"));
  try {
    if (opts.apiSocket !== undefined) {
      // Loaded on demand: the API server brings node:http, which a network without an API
      // socket never needs (about 1 MB of resident memory; issue 20).
      const { ApiServer } = await import("../forward/api.js");
      api = await ApiServer.listen(opts.apiSocket, {
        forwards,
        defaultGuest: opts.guestIp,
        defaultGuest6: opts.guestIp6,
        log: opts.log,
        leases: () => formatLeases(net),
        dns: net.dns.records,
        shares: net.shares.registry,
        stats: () => networkStats(tree),
        capture: cap && {
          start: (path) => cap.startFile(path),
          status: () => cap.status(),
          stop: () => {
            const was = cap.capturing !== undefined;
            cap.stopCapture();
            return was;
          },
        },
      }, opts.apiLimits);
    }
  } catch (e) {
    if (ownForwards) forwards.closeAll();
    else for (const f of opened) await forwards.remove(f.id);
    throw e;
  }
  return {
    forwards,
    api,
    close: async () => {
      await api?.close();
      if (ownForwards) forwards.closeAll();
    },
  };
}
