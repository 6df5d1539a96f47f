/**
 * A Linux network namespace guest served by an in-process skiff stack through a TAP device:
 * the harness of the end-to-end tests. The namespace gets 192.168.65.3/24 with the gateway
 * as default route (statically; DHCP has its own tests), IPv6 off so the link carries only
 * what the test does — or, with `ipv6`, that static IPv6 address (no DAD) and the default route
 * via the gateway's link-local address.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { createNetns, type Netns } from "./netns.js";
import { TapChannel } from "../../src/link/tap.js";
import { NetworkStack, type StackOptions } from "../../src/stack/stack.js";
import { TcpLayer, type TcpLayerOptions } from "../../src/stack/tcp.js";
import { TcpTranslator, type TcpTranslateOptions } from "../../src/socket-translate/tcp-translator.js";
import { AddressPolicy, type PolicyOptions } from "../../src/socket-translate/policy.js";
import { UdpTranslator, type UdpTranslateOptions } from "../../src/socket-translate/udp-translator.js";

export interface Guest {
  ns: Netns;
  stack: NetworkStack;
  tap: TapChannel;
  tcp: TcpLayer;
  translator: TcpTranslator;
  udp: UdpTranslator;
  close(): Promise<void>;
}

export interface GuestOptions {
  mtu?: number;
  /** Checksum/segmentation offload on the TAP (virtio-net header), as `skiff run` uses by default. */
  offload?: boolean;
  stack?: StackOptions;
  tcp?: TcpLayerOptions;
  translate?: TcpTranslateOptions;
  policy?: Partial<PolicyOptions>;
  udp?: UdpTranslateOptions;
  /** A static IPv6 address for the guest (in the /64 prefix); IPv6 stays off without one. */
  ipv6?: string;
}

export async function startGuest(prefix: string, opts: GuestOptions = {}): Promise<Guest> {
  const mtu = opts.mtu ?? 1500;
  const ns = await createNetns(prefix);
  const stack = new NetworkStack({ mtu, ...opts.stack });
  const tap = TapChannel.open({ name: "sk0", netns: ns.path, mtu, offload: opts.offload ?? false });
  stack.attach(tap);
  const tcp = new TcpLayer(stack, opts.tcp);
  const policy = new AddressPolicy({ hostAliasIp: stack.config.hostAliasIp, ...opts.policy });
  const translator = new TcpTranslator(tcp, policy, opts.translate);
  const udp = new UdpTranslator(stack, policy, opts.udp);
  const v6 = opts.ipv6;
  for (const cmd of [
    ...(v6 === undefined ? [["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]] : []),
    ["ip", "link", "set", "sk0", "address", "52:54:00:12:34:56", "mtu", String(mtu), "up"],
    ["ip", "addr", "add", "192.168.65.3/24", "dev", "sk0"],
    ["ip", "route", "add", "default", "via", "192.168.65.1"],
    ...(v6 === undefined ? [] : [["ip", "-6", "addr", "add", `${v6}/64`, "dev", "sk0", "nodad"], ["ip", "-6", "route", "replace", "default", "via", "fe80::50:ff:fe00:1", "dev", "sk0"]]),
  ]) {
    const r = await ns.exec(cmd);
    expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).to.equal(0);
  }
  return {
    ns,
    stack,
    tap,
    tcp,
    translator,
    udp,
    close: async () => {
      tcp.close();
      udp.closeAll();
      tap.close();
      await ns.destroy();
    },
  };
}

/** Run a Python `script` (with `args`) in the guest's namespace; resolves once it prints "ready". */
export function startGuestServers(guest: Guest, script: string, args: string[] = []): Promise<ChildProcess> {
  const p = spawn("ip", ["netns", "exec", guest.ns.name, "python3", "-c", script, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise<ChildProcess>((resolve, reject) => {
    p.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve(p));
    p.on("exit", (c) => reject(new Error(`guest servers exited with ${c}`)));
  });
}
