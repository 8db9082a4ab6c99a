#include "core_rx.h"

#include <algorithm>

#include "core_ecn.h"
#include "drop_reasons.h"
#include "engine_offload.h"
#include "limits.h"

namespace vxland {
namespace core {
namespace {

/** An active learned entry is re-offered this often so the table refreshes
 *  it (the kernel refreshes on every frame; once a second is plenty against
 *  a 300 s ageing time). */
constexpr int64_t kRefreshIntervalMs = 1000;
constexpr size_t kRecentMaxEntries = static_cast<size_t>(kLearnReportMaxMacs);

/** The drop reason counted for a DecapVxlan verdict other than kOk. */
int DropOf(offload::RxVerdict v) {
  switch (v) {
    case offload::RxVerdict::kTruncated: return kRxTruncated;
    case offload::RxVerdict::kNoIFlag: return kRxNoIFlag;
    case offload::RxVerdict::kWrongVni: return kRxWrongVni;
    case offload::RxVerdict::kVlanTagged: return kRxVlanTagged;
    case offload::RxVerdict::kOversize: return kRxOversize;
    case offload::RxVerdict::kOwnSourceMac: return kRxOwnSourceMac;
    case offload::RxVerdict::kBadSourceMac:
    case offload::RxVerdict::kOk: break;
  }
  return kRxBadSourceMac;
}

}  // namespace

const Network* NetworkTable::Find(uint32_t vni) const {
  auto it = std::lower_bound(nets.begin(), nets.end(), vni, [](const Network& n, uint32_t v) { return n.vni < v; });
  return it != nets.end() && it->vni == vni ? &*it : nullptr;
}

Context::Context() : table_(std::make_shared<const NetworkTable>()), slotUsed_(kMaxNetworks, false) {}

void Context::Publish(std::shared_ptr<const NetworkTable> t) {
  table_ = std::move(t);
  gen_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const NetworkTable> Context::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

bool Context::AddNetwork(Network n, uint32_t* slot) {
  std::shared_ptr<const NetworkTable> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (table_->Find(n.vni) != nullptr) return false;
    uint32_t s = nextSlot_;
    for (uint32_t i = 0; i < kMaxNetworks && slotUsed_[s]; i++) s = (s + 1) % kMaxNetworks;
    if (slotUsed_[s]) return false;
    slotUsed_[s] = true;
    nextSlot_ = (s + 1) % kMaxNetworks;
    n.slot = s;
    if (n.policy == nullptr) n.policy = std::make_shared<const SourcePolicy>();
    if (n.icmpBudget == nullptr) n.icmpBudget = std::make_shared<IcmpBudget>();
    auto t = std::make_shared<NetworkTable>(*table_);
    auto at = std::lower_bound(t->nets.begin(), t->nets.end(), n.vni, [](const Network& x, uint32_t v) { return x.vni < v; });
    t->nets.insert(at, std::move(n));
    old = std::move(table_);
    Publish(std::move(t));
    if (slot != nullptr) *slot = s;
  }
  return true;
}

bool Context::RemoveNetwork(uint32_t vni, Network* removed) {
  std::shared_ptr<const NetworkTable> old;  // dropped outside the lock: may close a TAP
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Network* n = table_->Find(vni);
    if (n == nullptr) return false;
    if (removed != nullptr) *removed = *n;
    slotUsed_[n->slot] = false;
    auto t = std::make_shared<NetworkTable>(*table_);
    t->nets.erase(t->nets.begin() + (n - table_->nets.data()));
    old = std::move(table_);
    Publish(std::move(t));
  }
  mirror.RemoveVni(vni);
  neighbours.RemoveVni(vni);
  return true;
}

template <typename Fn>
bool Context::Change(uint32_t vni, Fn fn) {
  std::shared_ptr<const NetworkTable> old;
  std::lock_guard<std::mutex> lock(mu_);
  const Network* n = table_->Find(vni);
  if (n == nullptr) return false;
  auto t = std::make_shared<NetworkTable>(*table_);
  fn(t->nets[static_cast<size_t>(n - table_->nets.data())]);
  old = std::move(table_);
  Publish(std::move(t));
  return true;
}

bool Context::SetPolicy(uint32_t vni, std::shared_ptr<const SourcePolicy> policy) {
  return Change(vni, [&](Network& n) { n.policy = std::move(policy); });
}

bool Context::SetAllowVlan(uint32_t vni, bool allow) {
  return Change(vni, [&](Network& n) { n.allowVlan = allow; });
}

bool Context::SetSuppress(uint32_t vni, bool on) {
  return Change(vni, [&](Network& n) { n.suppress = on; });
}

void Context::Clear() {
  std::shared_ptr<const NetworkTable> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Network& n : table_->nets) slotUsed_[n.slot] = false;
    old = std::move(table_);
    Publish(std::make_shared<const NetworkTable>());
  }
}

