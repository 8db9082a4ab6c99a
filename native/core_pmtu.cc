#include "core_pmtu.h"

#include <algorithm>
#include <cstring>

#include "engine_offload.h"
#include "limits.h"

namespace vxland {
namespace core {
namespace {

using offload::Fold;
using offload::Get16;
using offload::kEthHeaderBytes;
using offload::Put16;
using offload::Sum;

using offload::kEtherTypeIpv4;
using offload::kEtherTypeIpv6;
using offload::kIpv4MinHeaderBytes;
using offload::kIpv6HeaderBytes;
constexpr size_t kIcmpHeaderBytes = 8;
constexpr uint16_t kIpv4FlagDf = 0x4000;
constexpr uint8_t kIpProtoIcmp = 1;
constexpr uint8_t kIpProtoIcmpv6 = 58;
constexpr uint8_t kIcmpDestUnreachable = 3;
constexpr uint8_t kIcmpFragNeeded = 4;
constexpr uint8_t kIcmpv6PacketTooBig = 2;
/** ICMPv6 types below this are errors (RFC 4443 §2.1). */
constexpr uint8_t kIcmpv6InfoMin = 128;
/** The most an IPv4 ICMP error may be (RFC 1812 §4.3.2.3), and the IPv6 minimum MTU (RFC 8200). */
constexpr size_t kIpv4ErrorMaxBytes = 576;
constexpr size_t kIpv6MinMtuBytes = 1280;

/** Types 3, 4, 5, 11 and 12: errors, never answered with one (RFC 1122 §3.2.2). */
bool IsIcmpError(uint8_t type) { return type == 3 || type == 4 || type == 5 || type == 11 || type == 12; }

bool IsGroupOrSpecialV4Source(const uint8_t* ip) {
  return ip[0] == 0 || ip[0] == 127 || ip[0] >= 224;  // zeronet, loopback, multicast and broadcast
}

bool IsGroupV4Destination(const uint8_t* ip) { return ip[0] >= 224; }

bool IsUnspecifiedV6(const uint8_t* ip) {
  static const uint8_t kZero[16] = {};
  return memcmp(ip, kZero, 16) == 0;
}

/** Swaps the Ethernet addresses (the reply comes from the MAC the sender addressed). */
void SwapMacs(uint8_t* f) {
  uint8_t t[6];
  memcpy(t, f, 6);
  memcpy(f, f + 6, 6);
  memcpy(f + 6, t, 6);
}

/** Moves the first `quote` bytes of the IP packet at f + 14 behind a new IP
 *  and ICMP header of `headroom` bytes. */
void MakeRoom(uint8_t* f, size_t headroom, size_t quote) {
  memmove(f + kEthHeaderBytes + headroom, f + kEthHeaderBytes, quote);
}

bool Ipv4Qualifies(size_t mtu, const uint8_t* f, size_t flen) {
  const uint8_t* ip = f + kEthHeaderBytes;
  if (mtu < kIpv4ErrorMaxBytes || flen < kEthHeaderBytes + kIpv4MinHeaderBytes) return false;
  const size_t ihl = (ip[0] & 0x0f) * 4u;
  // DF and nothing else: not a fragment (the kernel's frag_off == DF).
  if ((ip[0] >> 4) != 4 || ihl < kIpv4MinHeaderBytes || Get16(ip + 6) != kIpv4FlagDf) return false;
  if (IsGroupV4Destination(ip + 16) || IsGroupOrSpecialV4Source(ip + 12)) return false;
  return ip[9] != kIpProtoIcmp || (flen > kEthHeaderBytes + ihl && !IsIcmpError(ip[ihl]));
}

size_t Ipv4Build(size_t mtu, uint8_t* f, size_t flen) {
  const uint8_t* ip = f + kEthHeaderBytes;
  const size_t headroom = kIpv4MinHeaderBytes + kIcmpHeaderBytes;
  const size_t quote = std::min(flen - kEthHeaderBytes, kIpv4ErrorMaxBytes - headroom);
  uint8_t src[4], dst[4];
  const uint8_t ttl = ip[8];
  memcpy(src, ip + 12, 4);
  memcpy(dst, ip + 16, 4);
  MakeRoom(f, headroom, quote);
  SwapMacs(f);
  uint8_t* h = f + kEthHeaderBytes;
  const size_t icmpBytes = kIcmpHeaderBytes + quote;
  h[0] = 0x45;
  h[1] = 0;
  Put16(h + 2, static_cast<uint16_t>(kIpv4MinHeaderBytes + icmpBytes));
  Put16(h + 4, 0);
  Put16(h + 6, kIpv4FlagDf);
  h[8] = ttl;
  h[9] = kIpProtoIcmp;
  h[10] = h[11] = 0;
  memcpy(h + 12, dst, 4);
  memcpy(h + 16, src, 4);
  const uint16_t ipSum = static_cast<uint16_t>(~Fold(Sum(h, kIpv4MinHeaderBytes, 0)));
  memcpy(h + 10, &ipSum, 2);
  uint8_t* m = h + kIpv4MinHeaderBytes;
  m[0] = kIcmpDestUnreachable;
  m[1] = kIcmpFragNeeded;
  m[2] = m[3] = m[4] = m[5] = 0;
  Put16(m + 6, static_cast<uint16_t>(mtu));
  const uint16_t sum = static_cast<uint16_t>(~Fold(Sum(m, icmpBytes, 0)));
  memcpy(m + 2, &sum, 2);
  return kEthHeaderBytes + kIpv4MinHeaderBytes + icmpBytes;
}

bool Ipv6Qualifies(size_t mtu, const uint8_t* f, size_t flen) {
  const uint8_t* ip = f + kEthHeaderBytes;
  if (mtu < kIpv6MinMtuBytes || flen < kEthHeaderBytes + kIpv6HeaderBytes || (ip[0] >> 4) != 6) return false;
  if (ip[24] == 0xff || IsUnspecifiedV6(ip + 8) || ip[8] == 0xff) return false;  // group destination, unspecified or group source
  return ip[6] != kIpProtoIcmpv6 || (flen > kEthHeaderBytes + kIpv6HeaderBytes && ip[kIpv6HeaderBytes] >= kIcmpv6InfoMin);
}

size_t Ipv6Build(size_t mtu, uint8_t* f, size_t flen) {
  const uint8_t* ip = f + kEthHeaderBytes;
  const size_t headroom = kIpv6HeaderBytes + kIcmpHeaderBytes;
  const size_t quote = std::min(flen - kEthHeaderBytes, kIpv6MinMtuBytes - headroom);
  uint8_t src[16], dst[16];
  const uint8_t hopLimit = ip[7];
  memcpy(src, ip + 8, 16);
  memcpy(dst, ip + 24, 16);
  MakeRoom(f, headroom, quote);
  SwapMacs(f);
  uint8_t* h = f + kEthHeaderBytes;
  const size_t icmpBytes = kIcmpHeaderBytes + quote;
  h[0] = 0x60;
  h[1] = h[2] = h[3] = 0;
  Put16(h + 4, static_cast<uint16_t>(icmpBytes));
  h[6] = kIpProtoIcmpv6;
  h[7] = hopLimit;
  memcpy(h + 8, dst, 16);
  memcpy(h + 24, src, 16);
  uint8_t* m = h + kIpv6HeaderBytes;
  m[0] = kIcmpv6PacketTooBig;
  m[1] = 0;
  m[2] = m[3] = 0;
  m[4] = static_cast<uint8_t>(mtu >> 24);
  m[5] = static_cast<uint8_t>(mtu >> 16);
  m[6] = static_cast<uint8_t>(mtu >> 8);
  m[7] = static_cast<uint8_t>(mtu);
  const uint8_t tail[8] = {static_cast<uint8_t>(icmpBytes >> 24), static_cast<uint8_t>(icmpBytes >> 16),
                           static_cast<uint8_t>(icmpBytes >> 8), static_cast<uint8_t>(icmpBytes), 0, 0, 0, kIpProtoIcmpv6};
  uint64_t acc = Sum(h + 8, 32, 0);  // the pseudo-header: addresses, length, next header
  acc = Sum(tail, sizeof(tail), acc);
  const uint16_t sum = static_cast<uint16_t>(~Fold(Sum(m, icmpBytes, acc)));
  memcpy(m + 2, &sum, 2);
  return kEthHeaderBytes + kIpv6HeaderBytes + icmpBytes;
}

}  // namespace

bool IcmpBudget::Take(int64_t nowMs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tokens_ < 0) {
    tokens_ = static_cast<double>(kIcmpTooBigBurst);
  } else if (nowMs > lastMs_) {
    tokens_ = std::min(static_cast<double>(kIcmpTooBigBurst),
                       tokens_ + static_cast<double>(nowMs - lastMs_) * static_cast<double>(kIcmpTooBigPerS) / 1000.0);
  }
  lastMs_ = std::max(lastMs_, nowMs);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

PmtuVerdict PmtuReply(IcmpBudget& budget, size_t mtuBytes, uint8_t* frame, size_t flen, int64_t nowMs, size_t* replyBytes) {
  // A group or unset source MAC has nobody to answer; a group destination MAC would become the reply's source.
  if (flen <= kEthHeaderBytes + mtuBytes || (frame[0] & 0x01) != 0 || (frame[6] & 0x01) != 0) return kNoPmtuReply;
  const uint16_t type = offload::FindL3(frame, flen, 0).etherType;  // a tagged frame's is Vlan/QinQ: never answered
  const bool v4 = type == kEtherTypeIpv4 && Ipv4Qualifies(mtuBytes, frame, flen);
  const bool v6 = !v4 && type == kEtherTypeIpv6 && Ipv6Qualifies(mtuBytes, frame, flen);
  if ((!v4 && !v6) || !budget.Take(nowMs)) return kNoPmtuReply;
  *replyBytes = v4 ? Ipv4Build(mtuBytes, frame, flen) : Ipv6Build(mtuBytes, frame, flen);
  return kPmtuReplied;
}

}  // namespace core
}  // namespace vxland
