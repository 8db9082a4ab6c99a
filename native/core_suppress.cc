#include "core_suppress.h"

#include <cstring>

#include "engine_offload.h"

namespace vxland {
namespace core {
namespace {

using offload::Fold;
using offload::Get16;
using offload::kEthHeaderBytes;
using offload::Put16;
using offload::Sum;

using offload::kEtherTypeArp;
using offload::kEtherTypeIpv4;
using offload::kEtherTypeIpv6;
using offload::kIpv6HeaderBytes;
constexpr uint16_t kArpHrdEther = 1;
constexpr uint16_t kArpHrdIeee802 = 6;
constexpr uint16_t kArpOpRequest = 1;
constexpr uint16_t kArpOpReply = 2;
/** ARP over Ethernet/IPv4: hrd, pro, hln, pln, op, sha, spa, tha, tpa. */
constexpr size_t kArpBytes = 28;
constexpr size_t kArpSha = kEthHeaderBytes + 8;
constexpr size_t kArpSpa = kArpSha + 6;
constexpr size_t kArpTha = kArpSpa + 4;
constexpr size_t kArpTpa = kArpTha + 6;

constexpr uint8_t kIpProtoIcmpv6 = 58;
constexpr uint8_t kNdHopLimit = 255;
constexpr uint8_t kIcmpv6NeighbourSolicitation = 135;
constexpr uint8_t kIcmpv6NeighbourAdvertisement = 136;
/** Type, code, checksum, reserved/flags, target. */
constexpr size_t kNdMessageBytes = 24;
constexpr uint8_t kNdOptSourceLinkLayer = 1;
constexpr uint8_t kNdOptTargetLinkLayer = 2;
constexpr size_t kNdOptLinkLayerBytes = 8;
/** NA flags: Solicited and Override (RFC 4861 §4.4); never Router. */
constexpr uint8_t kNaFlagsSolicitedOverride = 0x60;
constexpr size_t kIp6 = kEthHeaderBytes;
constexpr size_t kIcmp6 = kIp6 + kIpv6HeaderBytes;
constexpr size_t kNaBytes = kIcmp6 + kNdMessageBytes + kNdOptLinkLayerBytes;

void PutMac(uint8_t* p, uint64_t mac) {
  for (int i = 5; i >= 0; i--, mac >>= 8) p[i] = static_cast<uint8_t>(mac);
}

/** Unicast IPv4 that a host may own: not 0/8, loopback, multicast or broadcast. */
bool IsUnicastV4(const uint8_t* ip) { return ip[0] != 0 && ip[0] != 127 && ip[0] < 224; }

/** Not ::, ::1 or multicast (ff00::/8). */
bool IsUnicastV6(const uint8_t* ip) {
  if (ip[0] == 0xff) return false;
  static const uint8_t kZero[15] = {};
  return memcmp(ip, kZero, 15) != 0 || ip[15] > 1;
}

bool IsUnspecifiedV6(const uint8_t* ip) {
  static const uint8_t kZero[16] = {};
  return memcmp(ip, kZero, 16) == 0;
}

/** The ICMPv6 checksum accumulator of the message at frame[kIcmp6, +len) with its pseudo-header. */
uint64_t Icmp6Sum(const uint8_t* frame, size_t len) {
  const uint8_t tail[8] = {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 8),
                           static_cast<uint8_t>(len), 0, 0, 0, kIpProtoIcmpv6};
  uint64_t sum = Sum(frame + kIp6 + 8, 32, 0);  // source and destination addresses
  sum = Sum(tail, sizeof(tail), sum);
  return Sum(frame + kIcmp6, len, sum);
}

SuppressVerdict ArpReply(const NeighbourTable& table, uint32_t vni, uint8_t* f, size_t flen, size_t* replyBytes) {
  if (flen < kEthHeaderBytes + kArpBytes) return kNotSuppressed;
  const uint8_t* a = f + kEthHeaderBytes;
  const uint16_t hrd = Get16(a);
  if ((hrd != kArpHrdEther && hrd != kArpHrdIeee802) || Get16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4 ||
      Get16(a + 6) != kArpOpRequest) {
    return kNotSuppressed;
  }
  const uint8_t* spa = f + kArpSpa;
  const uint8_t* tpa = f + kArpTpa;
  // A probe (RFC 5227: sender 0.0.0.0) and a gratuitous request (sender ==
  // target) announce or check an address: every host must see them.
  static const uint8_t kZero[4] = {};
  if (memcmp(spa, kZero, 4) == 0 || memcmp(spa, tpa, 4) == 0 || !IsUnicastV4(tpa)) return kNotSuppressed;
  NeighIp ip{};
  ip[10] = ip[11] = 0xff;
  memcpy(ip.data() + 12, tpa, 4);
  uint64_t mac;
  if (!table.Lookup(vni, ip, &mac)) return kNotSuppressed;
  uint8_t sha[6], sip[4], tip[4];
  memcpy(sha, f + kArpSha, 6);
  memcpy(sip, spa, 4);
  memcpy(tip, tpa, 4);
  memcpy(f, sha, 6);
  PutMac(f + 6, mac);
  Put16(f + kEthHeaderBytes + 6, kArpOpReply);
  PutMac(f + kArpSha, mac);
  memcpy(f + kArpSpa, tip, 4);
  memcpy(f + kArpTha, sha, 6);
  memcpy(f + kArpTpa, sip, 4);
  *replyBytes = flen;  // any Ethernet padding stays
  return kArpReplied;
}

SuppressVerdict NdReply(const NeighbourTable& table, uint32_t vni, uint8_t* f, size_t flen, size_t capacity,
                        size_t* replyBytes) {
  if (flen < kIcmp6 + kNdMessageBytes) return kNotSuppressed;
  const uint8_t* ip6 = f + kIp6;
  const size_t plen = Get16(ip6 + 4);
  if ((ip6[0] >> 4) != 6 || ip6[6] != kIpProtoIcmpv6 || plen < kNdMessageBytes || kIcmp6 + plen > flen) return kNotSuppressed;
  const uint8_t* m = f + kIcmp6;
  if (m[0] != kIcmpv6NeighbourSolicitation || m[1] != 0) return kNotSuppressed;
  // Duplicate address detection (source ::) must reach the address's owner.
  if (ip6[7] != kNdHopLimit || IsUnspecifiedV6(ip6 + 8)) return kNotSuppressed;
  const uint8_t* target = m + 8;
  if (!IsUnicastV6(target) || Fold(Icmp6Sum(f, plen)) != 0xffff) return kNotSuppressed;
  const uint8_t* slla = nullptr;
  for (size_t o = kNdMessageBytes; o < plen;) {
    if (plen - o < 2 || m[o + 1] == 0 || m[o + 1] * 8u > plen - o) return kNotSuppressed;  // RFC 4861 §7.1.1
    if (m[o] == kNdOptSourceLinkLayer && m[o + 1] == 1) slla = m + o + 2;
    o += m[o + 1] * 8u;
  }
  NeighIp ip;
  memcpy(ip.data(), target, 16);
  uint64_t mac;
  if (capacity < kNaBytes || !table.Lookup(vni, ip, &mac)) return kNotSuppressed;
  uint8_t to[6], src[16];
  memcpy(to, slla != nullptr ? slla : f + 6, 6);
  memcpy(src, ip6 + 8, 16);
  memcpy(f, to, 6);
  PutMac(f + 6, mac);
  Put16(f + 12, kEtherTypeIpv6);
  uint8_t* h = f + kIp6;
  h[0] = 0x60;
  h[1] = h[2] = h[3] = 0;
  Put16(h + 4, kNdMessageBytes + kNdOptLinkLayerBytes);
  h[6] = kIpProtoIcmpv6;
  h[7] = kNdHopLimit;
  memcpy(h + 8, ip.data(), 16);
  memcpy(h + 24, src, 16);
  uint8_t* na = f + kIcmp6;
  na[0] = kIcmpv6NeighbourAdvertisement;
  na[1] = 0;
  na[2] = na[3] = 0;
  na[4] = kNaFlagsSolicitedOverride;
  na[5] = na[6] = na[7] = 0;
  memcpy(na + 8, ip.data(), 16);
  na[24] = kNdOptTargetLinkLayer;
  na[25] = 1;
  PutMac(na + 26, mac);
  const uint16_t sum = static_cast<uint16_t>(~Fold(Icmp6Sum(f, kNdMessageBytes + kNdOptLinkLayerBytes)));
  memcpy(na + 2, &sum, 2);
  *replyBytes = kNaBytes;
  return kNdReplied;
}

}  // namespace

size_t NeighbourTable::KeyHash::operator()(const Key& k) const {
  uint64_t w[2];
  memcpy(w, k.ip.data(), sizeof(w));
  return std::hash<uint64_t>()(w[0] * 0x9e3779b97f4a7c15ull ^ w[1] ^ (static_cast<uint64_t>(k.vni) << 40));
}

void NeighbourTable::Set(uint32_t vni, const NeighIp& ip, uint64_t mac) {
  std::lock_guard<std::mutex> lock(mu_);
  map_[Key{vni, ip}] = mac;
}

bool NeighbourTable::Delete(uint32_t vni, const NeighIp& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.erase(Key{vni, ip}) > 0;
}

bool NeighbourTable::Lookup(uint32_t vni, const NeighIp& ip, uint64_t* mac) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(Key{vni, ip});
  if (it == map_.end()) return false;
  *mac = it->second;
  return true;
}

void NeighbourTable::RemoveVni(uint32_t vni) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = map_.begin(); it != map_.end();) it = it->first.vni == vni ? map_.erase(it) : std::next(it);
}

size_t NeighbourTable::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

SuppressVerdict SuppressReply(const NeighbourTable& table, uint32_t vni, uint8_t* frame, size_t flen, size_t capacity,
                              size_t* replyBytes) {
  if (flen < kEthHeaderBytes || capacity < flen) return kNotSuppressed;
  const uint16_t type = offload::FindL3(frame, flen, 0).etherType;  // a tagged frame's is Vlan/QinQ: never answered
  if (type == kEtherTypeArp) return ArpReply(table, vni, frame, flen, replyBytes);
  if (type == kEtherTypeIpv6) return NdReply(table, vni, frame, flen, capacity, replyBytes);
  return kNotSuppressed;
}

}  // namespace core
}  // namespace vxland
