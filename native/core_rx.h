// The packet core's receive rules (UDP -> TAP), written once: the native
// engine's rx worker calls them on the buffers recvmmsg filled, and the dgram
// path calls them through the addon (native/core_binding.cc) on each datagram
// node:dgram hands over. Per datagram, in the order the drop reasons are
// counted: truncated, I flag, VNI -> network (the drops so far are
// host-level: no network is known yet), the network's source policy, inner frame
// (VLAN tag, MTU, own / bad source MAC: offload::DecapVxlan), ECN (core_ecn.h), static-MAC
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

#include "core_pmtu.h"
#include "core_policy.h"
#include "core_suppress.h"
#include "drop_reasons.h"
#include "engine_fdb.h"

namespace vxland {
namespace core {

/** One network (one VNI) as the rx and tx rules see it. */
struct Network {
  uint32_t vni = 0;
  size_t mtuBytes = 0;  // TAP MTU: inner frames up to 14 + mtuBytes (+ 4 when tagged)
  uint64_t ownMac = 0;  // the TAP's, 48-bit, first byte most significant
  bool allowVlan = false;
  /** Answer ARP requests and neighbour solicitations for addresses in the
   *  neighbour mirror on the TAP (core_suppress.h) instead of flooding them. */
  bool suppress = false;
  /** The budget of its ICMP too-big replies (core_pmtu.h); set by Context::AddNetwork, shared by its snapshots. */
  std::shared_ptr<IcmpBudget> icmpBudget;
  /** Who may send datagrams of this network; never null (default: named-only, nobody named). */
  std::shared_ptr<const SourcePolicy> policy;
  uint32_t slot = 0;  // set by Context::AddNetwork: 0 .. kMaxNetworks-1 (engine_fdb.h)
  /** The data path's per-network state (the engine's TAP). Released with the
   *  last snapshot that holds the network, on whichever thread drops it last. */
  std::shared_ptr<void> io;
};

/** The networks at one moment; immutable, replaced whole on every change. */
struct NetworkTable {
  std::vector<Network> nets;  // sorted by VNI
  const Network* Find(uint32_t vni) const;
};

/** What both data paths classify against: networks by VNI (each with its
 *  MTU, MAC, source policy and VLAN option) and the FDB mirror. Written from
 *  the JS thread (the sync of src/datapath/core-sync.ts, network add and
 *  remove), read by any thread through snapshots: a reader takes the table
 *  when the generation moved (once per batch), never a lock per datagram. */
class Context {
 public:
  Context();

  FdbMirror mirror;
  /** The neighbour table's mirror (src/fdb/neighbours.ts): what suppression answers with. */
  NeighbourTable neighbours;

  /** Adds a network (its slot is chosen here); false when the VNI is served
   *  already or every slot is taken. Slots are handed out round the ring, so
   *  a freed slot is reused as late as possible (a reader still counting
   *  into it from an old snapshot hits nobody new). */
  bool AddNetwork(Network n, uint32_t* slot);
  /** Removes the network and its mirror entries, flood list and neighbours; *removed
   *  (may be null) gets what it was. False when unknown. */
  bool RemoveNetwork(uint32_t vni, Network* removed);
  bool SetPolicy(uint32_t vni, std::shared_ptr<const SourcePolicy> policy);
  bool SetAllowVlan(uint32_t vni, bool allow);
  bool SetSuppress(uint32_t vni, bool on);
  /** The current table (never null). */
  std::shared_ptr<const NetworkTable> Snapshot() const;
  uint64_t Generation() const { return gen_.load(std::memory_order_acquire); }
  /** Drops every network (their io with them, once no reader holds them). */
  void Clear();

 private:
  template <typename Fn>
  bool Change(uint32_t vni, Fn fn);
  void Publish(std::shared_ptr<const NetworkTable> t);

  mutable std::mutex mu_;
  std::shared_ptr<const NetworkTable> table_;
  std::atomic<uint64_t> gen_{1};
  std::vector<bool> slotUsed_;
  uint32_t nextSlot_ = 0;
};

/** A reader's copy of the table, refreshed when the generation moved. */
class NetworkView {
 public:
  /** Holds an empty table until the first Refresh(). */
  explicit NetworkView(const Context* ctx) : ctx_(ctx), table_(std::make_shared<const NetworkTable>()) {}
  /** True when the table changed since the last call. */
  bool Refresh() {
    const uint64_t gen = ctx_->Generation();
    if (gen == gen_) return false;
    table_ = ctx_->Snapshot();
    gen_ = gen;
    return true;
  }
  const NetworkTable& Table() const { return *table_; }
  /** Lets go of the table (and whatever io only it held). */
  void Release() {
    table_ = std::make_shared<const NetworkTable>();
    gen_ = 0;
  }

 private:
  const Context* ctx_;
  std::shared_ptr<const NetworkTable> table_;
  uint64_t gen_ = 0;
};

/** One datagram's verdict. */
struct RxResult {
  int drop;       // a DropReason (native/drop_reasons.h), or -1: write frame to the network's TAP
  /** The datagram's network (null: dropped before one was known, a host-level
   *  drop); valid until the reader's next BeginBatch. */
  const Network* net;
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

  /** Call before each batch of Classify calls: picks up a changed network
   *  table, and forgets what the previous batch cached about the mirror. */
  void BeginBatch();

  const NetworkTable& Table() const { return view_.Table(); }
  NetworkView& View() { return view_; }

  /** Classifies datagram d[0, dl) from `from` received at nowMs
   *  (CLOCK_MONOTONIC or any steady clock in ms). A MAC is offered for
   *  learning when the mirror lacks it or has it at another VTEP (at most
   *  once per kLearnReportIntervalMs per sending VTEP while that lasts: a
   *  MAC that moves is offered from its new VTEP at once), and once a second
   *  while it stays at the same VTEP (so the table's entry does not age out
   *  while traffic flows). outerTos is the outer IP header's TOS / traffic
   *  class for the ECN rule (core_ecn.h), -1 when the data path cannot see
   *  it (no ECN decapsulation then). */
  void Classify(uint8_t* d, size_t dl, const Vtep& from, int64_t nowMs, int outerTos, RxResult* out);

 private:
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
  NetworkView view_;
  // The last (sender, network)'s policy answer (runs of datagrams come from one VTEP).
  SourcePolicy::Key lastKey_{};
  const Network* lastNet_ = nullptr;
  bool lastAccepted_ = false;
  bool haveLastKey_ = false;
  // The last (network, source MAC, sender) checked against the mirror in this batch.
  uint64_t lastMac_ = UINT64_MAX;
  uint32_t lastMacVni_ = 0;
  Vtep lastFrom_;
  bool haveLastFrom_ = false;
  std::unordered_map<RecentKey, int64_t, RecentHash> recent_;
};

}  // namespace core
}  // namespace vxland
