// Unsolicited neighbour advertisement (RFC 4861 §7.2.6): an NA for our own
// address with the Override flag, to all nodes (ff02::1), carrying our MAC as
// the target link-layer address, so that every neighbour holding an entry for
// the address replaces the MAC at once. Same bytes as the kernel's
// ndisc_notify sends. Pure and allocation-free.

import { ETH_HEADER_BYTES } from './ethernet';
import { MAC_BYTES } from './mac';

export const ETHERTYPE_IPV6 = 0x86dd;
export const IPV6_HEADER_BYTES = 40;
export const IPV6_ADDRESS_BYTES = 16;
const IPPROTO_ICMPV6 = 58;
/** RFC 4861 §7.1.2: neighbour discovery packets must carry hop limit 255. */
const NDISC_HOP_LIMIT = 255;
const ICMPV6_NEIGHBOUR_ADVERTISEMENT = 136;
const NA_FLAG_OVERRIDE = 0x20000000;
const ND_OPT_TARGET_LINK_ADDRESS = 2;
/** ICMPv6 header (4) + flags (4) + target (16) + target link-layer option (8). */
const NA_BYTES = 32;
export const UNSOLICITED_NA_FRAME_BYTES = ETH_HEADER_BYTES + IPV6_HEADER_BYTES + NA_BYTES;

/** Writes the advertisement of the IPv6 address at addr[addrOffset,
 *  addrOffset + 16) at mac[macOffset, macOffset + 6) into buf at offset;
 *  returns its length, UNSOLICITED_NA_FRAME_BYTES. The source address is
 *  the advertised one. */
export function encodeUnsolicitedNa(buf: Buffer, offset: number, mac: Buffer, macOffset: number, addr: Buffer, addrOffset: number): number {
  // All-nodes multicast ff02::1 maps to 33:33:00:00:00:01 (RFC 2464 §7).
  buf.writeUInt32BE(0x33330000, offset);
  buf.writeUInt16BE(0x0001, offset + 4);
  mac.copy(buf, offset + MAC_BYTES, macOffset, macOffset + MAC_BYTES);
  buf.writeUInt16BE(ETHERTYPE_IPV6, offset + 12);

  const ip = offset + ETH_HEADER_BYTES;
  buf.writeUInt32BE(0x60000000, ip);
  buf.writeUInt16BE(NA_BYTES, ip + 4);
  buf[ip + 6] = IPPROTO_ICMPV6;
  buf[ip + 7] = NDISC_HOP_LIMIT;
  addr.copy(buf, ip + 8, addrOffset, addrOffset + IPV6_ADDRESS_BYTES);
  buf.writeUInt16BE(0xff02, ip + 24);
  buf.fill(0, ip + 26, ip + 39);
  buf[ip + 39] = 1;

  const icmp = ip + IPV6_HEADER_BYTES;
  buf[icmp] = ICMPV6_NEIGHBOUR_ADVERTISEMENT;
  buf[icmp + 1] = 0;
  buf.writeUInt16BE(0, icmp + 2);
  buf.writeUInt32BE(NA_FLAG_OVERRIDE, icmp + 4);
  addr.copy(buf, icmp + 8, addrOffset, addrOffset + IPV6_ADDRESS_BYTES);
  buf[icmp + 24] = ND_OPT_TARGET_LINK_ADDRESS;
  buf[icmp + 25] = 1; // option length in units of 8 bytes
  mac.copy(buf, icmp + 26, macOffset, macOffset + MAC_BYTES);
  buf.writeUInt16BE(icmpv6Checksum(buf, ip), icmp + 2);
  return UNSOLICITED_NA_FRAME_BYTES;
}

/** The ICMPv6 checksum (RFC 4443 §2.3, over the RFC 8200 §8.1 pseudo-header)
 *  of the packet whose IPv6 header starts at buf[ip]; the payload length is
 *  read from that header. With the checksum field filled in, a packet is
 *  intact when this returns 0. */
export function icmpv6Checksum(buf: Buffer, ip: number): number {
  const payloadBytes = buf.readUInt16BE(ip + 4);
  let sum = payloadBytes + IPPROTO_ICMPV6;
  for (let i = ip + 8; i < ip + IPV6_HEADER_BYTES; i += 2) sum += buf.readUInt16BE(i);
  const start = ip + IPV6_HEADER_BYTES;
  const end = start + payloadBytes;
  let i = start;
  for (; i + 1 < end; i += 2) sum += buf.readUInt16BE(i);
  if (i < end) sum += buf[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
