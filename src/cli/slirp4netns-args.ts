/**
 * slirp4netns's command line (slirp4netns(1), v1.2), as `skiff slirp4netns` accepts it: what
 * RootlessKit, Podman and rootless Docker pass. Parsed like getopt_long(3): short options with
 * attached or separate values (`-r3`, `-r 3`), long ones with `=` or a separate value, options
 * and operands in any order, `--` ending options. Pure: returns options or a message.
 *
 * The help text lists the option names, because that is how callers detect features:
 * RootlessKit requires `--netns-type` (its test for slirp4netns >= v0.4.0) and looks for
 * `--enable-ipv6`, `--cidr`, `--disable-host-loopback`, `--api-socket`, `--enable-sandbox`,
 * `--enable-seccomp`; Podman looks for `--mtu`, `--disable-host-loopback`, `--enable-sandbox`,
 * `--enable-seccomp`, `--cidr`, `--outbound-addr`, `--enable-ipv6` and passes only those it found.
 */

export interface SlirpOptions {
  configure: boolean;
  exitFd?: number;
  readyFd?: number;
  mtu: number;
  enableIpv6: boolean;
  apiSocket?: string;
  cidr: string;
  disableHostLoopback: boolean;
  netnsType: "pid" | "path";
  usernsPath?: string;
  enableSandbox: boolean;
  enableSeccomp: boolean;
  disableDns: boolean;
  macAddress?: string;
  /** PID or namespace path. */
  target: string;
  tap: string;
  /** skiff's own: no virtio-net offload on the TAP. */
  noOffload: boolean;
}

export type SlirpParse = { kind: "run"; opts: SlirpOptions } | { kind: "help" } | { kind: "version" } | { kind: "error"; message: string };

/** Version line in slirp4netns's runc-like format; the first line is what a parser reads. */
export function slirpVersionText(skiffVersion: string): string {
  return `slirp4netns version 1.2.0+skiff-${skiffVersion}\ncommit: none (skiff ${skiffVersion}, a userspace network stack in TypeScript; no libslirp)\nlibslirp: none\nSLIRP_CONFIG_VERSION_MAX: 0\n`;
}

export function slirpHelpText(argv0: string): string {
  return `Usage: ${argv0} [OPTION]... PID|PATH TAPNAME
User-mode networking for unprivileged network namespaces, served by skiff (a drop-in for slirp4netns).

-c, --configure          bring up the interface (and lo): 10.0.2.100/24, default route via 10.0.2.2
-e, --exit-fd=FD         specify the FD for terminating slirp4netns
-r, --ready-fd=FD        specify the FD to write to when the network is ready ("1", then closed)
-m, --mtu=MTU            specify MTU (default=1500, max=65521)
-6, --enable-ipv6        enable IPv6 (not implemented in skiff yet: refused with an error)
-a, --api-socket=PATH    specify API socket path (add_hostfwd, list_hostfwd, remove_hostfwd)
--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24)
--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace
--netns-type=TYPE        specify network namespace type ([path|pid], default=pid)
--userns-path=PATH       specify user namespace path
--enable-sandbox         accepted; skiff does not pivot_root into a sandbox (it runs with the caller's rights, no more)
--enable-seccomp         accepted; skiff installs no seccomp filter
--disable-dns            disables 10.0.2.3 (or configured internal ip) DNS server
--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)
--no-offload             (skiff) no checksum/segmentation offload on the TAP
-h, --help               show this help and exit
-v, --version            show version and exit
`;
}

type Spec = { key: keyof SlirpOptions | "help" | "version"; value: boolean };
const LONG: Record<string, Spec> = {
  configure: { key: "configure", value: false },
  "exit-fd": { key: "exitFd", value: true },
  "ready-fd": { key: "readyFd", value: true },
  mtu: { key: "mtu", value: true },
  "enable-ipv6": { key: "enableIpv6", value: false },
  "api-socket": { key: "apiSocket", value: true },
  cidr: { key: "cidr", value: true },
  "disable-host-loopback": { key: "disableHostLoopback", value: false },
  "netns-type": { key: "netnsType", value: true },
  "userns-path": { key: "usernsPath", value: true },
  "enable-sandbox": { key: "enableSandbox", value: false },
  "enable-seccomp": { key: "enableSeccomp", value: false },
  "disable-dns": { key: "disableDns", value: false },
  macaddress: { key: "macAddress", value: true },
  "no-offload": { key: "noOffload", value: false },
  help: { key: "help", value: false },
  version: { key: "version", value: false },
};
const SHORT: Record<string, string> = { c: "configure", e: "exit-fd", r: "ready-fd", m: "mtu", "6": "enable-ipv6", a: "api-socket", h: "help", v: "version" };
/** Options of slirp4netns that skiff does not implement: refused by name. */
const UNSUPPORTED = new Set(["outbound-addr", "outbound-addr6", "target-type", "create-sandbox", "no-host-loopback"]);

