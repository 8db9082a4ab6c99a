// ARP/ND suppression, written once: a frame read from the TAP of a network
// with suppression on that asks for an address the network's neighbour
// table knows (an ARP request, an IPv6 neighbour solicitation) is answered
// in place and the answer written back to the TAP instead of the request
// being flooded. Both data paths call SuppressReply between TxFrameDrop and
// TxDestinations: the native engine's tx worker directly, the dgram path
// through PacketCore.classifyTx. After the kernel's arp_reduce/neigh_reduce
// (drivers/net/vxlan), except that an unknown target floods (the kernel
// drops it) and VLAN-tagged frames are never answered: the neighbour table
// has no VLAN dimension, so a tagged request floods. No N-API, no syscalls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace vxland {
namespace core {

/** An IP address as 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d. */
using NeighIp = std::array<uint8_t, 16>;

/** The neighbour mirror: per VNI, IP -> MAC (48-bit, first byte most
 *  significant). Written from the JS thread (src/fdb/neighbours.ts is the
 *  authority), read by the tx side; a lock per lookup, and only ARP requests
 *  and neighbour solicitations look up. */
class NeighbourTable {
 public:
  void Set(uint32_t vni, const NeighIp& ip, uint64_t mac);
  /** Whether it was there. */
  bool Delete(uint32_t vni, const NeighIp& ip);
  bool Lookup(uint32_t vni, const NeighIp& ip, uint64_t* mac) const;
  void RemoveVni(uint32_t vni);
  size_t Size() const;

 private:
  struct Key {
    uint32_t vni;
    NeighIp ip;
    bool operator==(const Key& o) const { return vni == o.vni && ip == o.ip; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  mutable std::mutex mu_;
  std::unordered_map<Key, uint64_t, KeyHash> map_;
};

/** SuppressReply's verdicts. */
enum SuppressVerdict : int {
  kNotSuppressed = 0,  // the frame goes on to TxDestinations as it was
  kArpReplied,         // frame[0, *replyBytes) is now the ARP reply
  kNdReplied,          // frame[0, *replyBytes) is now the neighbour advertisement
};

/** Looks at frame[0, flen) read from network vni's TAP (past TxFrameDrop):
 *  an ARP request (Ethernet/IPv4, not gratuitous: sender IP != target IP,
 *  not a probe: sender IP != 0.0.0.0) or a valid neighbour solicitation
 *  (RFC 4861 §7.1.1: hop limit 255, code 0, checksum, options; not DAD:
 *  source != ::) for a unicast target the table has is rewritten in place
 *  into the answer the owner of that address would give (ARP reply; NA with
 *  the S and O flags and a target link-layer address option, to the
 *  solicitation's SLLA or Ethernet source). capacity: bytes the frame may
 *  grow to; an answer that does not fit is not given (the request floods). */
SuppressVerdict SuppressReply(const NeighbourTable& table, uint32_t vni, uint8_t* frame, size_t flen, size_t capacity,
                              size_t* replyBytes);

}  // namespace core
}  // namespace vxland
