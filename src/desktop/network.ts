/**
 * The one place the composition reaches the layers below it: everything comes through the front
 * door (src/network/composition.ts): the assembled network services, the control API, and the
 * forward kinds the composition adds (a Unix socket to a guest port, host ports at the guest's
 * request).
 */

export { NetworkServices as Network, startControl, NeighborResolver, UnixForward, PortService, PORT_SERVICE_PORT, type Control } from "../network/composition.js";
