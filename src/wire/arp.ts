// Gratuitous ARP (RFC 5227 §3 "ARP Announcement"): an ARP request for our own
// address, broadcast, so that every neighbour holding an entry for it
// replaces the MAC at once. Same bytes as the kernel's arp_notify sends.
// Pure and allocation-free.

import { ETH_HEADER_BYTES } from './ethernet';
import { MAC_BYTES } from './mac';

export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV4 = 0x0800;
const ARP_HTYPE_ETHERNET = 1;
const ARP_OP_REQUEST = 1;
const IPV4_BYTES = 4;
/** Ethernet header (14) + ARP for IPv4 over Ethernet (28); no padding, like the kernel's. */
export const GRATUITOUS_ARP_FRAME_BYTES = ETH_HEADER_BYTES + 28;

/** Writes the announcement of ipv4 (a 32-bit number, host order) at mac
 *  (buf's mac[macOffset, macOffset + 6)) into buf at offset; returns its
 *  length, GRATUITOUS_ARP_FRAME_BYTES. */
export function encodeGratuitousArp(buf: Buffer, offset: number, mac: Buffer, macOffset: number, ipv4: number): number {
  buf.fill(0xff, offset, offset + MAC_BYTES);
  mac.copy(buf, offset + MAC_BYTES, macOffset, macOffset + MAC_BYTES);
  buf.writeUInt16BE(ETHERTYPE_ARP, offset + 12);
  const arp = offset + ETH_HEADER_BYTES;
  buf.writeUInt16BE(ARP_HTYPE_ETHERNET, arp);
  buf.writeUInt16BE(ETHERTYPE_IPV4, arp + 2);
  buf[arp + 4] = MAC_BYTES;
  buf[arp + 5] = IPV4_BYTES;
  buf.writeUInt16BE(ARP_OP_REQUEST, arp + 6);
  mac.copy(buf, arp + 8, macOffset, macOffset + MAC_BYTES);
  buf.writeUInt32BE(ipv4 >>> 0, arp + 14);
  buf.fill(0, arp + 18, arp + 24);
  buf.writeUInt32BE(ipv4 >>> 0, arp + 24);
  return GRATUITOUS_ARP_FRAME_BYTES;
}
