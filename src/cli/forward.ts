/**
 * Port forwards and the control API for the skiff commands: `-p` forwards and `--api-socket`
 * set up on a running network (`startControl`), and `skiff forward add|ls|rm --api-socket PATH`,
 * a client of the API.
 */

import type { Command } from "commander";
import type { Logger } from "pino";
import { formatIpv4, formatMac } from "../common/addr.js";
import type { CaptureChannel } from "../link/capture.js";
import { ForwardManager, type ForwardInfo } from "../forward/manager.js";
import { ApiServer, type ApiLimits } from "../forward/api.js";
import { apiRequest } from "../forward/client.js";
import { parsePublish, type ForwardSpec } from "../forward/spec.js";
import type { Network } from "./network.js";

export interface ControlOptions {
  /** `-p` values. */
  publish?: string[];
  apiSocket?: string;
  /** Where forwards go by default (the guest's address); without it the API requires guestAddr. */
  guestIp?: string;
  /** The capture wrapper of the guest link, for `POST /capture`. */
  capture?: CaptureChannel;
  /** Bounds of the control API (connections, timeouts); defaults in src/forward/api.ts. */
  apiLimits?: ApiLimits;
  log: Logger;
}

export interface Control {
  forwards: ForwardManager;
  close(): Promise<void>;
}

/** Parse every `-p` first (nothing is opened on a parse error), then open them all or none. */
export function parsePublishOptions(publish: string[], guestIp: string): ForwardSpec[] {
  const specs: ForwardSpec[] = [];
  for (const p of publish) {
    const r = parsePublish(p, guestIp);
    if (typeof r === "string") throw new Error(r);
    specs.push(...r);
  }
  return specs;
}

export async function startControl(net: Network, opts: ControlOptions): Promise<Control> {
  if ((opts.publish ?? []).length > 0 && opts.guestIp === undefined) throw new Error("-p needs a guest address");
  const specs = parsePublishOptions(opts.publish ?? [], opts.guestIp ?? "");
  const forwards = new ForwardManager(net.stack, net.tcp, { log: opts.log });
  const opened: ForwardInfo[] = await forwards.add(specs);
  for (const f of opened) opts.log.info(f, "forwarding");
  let api: ApiServer | undefined;
  const cap = opts.capture;
  // A write error stops the capture (--pcap or POST /capture); say so once.
  cap?.setErrorHandler((err, path) => opts.log.error({ path, err: err.message }, "capture stopped: write error"));
  try {
    if (opts.apiSocket !== undefined) {
      api = await ApiServer.listen(opts.apiSocket, {
        forwards,
        defaultGuest: opts.guestIp,
        log: opts.log,
        leases: () =>
          net.leases().map((l) => ({ mac: formatMac(l.mac), ip: formatIpv4(l.ip), static: l.static, expiresInMs: Number.isFinite(l.expiresAt) ? Math.max(0, l.expiresAt - net.stack.now()) : null })),
        dns: net.dns.records,
        shares: net.shares.registry,
        stats: () => ({
          attachments: net.stack.attached.map((p) => ({ id: p.id, name: p.channel.name, ...p.channel.stats })),
          stack: net.stack.counters.snapshot(),
          tcp: { ...net.tcp.counters, flowsOpen: net.tcp.size, halfOpen: net.tcp.halfOpenCount },
          tcpTranslate: { ...net.tcpTranslator.counters },
          udpTranslate: { ...net.udp.counters, flowsOpen: net.udp.size },
          icmpTranslate: { ...net.icmp.counters },
          fdBudget: { ...net.fds.counters, size: Number.isFinite(net.fds.size) ? net.fds.size : null },
          forwards: forwards.stats(),
          ...(cap ? { capture: cap.status() } : {}),
          shares: { ...net.shares.counters, connectionsOpen: net.shares.connections },
        }),
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
    forwards.closeAll();
    throw e;
  }
  return {
    forwards,
    close: async () => {
      await api?.close();
      forwards.closeAll();
    },
  };
}

/** `skiff forward add|ls|rm --api-socket PATH`. */
export function forwardCommand(program: Command, setStatus: (s: number) => void): void {
  const cmd = program.command("forward").description("add, list or remove port forwards of a running skiff (through its --api-socket)");
  const fail = (msg: string) => {
    process.stderr.write(`skiff forward: ${msg}\n`);
    setStatus(1);
  };
  const call = async (socket: string, method: string, path: string, body?: unknown) => {
    try {
      return await apiRequest(socket, method, path, body);
    } catch (e) {
      throw new Error(`cannot reach the API at ${socket}: ${(e as Error).message}`);
    }
  };
  const show = (f: ForwardInfo) => `${f.id}\t${f.proto}\t${f.hostAddr}:${f.hostPort}\t->\t${f.guestAddr}:${f.guestPort}\n`;
  cmd
    .command("add")
    .description("add forwards: [hostAddr:]hostPort:guestPort[/udp] (ranges allowed), to --guest or the running command's guest")
    .argument("<spec...>", "forward specs, as with skiff run -p")
    .requiredOption("--api-socket <path>", "the control API socket")
    .option("--guest <ip>", "guest address (default: the one skiff forwards to)")
    .action(async (specs: string[], o) => {
      const all: Array<Partial<ForwardSpec>> = [];
      for (const s of specs) {
        const r = parsePublish(s, o.guest ?? "0.0.0.0");
        if (typeof r === "string") return fail(r);
        for (const x of r) all.push(o.guest ? x : { proto: x.proto, hostAddr: x.hostAddr, hostPort: x.hostPort, guestPort: x.guestPort });
      }
      const added: string[] = [];
      for (const spec of all) {
        const r = await call(o.apiSocket, "POST", "/forwards", spec);
        if (r.status !== 201) {
          // All or nothing, as with -p: take back what this command added.
          for (const id of added) await call(o.apiSocket, "DELETE", `/forwards/${id}`);
          return fail((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
        }
        added.push((r.body as ForwardInfo).id);
        process.stdout.write(show(r.body as ForwardInfo));
      }
    });
  cmd
    .command("ls")
    .description("list forwards")
    .requiredOption("--api-socket <path>", "the control API socket")
    .option("--json", "print JSON")
    .action(async (o) => {
      const r = await call(o.apiSocket, "GET", "/forwards");
      if (r.status !== 200) return fail((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
      const list = r.body as ForwardInfo[];
      process.stdout.write(o.json ? JSON.stringify(list) + "\n" : list.map(show).join(""));
    });
  cmd
    .command("rm")
    .description("remove forwards by id (open connections finish)")
    .argument("<id...>")
    .requiredOption("--api-socket <path>", "the control API socket")
    .action(async (ids: string[], o) => {
      for (const id of ids) {
        const r = await call(o.apiSocket, "DELETE", `/forwards/${encodeURIComponent(id)}`);
        if (r.status !== 200) return fail((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
      }
    });
}
