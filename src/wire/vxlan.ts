// RFC 7348 VXLAN header codec. Pure and allocation-free.
//
//  0                   1                   2                   3
//  |R|R|R|R|I|R|R|R|            Reserved                           |
//  |                VXLAN Network Identifier (VNI) |   Reserved    |

import { VNI_MAX } from '../tables/limits.generated';

export { VNI_MAX };
export const VXLAN_HEADER_BYTES = 8;
export const VXLAN_DEFAULT_PORT = 4789;
export const VXLAN_FLAG_I = 0x08;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD_IPV4_BYTES = 50;
/** Outer IPv6 (40) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD_IPV6_BYTES = 70;

/** Writes a header with only the I flag set and all reserved bits zero. */
export function encodeVxlan(buf: Buffer, offset: number, vni: number): void {
  buf.writeUInt32BE(VXLAN_FLAG_I << 24, offset);
  buf.writeUInt32BE((vni & VNI_MAX) << 8 >>> 0, offset + 4);
}
