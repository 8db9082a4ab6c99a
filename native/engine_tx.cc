#include "engine_tx.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "core_tx.h"

namespace vxland {
namespace engine {

Engine::TxWorker::TxWorker(Engine* e)
    : e_(e),
      sender_(e->udp_.fd, e->udp_.gso, e->wakeFd_, &c_, &tally_,
              [e](int err) {
                e->gsoActive_.store(false);
                e->Announce("gso", err, "UDP GSO send failed with EIO: sending with plain sendmmsg from now on");
              }),
      maxUntagged_(kEthBytes + e->mtu_) {
  used_.reserve(kMaxUsedPerReport);
  lastTrafficMs_ = usedSinceMs_ = NowMs();
  e->gsoActive_.store(e->udp_.gso);
}

int Engine::TxWorker::Step() {
  bool empty = false;
  const int64_t wakeMs = NowMs();
  const bool hadUsed = !used_.empty();
  int reads = 0;
  for (; reads < kTxReadsPerWake; reads++) {
    uint8_t* tail = sender_.Tail(kVxlanHeaderBytes + kMaxTapFrameBytes + kSplitHeaderBytes, kTxDatagramsPerRead);
    struct iovec rv[2] = {{&hdr_, kVnetHdrBytes}, {tail + kVxlanHeaderBytes, kMaxTapFrameBytes}};
    ssize_t n = ::readv(e_->tapFd_, rv, 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        empty = true;
        break;
      }
      e_->Fatal(errno, "read");
      return -1;
    }
    if (n == 0) {
      e_->Fatal(EBADFD, "read");
      return -1;
    }
    c_.v[kTxTapReads]++;
    if (static_cast<size_t>(n) > kVnetHdrBytes + kMaxTapFrameBytes) {
      // Older kernels report a frame longer than the buffer at its whole
      // length (newer ones at the part read): larger than the MTU allows.
      c_.Drop(kTxOversize);
      continue;
    }
    uint8_t* frame = tail + kVxlanHeaderBytes;
    const size_t flen = static_cast<size_t>(n) > kVnetHdrBytes ? static_cast<size_t>(n) - kVnetHdrBytes : 0;
    e_->Forward(sender_, hdr_, tail, frame, flen, segLens_, maxUntagged_, wakeMs, used_, c_);
  }
  sender_.Flush();
  e_->Publish(c_);
  if (!hadUsed && !used_.empty()) usedSinceMs_ = wakeMs;
  if (reads > 0) {
    lastTrafficMs_ = wakeMs;
    if (idle_) {
      idle_ = false;
      busySinceMs_ = wakeMs;
    }
    if (wakeMs - busySinceMs_ >= kBusyHousekeepingMs) e_->MergeVtepCounts(tally_);  // see RxWorker::Handle
  }
  FlushUsed(wakeMs, false);
  return empty ? 0 : 1;
}

int Engine::TxWorker::Idle(int64_t nowMs) {
  idle_ = true;
  e_->MergeVtepCounts(tally_);
  FlushUsed(nowMs, false);
  if (used_.empty()) return kIdlePollMs;
  const int64_t dueMs = std::min(lastTrafficMs_ + kQuietFlushMs, usedSinceMs_ + kUsedMaxDelayMs);
  return static_cast<int>(std::max<int64_t>(1, dueMs - nowMs));
}

void Engine::TxWorker::Finish() {
  sender_.Flush();
  e_->Publish(c_);
  e_->MergeVtepCounts(tally_);
  FlushUsed(NowMs(), true);
}

void Engine::TxWorker::FlushUsed(int64_t nowMs, bool final) {
  if (used_.empty()) return;
  if (!final && nowMs - lastTrafficMs_ < kQuietFlushMs && nowMs - usedSinceMs_ < kUsedMaxDelayMs) return;
  auto* ev = new EngineEvent{EngineEvent::kObservations, {}, "", "", "", 0, {}, {}, {}};
  ev->used = std::move(used_);
  used_ = std::vector<UsedKey>();
  used_.reserve(kMaxUsedPerReport);
  e_->Post(ev);
}

uint64_t Engine::FramesIn(const struct virtio_net_hdr& hdr, size_t flen) {
  if (hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE || hdr.gso_size == 0 || flen <= hdr.hdr_len) return 1;
  return (flen - hdr.hdr_len + hdr.gso_size - 1) / hdr.gso_size;
}

void Engine::Forward(UdpSender& sender, const struct virtio_net_hdr& hdr, uint8_t* tail, uint8_t* frame, size_t flen,
                     uint32_t* segLens, size_t maxUntagged, int64_t nowMs, std::vector<UsedKey>& used,
                     LocalCounters& c) {
  // Every check of the frame itself (the core's, then the split's) comes
  // before the lookup: a frame that is not sent must not mark a
  // forwarding entry used.
  const int drop = core::TxFrameDrop(hdr, frame, flen, maxUntagged, ctx_->AllowVlan());
  if (drop >= 0) return c.Drop(drop, drop == kTxVlanTagged ? FramesIn(hdr, flen) : 1);
  const size_t maxFrame = maxUntagged + (IsTagged(frame) ? offload::kVlanTagBytes : 0);
  const bool gso = hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE;
  uint8_t* out = frame + flen;
  offload::TsoLayout layout;
  int segs = 1;
  if (gso) {
    // Only the headers are written per segment; the payload is sent from
    // where the read put it.
    segs = offload::TsoSplitHeaders(frame, flen, hdr, maxFrame, out, kSplitHeaderBytes, kVxlanHeaderBytes, segLens,
                                    kMaxSegs, &layout);
    if (segs < 0) {
      // A super-frame we cannot cut into MTU-sized frames is, as sent, over
      // the MTU: it is dropped, never fragmented (RFC 7348 §4.3).
      return c.Drop(segs == offload::kSplitMalformed || segs == offload::kSplitTooBig ? kTxOversize : kTxQueueFull);
    }
    c.v[kTxTsoFrames]++;
  }
  core::TxDests to;
  bool usedDue = false;
  core::TxDestinations(*ctx_, vni_, frame, nowMs, kUsedReportIntervalMs, used.size() < kMaxUsedPerReport ? &usedDue : nullptr,
                       &to);
  if (usedDue) used.push_back(UsedKey{vni_, to.flooded ? 0 : MacAt(frame)});
  const Vtep* dests = to.dests;
  const size_t ndest = to.count;
  if (ndest == 0) return c.Drop(kTxNoDestination, static_cast<uint64_t>(segs));
  if (gso) {
    const size_t stride = kVxlanHeaderBytes + layout.hdrLen;
    for (int s = 0; s < segs; s++) WriteVxlanHeader(out + s * stride);
    sender.Commit(out + segs * stride);
    for (size_t d = 0; d < ndest; d++) {
      for (int s = 0; s < segs; s++) {
        sender.MakeRoom(out + segs * stride);
        sender.Add(dests[d], out + s * stride, stride, frame + layout.hdrLen + s * static_cast<size_t>(layout.mss),
                   segLens[s] - layout.hdrLen);
      }
    }
    return;
  }
  WriteVxlanHeader(tail);
  sender.Commit(frame + flen);
  for (size_t d = 0; d < ndest; d++) {
    sender.MakeRoom(frame + flen);
    sender.Add(dests[d], tail, kVxlanHeaderBytes + flen);
  }
}

void Engine::WriteVxlanHeader(uint8_t* p) const {
  p[0] = kVxlanFlagI;
  p[1] = p[2] = p[3] = 0;
  p[4] = static_cast<uint8_t>(vni_ >> 16);
  p[5] = static_cast<uint8_t>(vni_ >> 8);
  p[6] = static_cast<uint8_t>(vni_);
  p[7] = 0;
}

}  // namespace engine
}  // namespace vxland
