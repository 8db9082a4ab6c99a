// The packet core's transmit rules (TAP -> UDP), written once: the native
// engine's tx worker calls them on the frame its TAP read left in the send
// buffer, and the dgram path calls them through the addon (PacketCore
// classifyTx) on each batch its TAP poller read. Per frame: runt, VLAN tag,
// oversize (and, for a frame read with a virtio_net_hdr, its checksum
// offload), then unicast or flood from the FDB mirror, or no destination.
// No N-API, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core_rx.h"
#include "engine_offload.h"

namespace vxland {
namespace core {

/** The checks of a frame read from the TAP that need nothing but the frame
 *  (runt, VLAN tag, and for a frame that is no GSO super-frame its size and
 *  checksum offload, completing the checksum in place): -1 when it may go
 *  on to TxDestinations, else its DropReason. maxUntagged = Ethernet header
 *  + MTU. A super-frame's size is the split's to check (TsoSplitHeaders),
 *  before TxDestinations: a frame that is not sent must not mark a
 *  forwarding entry used. */
int TxFrameDrop(const struct virtio_net_hdr& hdr, uint8_t* frame, size_t flen, size_t maxUntagged, bool allowVlan);

/** Where a frame goes. */
struct TxDests {
  bool flooded;  // sent to the flood list (a group address, or a MAC the mirror lacks)
  Vtep unicast;  // !flooded: the destination MAC's VTEP
  /** flooded: the flood list, held until every copy is queued (null = none). */
  std::shared_ptr<const std::vector<Vtep>> flood;
  const Vtep* dests;
  size_t count;  // 0: drop as kTxNoDestination
};

/** The destinations of a frame of network vni that passed its checks.
 *  usedDue as FdbMirror::Lookup (null: not tracked). */
void TxDestinations(Context& ctx, uint32_t vni, const uint8_t* frame, int64_t nowMs, int64_t usedIntervalMs,
                    bool* usedDue, TxDests* out);

}  // namespace core
}  // namespace vxland
