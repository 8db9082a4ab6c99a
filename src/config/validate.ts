// Validators shared by the config loader, the control protocol and the CLI,
// so that a value is judged the same way wherever the user types it.

import { isIP } from 'node:net';
import { VNI_MAX } from '../wire/vxlan.js';

export { VNI_MAX };

/** Linux IFNAMSIZ is 16 bytes including the terminating NUL. */
export const IFNAME_MAX_BYTES = 15;

export type IpFamily = 4 | 6;

/** Family of an IP literal, or null if text is not one. IPv6 zone ids
 *  (fe80::1%eth0) are refused: a VTEP address must be routable as written. */
export function ipFamily(text: string): IpFamily | null {
  if (text.includes('%')) return null;
  const family = isIP(text);
  return family === 4 || family === 6 ? family : null;
}


/** The canonical spelling of an IP literal (IPv6 compressed and lower-case,
 *  as node:dgram reports sender addresses), or null if text is not one.
 *  Always store peers in this form: the data path matches senders by string. */
export function normalizeIp(text: string): string | null {
  const family = ipFamily(text);
  if (family === null) return null;
  if (family === 4) return text;
  // IPv4-mapped forms keep their dotted tail, which is how node reports them.
  if (text.includes('.')) return text.toLowerCase();
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

export interface Cidr {
  /** Canonical address part (see normalizeIp). */
  readonly address: string;
  readonly prefixLength: number;
  readonly family: IpFamily;
}

/** Parses "10.0.0.1/24" or "fd00::1/64"; null if malformed or the prefix
 *  length does not fit the family. The prefix length is required. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const address = normalizeIp(text.slice(0, slash));
  const prefixLength = parseDecimal(text.slice(slash + 1));
  if (address === null || prefixLength === null) return null;
  const family = ipFamily(address)!;
  if (prefixLength > (family === 4 ? 32 : 128)) return null;
  return { address, prefixLength, family };
}

/** Why name cannot be a Linux interface name, or null if it can. Mirrors
 *  the kernel's dev_valid_name(). */
export function ifnameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > IFNAME_MAX_BYTES) return `is longer than ${IFNAME_MAX_BYTES} bytes`;
  if (name === '.' || name === '..') return 'cannot be "." or ".."';
  if (/[/:\s]/.test(name)) return 'cannot contain "/", ":" or white space';
  return null;
}


/** Strict non-negative decimal integer ("42"; not "4e1", " 42", "0x2a",
 *  "-1"); null otherwise or beyond Number.MAX_SAFE_INTEGER. */
export function parseDecimal(text: string): number | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

export function isVni(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= VNI_MAX;
}
