// Source-port entropy (RFC 7348 §5): the outer UDP source port of a
// datagram comes from a hash of its inner frame, so that underlay routers
// spread the overlay's flows over equal-cost paths and receiving NICs over
// their queues (the kernel's vxlan does the same: udp_flow_src_port, its
// `srcport MIN MAX`). Both data paths send from a small set of sockets bound
// to ports spread over the configured range (kSrcPortSockets) and pick one per
// frame with FlowSlot(FlowHash(frame)): every segment of a flow (and so every
// segment of a TSO super-frame) leaves from one port, in order.
// No N-API, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "limits.h"

namespace vxland {
namespace core {

/** Hash of an inner Ethernet frame's flow: its MAC addresses and EtherType
 *  (behind up to two VLAN tags), and for IPv4/IPv6 the addresses, the
 *  protocol and (TCP, UDP, UDP-Lite, SCTP, not a fragment past the first)
 *  the ports. Equal for every frame of one flow; a runt hashes what it has. */
uint32_t FlowHash(const uint8_t* frame, size_t len);

/** The send socket slot, 0..kSrcPortSockets-1, of a flow hash. */
inline uint32_t FlowSlot(uint32_t hash) {
  return static_cast<uint32_t>((static_cast<uint64_t>(hash) * static_cast<uint64_t>(kSrcPortSockets)) >> 32);
}

/** The port slot `slot` tries at attempt `attempt` (0, 1, ...) when binding
 *  its socket in [minPort, maxPort]: attempt 0 spreads the slots evenly over
 *  the range, later attempts walk on from there (wrapping), so a port taken
 *  by someone else costs one more bind, not the slot. */
uint16_t SrcPortCandidate(uint16_t minPort, uint16_t maxPort, uint32_t slot, uint32_t attempt);

}  // namespace core
}  // namespace vxland
