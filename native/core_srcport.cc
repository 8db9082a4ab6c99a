#include "core_srcport.h"

#include <cstring>

#include "engine_offload.h"

namespace vxland {
namespace core {

namespace {

constexpr size_t kMacPairBytes = 12;
using offload::kEthHeaderBytes;
using offload::kEtherTypeIpv4;
using offload::kEtherTypeIpv6;
using offload::kIpv4MinHeaderBytes;
using offload::kIpv6HeaderBytes;
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

}  // namespace

uint32_t FlowHash(const uint8_t* frame, size_t len) {
  uint32_t h = 2166136261u;
  if (len < kEthHeaderBytes) return Mix(h, frame, len);
  h = Mix(h, frame, kMacPairBytes);
  const offload::L3Start l3 = offload::FindL3(frame, len, 2);
  const uint16_t type = l3.etherType;
  h = Mix(h, frame + l3.offset - 2, 2);
  const uint8_t* ip = frame + l3.offset;
  const size_t ipLen = len - l3.offset;
  uint8_t proto = 0;
  size_t l4 = 0;  // offset of the ports in ip; 0 = none
  if (type == kEtherTypeIpv4 && ipLen >= kIpv4MinHeaderBytes && (ip[0] >> 4) == 4) {
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    proto = ip[9];
    h = Mix(h, ip + 9, 1);
    h = Mix(h, ip + 12, 8);
    const bool laterFragment = (offload::Get16(ip + 6) & 0x1fff) != 0;
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
