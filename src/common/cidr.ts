/**
 * IPv4 CIDR blocks for configuration (deny lists, subnets): parsed once with `ip-address`
 * at the edge, then matched on the data path as two numbers (network, mask).
 */
import { Address4 } from "ip-address";

export interface Cidr {
  network: number;
  mask: number;
  prefixLength: number;
  text: string;
}

/** Parse "A.B.C.D/N" (or a bare address as /32); throws an Error naming the bad value. */
export function parseCidr(text: string): Cidr {
  let a: Address4;
  try {
    a = new Address4(text.includes("/") ? text : `${text}/32`);
  } catch {
    throw new Error(`invalid IPv4 CIDR "${text}"`);
  }
  const prefixLength = a.subnetMask;
  const mask = prefixLength === 0 ? 0 : (0xffff_ffff << (32 - prefixLength)) >>> 0;
  const start = a.startAddress().parsedAddress.reduce((acc, o) => acc * 256 + Number(o), 0) >>> 0;
  return { network: (start & mask) >>> 0, mask, prefixLength, text };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & c.mask) >>> 0) === c.network;
}

/** Network mask of a prefix length (0..32) as a uint32. */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffff_ffff << (32 - prefixLength)) >>> 0;
}

export function inSubnet(cfg: { network: number; prefixLength: number }, ip: number): boolean {
  return ((ip & prefixMask(cfg.prefixLength)) >>> 0) === cfg.network;
}

export function broadcastAddress(cfg: { network: number; prefixLength: number }): number {
  return (cfg.network | ~prefixMask(cfg.prefixLength)) >>> 0;
}

