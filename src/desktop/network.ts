/**
 * The one place the composition reaches the layers below the front door: the assembled network
 * (stack, translation, DHCP, DNS) and the control API, which live in src/cli/ until the
 * front-door refactor moves them to src/network/ (createNetwork), and the forward kinds the
 * composition adds (a Unix socket to a guest port, host ports at the guest's request). When
 * the front door lands, only this file changes (to import them through src/network/).
 */

export { Network } from "../cli/network.js";
export { startControl, type Control } from "../cli/forward.js";
export { NeighborResolver } from "../forward/neighbor.js";
export { UnixForward } from "../forward/unix.js";
export { PortService, PORT_SERVICE_PORT } from "../forward/port-service.js";
