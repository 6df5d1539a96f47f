/**
 * The one place the composition reaches the assembled network (stack, translation, DHCP, DNS)
 * and the control API. They live in src/cli/ until the front-door refactor moves them to
 * src/network/ (createNetwork); then only this file changes.
 */

export { Network } from "../cli/network.js";
export { startControl, type Control } from "../cli/forward.js";
