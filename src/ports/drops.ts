// Why the data path dropped a frame or datagram. Drops are counted, never
// thrown; the native engine reports the same reasons by the same numbers.

export enum DropReason {
  /** rx: datagram shorter than the VXLAN header plus an Ethernet header. */
  RxTruncated = 0,
  /** rx: the I flag is clear (RFC 7348 §5: the VNI is not valid). */
  RxNoIFlag = 1,
  /** rx: VNI is not ours. */
  RxWrongVni = 2,
  /** rx: inner source MAC is multicast, broadcast or all zeros. */
  RxBadSourceMac = 3,
  /** rx: inner source MAC is our own TAP's: a loop. */
  RxOwnSourceMac = 4,
  /** rx: inner frame larger than the TAP MTU allows. */
  RxOversize = 5,
  /** rx: inner source MAC is a static entry at another VTEP. */
  RxStaticMacConflict = 6,
  /** rx: the TAP queue was full (EAGAIN). */
  RxTapBusy = 7,
  /** rx: the TAP refused the frame for another reason. */
  RxTapError = 8,
  /** tx: frame shorter than an Ethernet header. */
  TxRunt = 9,
  /** tx: frame larger than the MTU allows (we never fragment inner frames). */
  TxOversize = 10,
  /** tx: unknown or flooded destination and an empty flood list. */
  TxNoDestination = 11,
  /** tx: every send buffer is in flight (the socket is backed up). */
  TxQueueFull = 12,
  /** tx: the socket refused the datagram (e.g. no route), or an ICMP error
   *  (port or host unreachable) came back for it. */
  TxSendError = 13,
  /** rx: the sender is outside the accepted set (--accept). */
  RxSourceNotAllowed = 14,
  /** rx: VLAN-tagged inner frame without --allow-vlan (RFC 7348 §6.1). */
  RxVlanTagged = 15,
  /** tx: VLAN-tagged frame from the TAP without --allow-vlan (RFC 7348 §6.1). */
  TxVlanTagged = 16,
}

export const DROP_REASON_COUNT = 17;

/** Stable snake_case names used in status output, logs and metrics. */
export const DROP_REASON_NAMES: readonly string[] = Object.freeze([
  'rx_truncated',
  'rx_no_i_flag',
  'rx_wrong_vni',
  'rx_bad_source_mac',
  'rx_own_source_mac',
  'rx_oversize',
  'rx_static_mac_conflict',
  'rx_tap_busy',
  'rx_tap_error',
  'tx_runt',
  'tx_oversize',
  'tx_no_destination',
  'tx_queue_full',
  'tx_send_error',
  'rx_source_not_allowed',
  'rx_vlan_tagged',
  'tx_vlan_tagged',
]);