function fd(v: string, name: string): number | string {
  return /^\d+$/.test(v) ? Number(v) : `${name} must be a non-negative integer`;
}

export function parseSlirpArgs(args: string[]): SlirpParse {
  const o: SlirpOptions = {
    configure: false,
    mtu: 1500,
    enableIpv6: false,
    cidr: "10.0.2.0/24",
    disableHostLoopback: false,
    netnsType: "pid",
    enableSandbox: false,
    enableSeccomp: false,
    disableDns: false,
    noOffload: false,
    target: "",
    tap: "",
  };
  const operands: string[] = [];
  const set = (name: string, value: string | undefined): string | undefined => {
    const spec = LONG[name];
    if (spec.key === "help" || spec.key === "version") return spec.key;
    if (!spec.value) {
      (o as unknown as Record<string, unknown>)[spec.key] = true;
      return undefined;
    }
    const v = value!;
    switch (spec.key) {
      case "exitFd":
      case "readyFd": {
        const n = fd(v, name);
        if (typeof n === "string") return `error: ${n}`;
        o[spec.key] = n;
        return undefined;
      }
      case "mtu":
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65521) return "error: MTU must be a positive integer (< 65522)";
        o.mtu = Number(v);
        return undefined;
      case "netnsType":
        if (v !== "pid" && v !== "path") return `error: --netns-type must be pid or path (skiff does not support ${JSON.stringify(v)})`;
        o.netnsType = v;
        return undefined;
      default:
        (o as unknown as Record<string, unknown>)[spec.key] = v;
        return undefined;
    }
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let name: string;
    let value: string | undefined;
    if (a === "--") {
      operands.push(...args.slice(i + 1));
      break;
    } else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      value = eq < 0 ? undefined : a.slice(eq + 1);
      if (UNSUPPORTED.has(name)) return { kind: "error", message: `--${name} is not supported by skiff` };
      if (!(name in LONG)) return { kind: "error", message: `unrecognized option '${a}'` };
      if (!LONG[name].value && value !== undefined) return { kind: "error", message: `option '--${name}' doesn't allow an argument` };
    } else if (a.startsWith("-") && a.length > 1) {
      const long = SHORT[a[1]];
      if (long === undefined) return { kind: "error", message: `invalid option -- '${a[1]}'` };
      if (!LONG[long].value && a.length > 2) return { kind: "error", message: `combined short options are not supported: ${a}` };
      name = long;
      value = a.length > 2 ? a.slice(2) : undefined;
    } else {
      operands.push(a);
      continue;
    }
    if (LONG[name].value && value === undefined) {
      if (i + 1 >= args.length) return { kind: "error", message: `option '--${name}' requires an argument` };
      value = args[++i];
    }
    const r = set(name, value);
    if (r === "help" || r === "version") return { kind: r };
    if (r !== undefined) return { kind: "error", message: r.replace(/^error: /, "") };
  }
  if (o.macAddress !== undefined && !o.configure) return { kind: "error", message: "--macaddr cannot be specified when --configure or -c is not specified" };
  if (o.macAddress !== undefined && !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(o.macAddress)) return { kind: "error", message: `--macaddress: not a MAC address: ${o.macAddress}` };
  if (operands.length < 2) return { kind: "error", message: "expected PID|PATH and TAPNAME" };
  if (operands.length > 2) return { kind: "error", message: `too many arguments: ${operands.slice(2).join(" ")}` };
  [o.target, o.tap] = operands;
  if (o.netnsType === "pid" && (!/^\d+$/.test(o.target) || Number(o.target) <= 0)) return { kind: "error", message: "PID must be a positive integer" };
  if (Buffer.byteLength(o.tap) > 15 || o.tap === "") return { kind: "error", message: `TAPNAME must be 1 to 15 bytes: ${JSON.stringify(o.tap)}` };
  return { kind: "run", opts: o };
}
