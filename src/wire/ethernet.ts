// Ethernet II framing as the data path needs it (no FCS: TAP frames carry none).

export const ETH_HEADER_BYTES = 14;
export const ETH_DST_OFFSET = 0;
export const ETH_SRC_OFFSET = 6;
export const ETH_TYPE_OFFSET = 12;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const VLAN_TAG_BYTES = 4;

/** Largest frame a device of this MTU sends or accepts: header plus payload,
 *  plus one 802.1Q tag when the frame carries one (as Linux allows). */
export function maxFrameBytes(mtu: number, tagged: boolean): number {
  return ETH_HEADER_BYTES + mtu + (tagged ? VLAN_TAG_BYTES : 0);
}
