// The packet core's envelope rules (outer IP TOS / traffic class and ECN),
// written once, as the kernel's vxlan applies them (RFC 6040 normal mode):
// on encapsulation the outer TOS is the configured DSCP (or, for `inherit`,
// the inner one) with the inner ECN field copied, CE sent as ECT(0); on
// decapsulation an outer CE marks an ECN-capable inner packet CE, and an
// outer CE over a not-ECN-capable inner packet drops it. Frames that are
// not IPv4/IPv6 (ARP, ...) carry no ECN: outer ECN not-ECT, delivered as
// they came. No N-API, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vxland {
namespace core {

/** EnvelopeTos setting for `--tos inherit`; otherwise 0..255. */
constexpr int kTosInherit = -1;

/** The inner frame's IPv4 TOS / IPv6 traffic class (after an optional VLAN
 *  tag), or -1 when the frame carries neither. */
int InnerDsfield(const uint8_t* frame, size_t flen);

/** The outer TOS byte for an inner frame: tosSetting's DSCP (the inner's for
 *  kTosInherit) with the inner ECN field per RFC 6040 (CE -> ECT(0)). */
uint8_t OuterTos(int tosSetting, const uint8_t* frame, size_t flen);

/** RFC 6040 decapsulation of a delivered frame given the outer TOS byte
 *  (-1: unknown, nothing done): -1 to deliver (an ECN-capable inner IPv4 /
 *  IPv6 packet under an outer CE is marked CE in place, IPv4 header checksum
 *  updated), or kRxEcnNotEctCe to drop. */
int DecapEcn(int outerTos, uint8_t* frame, size_t flen);

}  // namespace core
}  // namespace vxland
