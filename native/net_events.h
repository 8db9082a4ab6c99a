// The per-network events the data paths count that are not drops: the one
// list. Each X(Name, "name", "doc") entry is one event, numbered in list
// order; the C++ enum below, the names the addon exports
// (engineNetEventNames) and src/tables/net-events.generated.ts (written by
// scripts/gen-tables.mjs from this file) all come from it. Append new events
// at the end (the numbers index counter arrays on both sides); keep each
// entry on one line (the generator reads them line by line).
#pragma once

#define VXLAND_NET_EVENTS(X) \
  X(ArpSuppressed, "arp_suppressed", "ARP request for an address the neighbour table knows, answered on the TAP and not flooded.") \
  X(NdSuppressed, "nd_suppressed", "IPv6 neighbour solicitation for an address the neighbour table knows, answered on the TAP and not flooded.") \
  X(IcmpTooBigSent, "icmp_too_big_sent", "Frame too big for the tunnel that no router may fragment (IPv4 with DF, IPv6), answered on the TAP with ICMP fragmentation needed / packet too big carrying the MTU; the frame is still counted as tx_oversize.")

namespace vxland {

enum NetEvent : int {
#define VXLAND_X(name, text, doc) k##name,
  VXLAND_NET_EVENTS(VXLAND_X)
#undef VXLAND_X
  kNetEventCount
};

/** The events' names in NetEvent order. */
inline constexpr const char* kNetEventNames[kNetEventCount] = {
#define VXLAND_X(name, text, doc) text,
    VXLAND_NET_EVENTS(VXLAND_X)
#undef VXLAND_X
};

}  // namespace vxland
