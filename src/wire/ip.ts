// IP address literals as the wire carries them. Inputs are canonical
// literals (config/validate.ts normalizeIp has already checked them); these
// do not validate.

import { IPV6_ADDRESS_BYTES } from './ndisc';

/** A dotted-quad IPv4 literal as an unsigned 32-bit number, first octet most significant. */
export function ipv4Number(address: string): number {
  return address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** The 16 bytes of an IPv6 literal (with or without one `::`). */
export function ipv6Bytes(address: string): Buffer {
  const [head, tail = ''] = address.split('::');
  const groups = (text: string): string[] => (text === '' ? [] : text.split(':'));
  const left = groups(head);
  const right = address.includes('::') ? groups(tail) : [];
  const all = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(IPV6_ADDRESS_BYTES);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
