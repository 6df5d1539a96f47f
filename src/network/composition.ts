/**
 * What the front door lends the composition (src/desktop/) besides `createNetwork`: the
 * assembled services (stack, translation, DHCP, DNS, shares) for a network whose guest link the
 * composition attaches itself, the control API, and the forward kinds the composition needs (a
 * host Unix socket to a guest port; host ports opened at the guest's request).
 */
export { NetworkServices } from "./services.js";
export { startControl, type Control } from "./control.js";
export { NeighborResolver } from "../forward/neighbor.js";
export { UnixForward } from "../forward/unix.js";
export { PortService, PORT_SERVICE_PORT } from "../forward/port-service.js";
