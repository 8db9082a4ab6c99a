#include "core_srcport.h"

#include <cstring>

namespace vxland {
namespace core {

namespace {

constexpr size_t kMacPairBytes = 12;
constexpr size_t kEthHeaderBytes = 14;
constexpr size_t kVlanTagBytes = 4;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;
constexpr size_t kIpv6HeaderBytes = 40;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoUdpLite = 136;

/** FNV-1a over bytes, folded into h. */
uint32_t Mix(uint32_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

bool HasPorts(uint8_t proto) { return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp || proto == kProtoUdpLite; }

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

}  // namespace

uint32_t FlowHash(const uint8_t* frame, size_t len) {
  uint32_t h = 2166136261u;
  if (len < kEthHeaderBytes) return Mix(h, frame, len);
  h = Mix(h, frame, kMacPairBytes);
  size_t off = kMacPairBytes;
  uint16_t type = Be16(frame + off);
  for (int tags = 0; tags < 2 && (type == kEtherTypeVlan || type == kEtherTypeQinQ) && off + kVlanTagBytes + 2 <= len; tags++) {
    off += kVlanTagBytes;
    type = Be16(frame + off);
  }
  h = Mix(h, frame + off, 2);
  const uint8_t* ip = frame + off + 2;
  const size_t ipLen = len - off - 2;
  uint8_t proto = 0;
  size_t l4 = 0;  // offset of the ports in ip; 0 = none
  if (type == kEtherTypeIpv4 && ipLen >= 20 && (ip[0] >> 4) == 4) {
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    proto = ip[9];
    h = Mix(h, ip + 9, 1);
    h = Mix(h, ip + 12, 8);
    const bool laterFragment = (Be16(ip + 6) & 0x1fff) != 0;
    if (ihl >= 20 && !laterFragment && HasPorts(proto)) l4 = ihl;
  } else if (type == kEtherTypeIpv6 && ipLen >= kIpv6HeaderBytes && (ip[0] >> 4) == 6) {
    proto = ip[6];
    h = Mix(h, ip + 6, 1);
    h = Mix(h, ip + 8, 32);
    if (HasPorts(proto)) l4 = kIpv6HeaderBytes;
  }
  if (l4 != 0 && ipLen >= l4 + 4) h = Mix(h, ip + l4, 4);
  // FNV's low bits are weak; FlowSlot takes the high ones: a final avalanche.
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

uint16_t SrcPortCandidate(uint16_t minPort, uint16_t maxPort, uint32_t slot, uint32_t attempt) {
  if (maxPort < minPort) maxPort = minPort;
  const uint64_t span = static_cast<uint64_t>(maxPort) - minPort + 1;
  const uint64_t start = span * (slot % static_cast<uint64_t>(kSrcPortSockets)) / static_cast<uint64_t>(kSrcPortSockets);
  return static_cast<uint16_t>(minPort + (start + attempt) % span);
}

}  // namespace core
}  // namespace vxland
