#include "core_ecn.h"

#include "drop_reasons.h"
#include "engine_offload.h"

namespace vxland {
namespace core {
namespace {

constexpr uint8_t kEcnMask = 0x03;
constexpr uint8_t kEcnNotEct = 0x00;
constexpr uint8_t kEcnEct0 = 0x02;
constexpr uint8_t kEcnCe = 0x03;
using offload::kEtherTypeIpv4;
using offload::kEtherTypeIpv6;
using offload::kIpv4MinHeaderBytes;
using offload::kIpv6HeaderBytes;

/** The inner IP header: its offset in the frame and version (4 or 6), or 0. */
int InnerIp(const uint8_t* frame, size_t flen, size_t* at) {
  if (flen < offload::kEthHeaderBytes) return 0;
  const offload::L3Start l3 = offload::FindL3(frame, flen, 1);
  const uint16_t type = l3.etherType;
  *at = l3.offset;
  if (type == kEtherTypeIpv4 && flen >= *at + kIpv4MinHeaderBytes && (frame[*at] >> 4) == 4) return 4;
  if (type == kEtherTypeIpv6 && flen >= *at + kIpv6HeaderBytes && (frame[*at] >> 4) == 6) return 6;
  return 0;
}

}  // namespace

int InnerDsfield(const uint8_t* frame, size_t flen) {
  size_t at = 0;
  switch (InnerIp(frame, flen, &at)) {
    case 4: return frame[at + 1];
    case 6: return (frame[at] & 0x0f) << 4 | frame[at + 1] >> 4;
    default: return -1;
  }
}

uint8_t OuterTos(int tosSetting, const uint8_t* frame, size_t flen) {
  const int inner = InnerDsfield(frame, flen);
  const uint8_t innerByte = inner < 0 ? 0 : static_cast<uint8_t>(inner);
  const uint8_t dscp = static_cast<uint8_t>(tosSetting == kTosInherit ? innerByte : tosSetting) & ~kEcnMask;
  const uint8_t ecn = innerByte & kEcnMask;
  return dscp | (ecn == kEcnCe ? kEcnEct0 : ecn);
}

int DecapEcn(int outerTos, uint8_t* frame, size_t flen) {
  if (outerTos < 0 || (outerTos & kEcnMask) != kEcnCe) return -1;
  size_t at = 0;
  const int version = InnerIp(frame, flen, &at);
  if (version == 0) return -1;
  const int inner = InnerDsfield(frame, flen);
  if ((inner & kEcnMask) == kEcnNotEct) return kRxEcnNotEctCe;
  if ((inner & kEcnMask) == kEcnCe) return -1;
  if (version == 6) {
    frame[at + 1] |= kEcnCe << 4;
    return -1;
  }
  // RFC 1624 incremental update: HC' = ~(~HC + ~m + m'), on the 16-bit word
  // holding version/IHL and TOS.
  const uint16_t oldWord = static_cast<uint16_t>(frame[at] << 8 | frame[at + 1]);
  frame[at + 1] |= kEcnCe;
  const uint16_t newWord = static_cast<uint16_t>(frame[at] << 8 | frame[at + 1]);
  uint32_t sum = static_cast<uint16_t>(~(frame[at + 10] << 8 | frame[at + 11]));
  sum += static_cast<uint16_t>(~oldWord);
  sum += newWord;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const uint16_t check = static_cast<uint16_t>(~sum);
  frame[at + 10] = static_cast<uint8_t>(check >> 8);
  frame[at + 11] = static_cast<uint8_t>(check);
  return -1;
}

}  // namespace core
}  // namespace vxland
