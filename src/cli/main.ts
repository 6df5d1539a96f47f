/**
 * The `skiff` command line. `main(argv)` returns the exit status; errors a user can fix are
 * printed as one line (`skiff: …`), never as a stack trace.
 */

import { intArg, mtuArg, logLevelArg, DEFAULT_LOG_LEVEL, LOG_LEVEL_HELP } from "./args.js";
import { Command, CommanderError, Option } from "commander";
import { basename } from "node:path";
import { pino } from "pino";
import { run } from "./run.js";
import { serve } from "./serve.js";
import { vpnkit, IGNORED_VPNKIT_FLAGS } from "./vpnkit.js";
import { DEFAULT_BUSY_POLL_US } from "../network/options.js";
import { skiffVersion } from "./version.js";
import { slirp4netns } from "./slirp4netns.js";
import { MemoryReducer } from "../common/memory-reducer.js";

/**
 * Subcommands registered for every command line. The others (forward, vm, docker, pcap: the
 * control-API client, the QEMU launcher, the image builders, the desktop composition) are
 * loaded only when one of them, help or an unknown name is asked for, which keeps them out of
 * the memory of a long-running `skiff run` (issue 20: idle RSS).
 */
const CORE_COMMANDS: ReadonlySet<string> = new Set(["run", "vpnkit", "serve"]);

/** The commands that keep a network running: they give memory back after bursts (common/memory-reducer.ts; SKIFF_MEMORY_REDUCER=0 turns it off). */
const SERVING_COMMANDS: ReadonlySet<string> = new Set(["run", "vpnkit", "serve", "slirp4netns", "vm", "docker"]);

