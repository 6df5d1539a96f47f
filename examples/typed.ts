// The library's types: options are checked by the compiler, and at run time a bad one throws a
// NetworkOptionError naming it before anything is opened. Type-checked by the test suite
// against the installed package (tsc --noEmit). Run with a TypeScript runner (tsx) if you like.
import { createNetwork, NetworkOptionError, type NetworkOptions, type NetworkStats, type GuestLink } from "skiff";

const options: NetworkOptions = {
  subnet: "10.77.0.0/24",
  mtu: 1500,
  dnsRecords: ["db.internal=10.77.0.9"],
  limits: { tcpFlowsPerGuest: 1024 },
};

export async function demo(): Promise<NetworkStats> {
  try {
    await createNetwork({ mtu: 100 });
  } catch (e) {
    if (e instanceof NetworkOptionError) console.log(`refused: ${e.option}`);
  }
  const net = await createNetwork(options);
  net.on("detached", (g: GuestLink, err?: Error) => console.log(`${g.name} left${err ? `: ${err.message}` : ""}`));
  // docker -p syntax ("127.0.0.1:8080:80"), or a spec object (port 0: any free port).
  const fwd = await net.forward({ proto: "tcp", hostAddr: "127.0.0.1", hostPort: 0, guestAddr: "10.77.0.3", guestPort: 80 });
  const stats = net.stats();
  await fwd.close();
  await net.close();
  return stats;
}

demo().then((s) => console.log(`attachments: ${s.attachments.length}`));