RxReader::RxReader(Context* ctx) : ctx_(ctx), view_(ctx) {
  recent_.reserve(1024);
  BeginBatch();
}

void RxReader::BeginBatch() {
  if (view_.Refresh()) {
    haveLastKey_ = false;
    lastNet_ = nullptr;
  }
  haveLastFrom_ = false;
}

bool RxReader::Offer(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs) {
  RecentKey key{vni, mac, {}};
  IpKey(from, key.from.data());
  auto it = recent_.find(key);
  if (it != recent_.end() && nowMs - it->second < kLearnReportIntervalMs) return false;
  if (recent_.size() >= kRecentMaxEntries) recent_.clear();
  recent_[key] = nowMs;
  return true;
}

void RxReader::Classify(uint8_t* d, size_t dl, const Vtep& from, int64_t nowMs, int outerTos, RxResult* out) {
  out->learn = false;
  out->vni = 0;
  out->net = nullptr;
  if (dl < offload::kVxlanHeaderBytes + offload::kEthHeaderBytes) {
    out->drop = kRxTruncated;
    return;
  }
  if ((d[0] & offload::kVxlanFlagI) == 0) {
    out->drop = kRxNoIFlag;
    return;
  }
  out->vni = static_cast<uint32_t>(d[4]) << 16 | static_cast<uint32_t>(d[5]) << 8 | d[6];
  const Network* net = view_.Table().Find(out->vni);
  if (net == nullptr) {
    out->drop = kRxWrongVni;
    return;
  }
  out->net = net;
  SourcePolicy::Key key;
  IpKey(from, key.data());
  if (!haveLastKey_ || net != lastNet_ || key != lastKey_) {
    lastKey_ = key;
    lastNet_ = net;
    lastAccepted_ = net->policy->Accepts(key);
    haveLastKey_ = true;
  }
  if (!lastAccepted_) {
    out->drop = kRxSourceNotAllowed;
    return;
  }
  const offload::RxConfig cfg{net->vni, net->mtuBytes, net->ownMac, net->allowVlan};
  offload::RxFrame rf;
  const offload::RxVerdict verdict = offload::DecapVxlan(d, dl, cfg, &rf);
  if (verdict != offload::RxVerdict::kOk) {
    out->drop = DropOf(verdict);
    return;
  }
  const int ecnDrop = DecapEcn(outerTos, rf.frame, rf.frameBytes);
  if (ecnDrop >= 0) {
    out->drop = ecnDrop;
    return;
  }
  out->srcMac = rf.srcMac;
  out->frame = rf.frame;
  out->frameBytes = rf.frameBytes;
  out->drop = -1;
  // One mirror check per run of frames from one MAC behind one sender.
  if (rf.srcMac == lastMac_ && rf.vni == lastMacVni_ && haveLastFrom_ && from.SameIp(lastFrom_)) return;
  bool refresh = false;
  switch (ctx_->mirror.Check(rf.vni, rf.srcMac, from, nowMs, kRefreshIntervalMs, &refresh)) {
    case MirrorMatch::PinnedOther:
      out->drop = kRxStaticMacConflict;
      return;
    case MirrorMatch::Missing:
    case MirrorMatch::OtherVtep:
      out->learn = Offer(rf.vni, rf.srcMac, from, nowMs);
      break;
    case MirrorMatch::SameVtep:
      out->learn = refresh;
      break;
    case MirrorMatch::PinnedSame:
      break;
  }
  lastMac_ = rf.srcMac;
  lastMacVni_ = rf.vni;
  lastFrom_ = from;
  haveLastFrom_ = true;
}

}  // namespace core
}  // namespace vxland
