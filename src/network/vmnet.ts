/**
 * VPNKit's vmnet protocol on a network (hyperkit `virtio-vpnkit`, RootlessKit `--net=vpnkit`):
 * each UUID gets a stable MAC and address with a DHCP static lease (derived from the UUID, so
 * also stable across restarts), and each accepted connection is handed to `attach`.
 */

import type { Logger } from "pino";
import { VmnetIdentities, VmnetListener, describeVif } from "../link/vmnet.js";
import type { StreamFrameChannel } from "../link/stream-channel.js";
import { broadcastAddress } from "../stack/config.js";
import type { NetworkServices } from "./services.js";

/**
 * Listen for vmnet clients on `path` for `net`: each UUID's MAC gets a static lease before its
 * first frame can arrive, then the connection goes to `attach` (the stack itself, or a switch
 * port when several kinds of guests share the network). Handshake refusals go to `onRejected`.
 */
export async function listenVmnet(
  net: NetworkServices,
  path: string,
  mtu: number,
  attach: (channel: StreamFrameChannel) => void,
  log: Logger,
  onRejected?: (reason: string, detail?: string) => void,
): Promise<VmnetListener> {
  const cfg = net.stack.config;
  const identities = new VmnetIdentities({
    poolFirst: (cfg.network + 3) >>> 0,
    poolLast: (broadcastAddress(cfg) - 1) >>> 0,
    reserved: [cfg.gatewayIp, cfg.hostAliasAddress],
    reservedMacs: [cfg.gatewayMac],
  });
  const listener = await VmnetListener.listen(path, { identities, mtu });
  let leases = 0;
  listener.on("channel", (channel, vif) => {
    const all = identities.all();
    if (all.length !== leases) {
      leases = all.length;
      net.setStaticLeases(all.map((v) => ({ mac: v.mac, ip: v.ip })));
    }
    attach(channel);
    log.info({ vif: describeVif(vif), channel: channel.name }, "vmnet: VIF connected");
  });
  listener.on("rejected", (reason, detail) => {
    log.warn({ reason, detail }, "vmnet: connection refused during handshake");
    onRejected?.(reason, detail === undefined ? undefined : String(detail));
  });
  return listener;
}
