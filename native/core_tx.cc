#include "core_tx.h"

#include "drop_reasons.h"

namespace vxland {
namespace core {

int TxFrameDrop(const struct virtio_net_hdr& hdr, uint8_t* frame, size_t flen, size_t maxUntagged, bool allowVlan) {
  if (flen < offload::kEthHeaderBytes) return kTxRunt;
  const bool tagged = offload::IsTagged(frame);
  if (tagged && !allowVlan) return kTxVlanTagged;
  if (hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE) return -1;
  if (flen > maxUntagged + (tagged ? offload::kVlanTagBytes : 0)) return kTxOversize;
  if ((hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0 &&
      !offload::CompleteChecksum(frame, flen, hdr.csum_start, hdr.csum_offset)) {
    return kTxBadOffload;
  }
  return -1;
}

void TxDestinations(Context& ctx, uint32_t vni, const uint8_t* frame, int64_t nowMs, int64_t usedIntervalMs,
                    bool* usedDue, TxDests* out) {
  const bool group = (frame[0] & 0x01) != 0;  // broadcast or multicast
  if (!group && ctx.mirror.Lookup(vni, offload::MacAt(frame), &out->unicast, nowMs, usedIntervalMs, usedDue)) {
    out->flooded = false;
    out->dests = &out->unicast;
    out->count = 1;
    return;
  }
  out->flooded = true;
  out->flood = ctx.mirror.FloodList(vni, nowMs, usedIntervalMs, usedDue);
  out->dests = out->flood != nullptr ? out->flood->data() : nullptr;
  out->count = out->flood != nullptr ? out->flood->size() : 0;
}

}  // namespace core
}  // namespace vxland
