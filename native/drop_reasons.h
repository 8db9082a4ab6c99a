// The drop reasons: the one list. Each X(Name, "name", "doc") entry is one
// reason, numbered in list order. The C++ enum below, the names the addon
// exports (engineDropReasonNames) and src/tables/drop-reasons.generated.ts (written
// by scripts/gen-tables.mjs from this file) all come from it, so a reason is
// added here and nowhere else. Append new reasons at the end: the numbers
// are indexes into counter arrays on both sides, and the names are what
// status, logs and metrics show. Keep each entry on one line (the generator
// reads them line by line).
#pragma once

#define VXLAND_DROP_REASONS(X) \
  X(RxTruncated, "rx_truncated", "rx: datagram shorter than the VXLAN header plus an Ethernet header.") \
  X(RxNoIFlag, "rx_no_i_flag", "rx: the I flag is clear (RFC 7348 §5: the VNI is not valid).") \
  X(RxWrongVni, "rx_wrong_vni", "rx: VNI is not ours.") \
  X(RxBadSourceMac, "rx_bad_source_mac", "rx: inner source MAC is multicast, broadcast or all zeros.") \
  X(RxOwnSourceMac, "rx_own_source_mac", "rx: inner source MAC is our own TAP's: a loop.") \
  X(RxOversize, "rx_oversize", "rx: inner frame larger than the TAP MTU allows.") \
  X(RxStaticMacConflict, "rx_static_mac_conflict", "rx: inner source MAC is a static entry at another VTEP.") \
  X(RxTapBusy, "rx_tap_busy", "rx: the TAP queue was full (EAGAIN).") \
  X(RxTapError, "rx_tap_error", "rx: the TAP refused the frame for another reason.") \
  X(TxRunt, "tx_runt", "tx: frame shorter than an Ethernet header.") \
  X(TxOversize, "tx_oversize", "tx: frame larger than the MTU allows (we never fragment inner frames).") \
  X(TxNoDestination, "tx_no_destination", "tx: unknown or flooded destination and an empty flood list.") \
  X(TxQueueFull, "tx_queue_full", "tx: every send buffer is in flight (the socket is backed up).") \
  X(TxSendError, "tx_send_error", "tx: the socket refused the datagram (e.g. no route), or an ICMP error (port or host unreachable) came back for it.") \
  X(RxSourceNotAllowed, "rx_source_not_allowed", "rx: the sender is outside the accepted set (--accept).") \
  X(RxVlanTagged, "rx_vlan_tagged", "rx: VLAN-tagged inner frame without --allow-vlan (RFC 7348 §6.1).") \
  X(TxVlanTagged, "tx_vlan_tagged", "tx: VLAN-tagged frame from the TAP without --allow-vlan (RFC 7348 §6.1).") \
  X(TxBadOffload, "tx_bad_offload", "tx: the TAP's offload header (virtio_net_hdr) points outside the frame: checksum start or offset beyond it.") \
  X(RxEcnNotEctCe, "rx_ecn_not_ect_ce", "rx: the outer header is marked CE (congestion) but the inner packet is not ECN-capable: dropped, as RFC 6040 and the kernel do.")

namespace vxland {

enum DropReason : int {
#define VXLAND_X(name, text, doc) k##name,
  VXLAND_DROP_REASONS(VXLAND_X)
#undef VXLAND_X
  kDropReasonCount
};

/** The reasons' names in DropReason order. */
inline constexpr const char* kDropReasonNames[kDropReasonCount] = {
#define VXLAND_X(name, text, doc) text,
    VXLAND_DROP_REASONS(VXLAND_X)
#undef VXLAND_X
};

}  // namespace vxland
