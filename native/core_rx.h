// The packet core's receive rules (UDP -> TAP), written once: the native
// engine's rx worker calls them on the buffers recvmmsg filled, and the dgram
// path calls them through the addon (native/core_binding.cc) on each datagram
// node:dgram hands over. Per datagram, in the order the drop reasons are
// counted: source policy, truncated, I flag, VNI -> network, inner frame
// (VLAN tag, MTU, own / bad source MAC: offload::DecapVxlan), static-MAC
// conflict (FDB mirror), and whether to offer the source MAC for learning.
// The FDB's authority (learning decisions, caps, rate, ageing) stays in
// src/fdb/; the core only reads its mirror. No N-API, no syscalls: the
// fuzzers call these directly.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core_policy.h"
#include "drop_reasons.h"
#include "engine_fdb.h"

namespace vxland {
namespace core {

/** One network (one VNI) as the rx rules see it. */
struct Network {
  uint32_t vni;
  size_t mtuBytes;  // TAP MTU: inner frames up to 14 + mtuBytes (+ 4 when tagged)
  uint64_t ownMac;  // the TAP's, 48-bit, first byte most significant
};

/** What both data paths classify against: networks by VNI, the FDB mirror,
 *  the source policy and the VLAN option. Written from the JS thread (the
 *  sync of src/datapath/core-sync.ts), read by RxReaders on any thread. */
class Context {
 public:
  /** Today a daemon serves one network; the table is keyed by VNI already. */
  explicit Context(const Network& network) : networks_{network} {}

  FdbMirror mirror;

  void SetPolicy(std::shared_ptr<const SourcePolicy> policy);
  void SetAllowVlan(bool allow) { allowVlan_.store(allow, std::memory_order_relaxed); }
  bool AllowVlan() const { return allowVlan_.load(std::memory_order_relaxed); }
  const std::vector<Network>& Networks() const { return networks_; }

 private:
  friend class RxReader;
  const std::vector<Network> networks_;
  std::mutex policyMu_;
  std::shared_ptr<const SourcePolicy> policy_ = std::make_shared<SourcePolicy>();  // named-only, nobody named
  std::atomic<uint64_t> policyGen_{1};
  std::atomic<bool> allowVlan_{false};
};

/** One datagram's verdict. */
struct RxResult {
  int drop;       // a DropReason (native/drop_reasons.h), or -1: write frame to the TAP
  bool learn;     // (deliver only) offer (vni, srcMac, sender) to the table for learning
  uint32_t vni;   // set from the I-flag check on (kRxWrongVni: the foreign VNI)
  uint64_t srcMac;
  uint8_t* frame;  // deliver only: the inner frame, inside the datagram
  size_t frameBytes;
};

/** The drop reason of a delivered frame that the TAP write refused with
 *  errno err: both data paths count their TAP write failures by this rule
 *  (the engine's rx worker directly, the dgram path through PacketCore). */
inline int RxTapWriteDrop(int err) { return err == EAGAIN ? kRxTapBusy : kRxTapError; }

/** One reader of a Context (the engine's rx worker, a dgram path's binding):
 *  its snapshot of the policy and its memory of recent learning offers.
 *  Used by one thread at a time. */
class RxReader {
 public:
  explicit RxReader(Context* ctx);

  /** Call before each batch of Classify calls: picks up a new policy or VLAN
   *  option, and forgets what the previous batch cached about the mirror. */
  void BeginBatch();

  /** Classifies datagram d[0, dl) from `from` received at nowMs
   *  (CLOCK_MONOTONIC or any steady clock in ms). A MAC is offered for
   *  learning when the mirror lacks it or has it at another VTEP (at most
   *  once per kLearnReportIntervalMs per sending VTEP while that lasts: a
   *  MAC that moves is offered from its new VTEP at once), and once a second
   *  while it stays at the same VTEP (so the table's entry does not age out
   *  while traffic flows). */
  void Classify(uint8_t* d, size_t dl, const Vtep& from, int64_t nowMs, RxResult* out);

 private:
  const Network* Find(uint32_t vni) const;
  bool Offer(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs);

  /** A learning offer: (VNI, MAC, the sender's IP as IpKey()). */
  struct RecentKey {
    uint32_t vni;
    uint64_t id;
    SourcePolicy::Key from;
    bool operator==(const RecentKey& o) const { return vni == o.vni && id == o.id && from == o.from; }
  };
  struct RecentHash {
    size_t operator()(const RecentKey& k) const {
      uint64_t ip[2];
      memcpy(ip, k.from.data(), sizeof(ip));
      return std::hash<uint64_t>()((k.id * 31 + k.vni) ^ (ip[0] * 0x9e3779b97f4a7c15ull) ^ ip[1]);
    }
  };

  Context* ctx_;
  std::shared_ptr<const SourcePolicy> policy_;
  uint64_t policyGen_ = 0;
  bool allowVlan_ = false;
  // The last sender's policy answer (runs of datagrams come from one VTEP).
  SourcePolicy::Key lastKey_{};
  bool lastAccepted_ = false;
  bool haveLastKey_ = false;
  // The last (source MAC, sender) checked against the mirror in this batch.
  uint64_t lastMac_ = UINT64_MAX;
  Vtep lastFrom_;
  bool haveLastFrom_ = false;
  std::unordered_map<RecentKey, int64_t, RecentHash> recent_;
};

}  // namespace core
}  // namespace vxland
