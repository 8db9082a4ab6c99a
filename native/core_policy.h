// The source policy (--accept) as the packet core applies it: which outer
// source addresses may send us VXLAN. src/datapath/accept.ts SourceFilter
// keeps the policy (named VTEPs, ranges) and feeds it here; the decision for
// each datagram is made only here, on both data paths. Pure: no N-API, no
// syscalls.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine_fdb.h"

namespace vxland {
namespace core {

/** Immutable once built; replaced whole when the policy changes. */
struct SourcePolicy {
  enum Mode { kNamed, kAny, kCidrs } mode = kNamed;
  using Key = std::array<uint8_t, 16>;  // IpKey(): IPv4 as IPv4-mapped
  std::vector<Key> named;               // sorted
  struct Range {
    Key prefix;
    unsigned bits;
  };
  std::vector<Range> ranges;

  bool Accepts(const Key& k) const;
};

/** Builds a policy from its text form (mode 'peers' | 'any' | 'cidrs', IP
 *  literals, "IP/len" ranges). Addresses of the other IP family than
 *  `family` (AF_INET/AF_INET6) cannot send to a socket of that family and
 *  are left out. Returns an empty string, or what is wrong with the input
 *  (*rangeError: a prefix length out of range rather than malformed text). */
std::string BuildSourcePolicy(const std::string& mode, const std::vector<std::string>& named,
                              const std::vector<std::string>& cidrs, int family, SourcePolicy* out, bool* rangeError);

}  // namespace core
}  // namespace vxland
