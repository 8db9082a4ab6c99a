#include "core_rx.h"

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

void Context::SetPolicy(std::shared_ptr<const SourcePolicy> policy) {
  {
    std::lock_guard<std::mutex> lock(policyMu_);
    policy_ = std::move(policy);
  }
  policyGen_.fetch_add(1, std::memory_order_release);
}

RxReader::RxReader(Context* ctx) : ctx_(ctx) {
  recent_.reserve(1024);
  BeginBatch();
}

void RxReader::BeginBatch() {
  const uint64_t gen = ctx_->policyGen_.load(std::memory_order_acquire);
  if (gen != policyGen_) {
    std::lock_guard<std::mutex> lock(ctx_->policyMu_);
    policy_ = ctx_->policy_;
    policyGen_ = gen;
    haveLastKey_ = false;
  }
  allowVlan_ = ctx_->AllowVlan();
  haveLastFrom_ = false;
}

const Network* RxReader::Find(uint32_t vni) const {
  for (const Network& n : ctx_->networks_) {
    if (n.vni == vni) return &n;
  }
  return nullptr;
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

void RxReader::Classify(uint8_t* d, size_t dl, const Vtep& from, int64_t nowMs, RxResult* out) {
  out->learn = false;
  out->vni = 0;
  SourcePolicy::Key key;
  IpKey(from, key.data());
  if (!haveLastKey_ || key != lastKey_) {
    lastKey_ = key;
    lastAccepted_ = policy_->Accepts(key);
    haveLastKey_ = true;
  }
  if (!lastAccepted_) {
    out->drop = kRxSourceNotAllowed;
    return;
  }
  if (dl < offload::kVxlanHeaderBytes + offload::kEthHeaderBytes) {
    out->drop = kRxTruncated;
    return;
  }
  if ((d[0] & offload::kVxlanFlagI) == 0) {
    out->drop = kRxNoIFlag;
    return;
  }
  out->vni = static_cast<uint32_t>(d[4]) << 16 | static_cast<uint32_t>(d[5]) << 8 | d[6];
  const Network* net = Find(out->vni);
  if (net == nullptr) {
    out->drop = kRxWrongVni;
    return;
  }
  const offload::RxConfig cfg{net->vni, net->mtuBytes, net->ownMac, allowVlan_};
  offload::RxFrame rf;
  const offload::RxVerdict verdict = offload::DecapVxlan(d, dl, cfg, &rf);
  if (verdict != offload::RxVerdict::kOk) {
    out->drop = DropOf(verdict);
    return;
  }
  out->srcMac = rf.srcMac;
  out->frame = rf.frame;
  out->frameBytes = rf.frameBytes;
  out->drop = -1;
  // One mirror check per run of frames from one MAC behind one sender.
  if (rf.srcMac == lastMac_ && haveLastFrom_ && from.SameIp(lastFrom_)) return;
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
  lastFrom_ = from;
  haveLastFrom_ = true;
}

}  // namespace core
}  // namespace vxland
