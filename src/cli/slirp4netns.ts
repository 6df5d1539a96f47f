/**
 * `skiff slirp4netns [OPTION]... PID|PATH TAPNAME`: skiff as a drop-in slirp4netns, for the tools
 * that give rootless containers their network through it (RootlessKit `--net=slirp4netns
 * --slirp4netns-binary=…`, Podman's `network_cmd_path`, rootless Docker through RootlessKit).
 * Also run as `skiff-slirp4netns` (bin/skiff-slirp4netns.js), since those tools take one path.
 *
 * slirp4netns's network (slirp4netns(1)): 10.0.2.0/24 by default (`--cidr`), the guest at .100,
 * gateway and host loopback at .2, DNS at .3. On skiff's stack (DESIGN.md addressing plan) that is
 * the host alias at .2 (which also answers ARP, so the guest's default route via .2 works) and the
 * gateway, with skiff's DNS server, at .3. `--disable-host-loopback` keeps .2 routable but puts
 * .2/32 on the deny list; `--disable-dns` closes the DNS service.
 *
 * The TAP is entered through the helper of src/link/userns.ts, as slirp4netns does: PID means
 * /proc/PID/ns/net, entered through /proc/PID/ns/user (or `--userns-path`); `--netns-type=path`
 * means PATH, through `--userns-path` when given. The TAP is opened with virtio-net offload
 * (`--no-offload` turns it off). `--ready-fd` gets "1" and is closed once the TAP is served and the
 * API socket listens; a poll event on `--exit-fd` (data, or its writer closing), SIGTERM, SIGINT,
 * or the TAP device being deleted ends the process with status 0. As with slirp4netns, the end of
 * the namespace's processes is not enough: the TAP's descriptor, opened inside, keeps the network
 * namespace alive, so callers use --exit-fd or a signal.
 */

import { closeSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import type { Logger } from "pino";
import { formatIpv4, formatMac } from "../common/addr.js";
import { checkSocketPath } from "../common/socket-path.js";
import { resolveConfig, prefixMask, broadcastAddress } from "../stack/config.js";
import { DEFAULT_DENY } from "../socket-translate/policy.js";
import { checkApiSocketLength } from "../forward/slirp-api.js";
import { openTapInNamespace } from "../link/userns.js";
import type { TapChannel } from "../link/tap.js";
import { createNetwork } from "../network/network.js";
import { cliOptions } from "./serve.js";
import { parseSlirpArgs, slirpHelpText, slirpVersionText, type SlirpOptions } from "./slirp4netns-args.js";
import { skiffVersion } from "./version.js";

/** slirp4netns's offsets in its network (slirp4netns(1) "Default configuration"). */
const HOST_OFFSET = 2;
const DNS_OFFSET = 3;
const GUEST_OFFSET = 100;

/** The command: parse, serve until told to stop; the exit status. */
export async function slirp4netns(args: string[], argv0: string, log: Logger): Promise<number> {
  const p = parseSlirpArgs(args);
  if (p.kind === "help") {
    process.stdout.write(slirpHelpText(argv0));
    return 0;
  }
  if (p.kind === "version") {
    process.stdout.write(slirpVersionText(skiffVersion()));
    return 0;
  }
  if (p.kind === "error") {
    process.stderr.write(`${argv0}: ${p.message}\n(see ${argv0} --help)\n`);
    return 1;
  }
  try {
    return await serveSlirp(p.opts, log);
  } catch (e) {
    process.stderr.write(`${argv0}: ${(e as Error).message}\n`);
    return 1;
  }
}

/** slirp4netns's addresses for `--cidr`, as dotted strings; throws when the guest's .100 does not fit. */
export function slirpAddresses(cidr: string): { network: string; mask: string; host: string; dns: string; guest: string; prefix: number } {
  const cfg = resolveConfig({ subnet: cidr, gatewayIp: undefined, hostAliasIp: null });
  const at = (off: number) => (cfg.network + off) >>> 0;
  if (at(GUEST_OFFSET) >= broadcastAddress(cfg)) throw new Error(`--cidr ${cidr}: too small, the guest's address is the network's .${GUEST_OFFSET} (use a /25 or larger)`);
  return {
    network: formatIpv4(cfg.network),
    mask: formatIpv4(prefixMask(cfg.prefixLength)),
    host: formatIpv4(at(HOST_OFFSET)),
    dns: formatIpv4(at(DNS_OFFSET)),
    guest: formatIpv4(at(GUEST_OFFSET)),
    prefix: cfg.prefixLength,
  };
}

async function serveSlirp(o: SlirpOptions, log: Logger): Promise<number> {
  if (o.enableIpv6) throw new Error("--enable-ipv6: IPv6 is not implemented in skiff yet (run without it; for Podman set network_cmd_options = [\"enable_ipv6=false\"] in containers.conf)");
  const a = slirpAddresses(o.cidr);
  if (o.apiSocket !== undefined) {
    checkApiSocketLength(o.apiSocket);
    checkSocketPath(o.apiSocket, "--api-socket");
  }
  if (o.enableSandbox) process.stderr.write("skiff slirp4netns: --enable-sandbox: skiff does not pivot_root into a sandbox as slirp4netns does; it keeps the rights it was started with (no more)\n");
  if (o.enableSeccomp) process.stderr.write("skiff slirp4netns: --enable-seccomp: skiff installs no seccomp filter\n");
  const netns = o.netnsType === "pid" ? `/proc/${o.target}/ns/net` : o.target;
  const userns = o.usernsPath ?? (o.netnsType === "pid" ? `/proc/${o.target}/ns/user` : undefined);
  const options = {
    mtu: o.mtu,
    subnet: `${a.network}/${a.prefix}`,
    gatewayIp: a.dns,
    hostIp: a.host,
    deny: o.disableHostLoopback ? [...DEFAULT_DENY, `${a.host}/32`] : undefined,
    // One guest on its own TAP, configured by hand (its MAC unknown to us): nothing to isolate.
    validateSources: false,
    switch: false,
    defaultGuest: a.guest,
    log,
  };
  cliOptions(options);
  const net = await createNetwork(options);
  if (o.disableDns) net.services.dns.close();
  let tap: TapChannel | undefined;
  let exitWatch: Socket | undefined;
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const onSignal = (sig: NodeJS.Signals) => stop(sig);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    tap = openTapInNamespace({
      tap: o.tap,
      mtu: o.mtu,
      offload: !o.noOffload,
      netns,
      userns,
      configure: o.configure ? { addr: a.guest, mask: a.mask, gateway: a.host, mtu: o.mtu, mac: o.macAddress } : undefined,
    });
    tap.on("closed", (err?: Error) => stop(err ? `TAP: ${err.message}` : "TAP closed"));
    net.attach(tap);
    if (o.apiSocket !== undefined) await net.listenSlirpApi(o.apiSocket);
    if (o.exitFd !== undefined) exitWatch = watchExitFd(o.exitFd, () => stop("exit-fd"));
    process.stdout.write(
      `Starting skiff (slirp4netns-compatible)\n* MTU: ${o.mtu}\n* Network: ${a.network}\n* Netmask: ${a.mask}\n* Gateway: ${a.host}\n* DNS: ${o.disableDns ? "disabled" : a.dns}\n` +
        `* Recommended IP: ${a.guest}\n* Gateway MAC: ${formatMac(net.config.gatewayMac)}\n${o.apiSocket ? `* API Socket: ${o.apiSocket}\n` : ""}`,
    );
    if (o.readyFd !== undefined) {
      writeSync(o.readyFd, "1");
      closeSync(o.readyFd);
    }
    const why = await stopped;
    log.info({ why }, "stopping");
    return 0;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    exitWatch?.destroy();
    await net.close();
    tap?.close();
  }
}

/** Call `onEvent` once when `fd` (a pipe or socket) becomes readable or its writer goes away. */
function watchExitFd(fd: number, onEvent: () => void): Socket {
  let s: Socket;
  try {
    s = new Socket({ fd, readable: true, writable: false });
  } catch (e) {
    throw new Error(`--exit-fd ${fd}: ${(e as Error).message} (a pipe or socket is expected)`);
  }
  let fired = false;
  const fire = () => {
    if (fired) return;
    fired = true;
    onEvent();
  };
  s.on("data", fire);
  s.on("end", fire);
  s.on("close", fire);
  s.on("error", fire);
  return s;
}