export async function main(argv: string[]): Promise<number> {
  const log = pino({ level: process.env.SKIFF_LOG ?? DEFAULT_LOG_LEVEL, base: undefined }, pino.destination(2));
  let status = 0;
  if (SERVING_COMMANDS.has(argv[2] ?? "") && process.env.SKIFF_MEMORY_REDUCER !== "0") new MemoryReducer();
  // slirp4netns's own command line (getopt-style), not commander's: see ./slirp4netns-args.ts.
  // Named after the program that was run: bin/skiff-slirp4netns.js (or a symlink to it) says "slirp4netns".
  if (argv[2] === "slirp4netns") return slirp4netns(argv.slice(3), basename(argv[1] ?? "") === "skiff.js" ? "skiff slirp4netns" : "slirp4netns", log);
  const program = new Command("skiff")
    .description("A userspace network stack for virtual machines and network namespaces")
    .version(skiffVersion(), "-V, --version", "print skiff's version")
    .exitOverride()
    .showHelpAfterError();

  program
    .command("run")
    .description("run a command in a private network namespace whose only network is skiff")
    .option("--mtu <n>", "MTU of the guest interface", mtuArg, 65520)
    .option("--pcap <file>", "capture the guest's traffic to a pcap file")
    .option("--subnet <cidr>", "guest network", "192.168.65.0/24")
    .option("--subnet6 <prefix>", "guest IPv6 prefix, a /64 (gateway ::1, host alias ::2)", "fd73:6b69:6666::/64")
    .option("--no-ipv6", "no IPv6 on the guest link")
    .option("--host-ip <ip>", "host alias address (0.0.0.0 disables host loopback)")
    .option("--no-host-loopback", "do not map the host alias address to the host's 127.0.0.1 (nor its IPv6 twin to ::1)")
    .option("--log-level <level>", LOG_LEVEL_HELP, logLevelArg, DEFAULT_LOG_LEVEL)
    .option("--deny <cidr>", "refuse guest connections to CIDR (repeatable; replaces the default 169.254.0.0/16)", (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option("--dns-record <name=ip>", "answer NAME with IP from skiff's DNS (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--tap <name>", "name of the TAP device inside the namespace", "tap0")
    .option("-p, --publish <spec>", "forward [hostAddr:]hostPort:guestPort[/udp] from the host into the namespace (repeatable; ranges N-M)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--api-socket <path>", "serve the control API (HTTP+JSON) on this Unix socket")
    .option("--no-offload", "no checksum/segmentation offload on the TAP device (every frame MTU-sized, checksums computed)")
    .option("--busy-poll <us>", "keep polling for this many µs after traffic instead of sleeping (lower latency, some CPU; 0 = off)", intArg(0, 100_000), DEFAULT_BUSY_POLL_US)
    .argument("<command...>", "command to run (after --)")
    .action(async (command: string[], o) => {
      log.level = o.logLevel;
      const hostIp = o.hostLoopback === false ? "0.0.0.0" : o.hostIp;
      status = await run({ mtu: o.mtu, pcap: o.pcap, subnet: o.subnet, subnet6: o.subnet6, ipv6: o.ipv6, hostIp, tap: o.tap, dnsRecords: o.dnsRecord, deny: o.deny, publish: o.publish, apiSocket: o.apiSocket, offload: o.offload, busyPollUs: o.busyPoll, command, log });
    });

  const vpnkitCmd = program
    .command("vpnkit")
    .description("serve VPNKit's vmnet protocol on a Unix socket (a drop-in for `vpnkit`, e.g. rootlesskit --net=vpnkit --vpnkit-binary=…)")
    .requiredOption("--ethernet <path>", "Unix socket to listen on for vmnet (hyperkit/RootlessKit) connections")
    .option("--mtu <n>", "MTU of the guest link", mtuArg, 1500)
    .option("--host-ip <ip>", "host alias address (0.0.0.0 disables host loopback)", "192.168.65.2")
    .option("--debug", "debug logging (as vpnkit's --debug)")
    .option("--api-socket <path>", "serve the control API (HTTP+JSON) on this Unix socket")
    .option("--log-level <level>", LOG_LEVEL_HELP, logLevelArg, DEFAULT_LOG_LEVEL);
  // vpnkit's other flags are accepted, and ignored with a warning.
  for (const [flag] of IGNORED_VPNKIT_FLAGS) {
    vpnkitCmd.addOption(new Option(`${flag} <value>`).hideHelp().argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]));
  }
  vpnkitCmd.action(async (o) => {
    log.level = o.debug ? "debug" : o.logLevel;
    const ignored = IGNORED_VPNKIT_FLAGS.map(([f]) => f).filter((f) => o[vpnkitCmd.options.find((x) => x.long === f)!.attributeName()] !== undefined);
    if (ignored.length > 0) process.stderr.write(`skiff vpnkit: warning: ignoring vpnkit flags skiff does not support: ${ignored.join(" ")}\n`);
    status = await vpnkit({ ethernet: o.ethernet, mtu: o.mtu, hostIp: o.hostIp, apiSocket: o.apiSocket, log });
  });

  const repeat = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];
  program
    .command("serve")
    .description("serve one network to guests attached over QEMU stream/dgram, vmnet (hyperkit, RootlessKit) and vfkit sockets")
    .option("--qemu-stream <addr>", "listen for QEMU -netdev stream: unix:PATH or tcp:HOST:PORT (repeatable)", repeat, [])
    .option("--qemu-dgram <path>", "QEMU -netdev dgram: skiff binds PATH (repeatable)", repeat, [])
    .option("--vmnet <path>", "listen for VPNKit vmnet clients on PATH (repeatable)", repeat, [])
    .option("--vfkit <path>", "vfkit / Apple Virtualization unixgram socket at PATH (repeatable)", repeat, [])
    .option("--mtu <n>", "MTU of the guest links", mtuArg, 1500)
    .option("--pcap <file>", "capture every guest link to a pcap file")
    .option("--subnet <cidr>", "guest network", "192.168.65.0/24")
    .option("--subnet6 <prefix>", "guest IPv6 prefix, a /64 (gateway ::1, host alias ::2)", "fd73:6b69:6666::/64")
    .option("--no-ipv6", "no IPv6 on the guest links")
    .option("--host-ip <ip>", "host alias address (0.0.0.0 disables host loopback)")
    .option("--no-host-loopback", "do not map the host alias address to the host's 127.0.0.1 (nor its IPv6 twin to ::1)")
    .option("--deny <cidr>", "refuse guest connections to CIDR (repeatable; replaces the default 169.254.0.0/16)", repeat)
    .option("--dns-record <name=ip>", "answer NAME with IP from skiff's DNS (repeatable)", repeat, [])
    .option("--share <name=dir[:ro]>", "serve host directory DIR to guests as 9P share NAME on the gateway's TCP port 564 (repeatable)", repeat, [])
    .option("--api-socket <path>", "serve the control API (HTTP+JSON) on this Unix socket")
    .option("--busy-poll <us>", "keep polling for this many µs after traffic instead of sleeping (lower latency, some CPU; 0 = off)", intArg(0, 100_000), DEFAULT_BUSY_POLL_US)
    .option("--log-level <level>", LOG_LEVEL_HELP, logLevelArg, DEFAULT_LOG_LEVEL)
    .action(async (o) => {
      log.level = o.logLevel;
      const hostIp = o.hostLoopback === false ? "0.0.0.0" : o.hostIp;
      status = await serve({
        busyPollUs: o.busyPoll,
        qemuStream: o.qemuStream,
        qemuDgram: o.qemuDgram,
        vmnet: o.vmnet,
        vfkit: o.vfkit,
        mtu: o.mtu,
        pcap: o.pcap,
        subnet: o.subnet,
        subnet6: o.subnet6,
        ipv6: o.ipv6,
        hostIp,
        deny: o.deny,
        dnsRecords: o.dnsRecord,
        shares: o.share,
        apiSocket: o.apiSocket,
        log,
      });
    });

  program
    .command("slirp4netns")
    .description("a drop-in slirp4netns (RootlessKit, Podman, rootless Docker): skiff slirp4netns [OPTION]... PID|PATH TAPNAME; see skiff slirp4netns --help")
    .helpOption(false);

  if (!CORE_COMMANDS.has(argv[2] ?? "")) {
    const [{ forwardCommand }, { vmCommand }, { dockerCommand }, { inspectCommand }] = await Promise.all([
      import("./forward.js"),
      import("./vm.js"),
      import("./docker.js"),
      import("./pcap-inspect.js"),
    ]);
    forwardCommand(program, (s) => (status = s));
    vmCommand(program, log, (s) => (status = s));
    dockerCommand(program, log, (s) => (status = s));

    const pcap = program.command("pcap").description("work with packet captures");
    pcap
      .command("inspect")
      .description("decode every frame of a classic pcap file, one line (or JSON object) per frame")
      .argument("<file>", "pcap file (link type Ethernet)")
      .option("--json", "one JSON object per line")
      .action((file: string, o) => {
        status = inspectCommand(file, { json: !!o.json });
      });
  }

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    process.stderr.write(`skiff: ${(e as Error).message}\n`);
    return 1;
  }
  return status;
}
