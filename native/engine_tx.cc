#include "engine_tx.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "core_pmtu.h"
#include "core_srcport.h"
#include "core_ecn.h"
#include "core_suppress.h"
#include "core_tx.h"

namespace vxland {
namespace engine {

Engine::TxWorker::TxWorker(Engine* e)
    : e_(e),
      view_(e->ctx_.get()),
      sender_(e->SendFds(), e->udp_.gso, e->wakeFd_, &c_, &tally_,
              [e](int err) {
                e->gsoActive_.store(false);
                e->Announce("gso", err, "UDP GSO send failed with EIO: sending with plain sendmmsg from now on");
              }) {
  used_.reserve(kMaxUsedPerReport);
  Refresh();
  lastTrafficMs_ = usedSinceMs_ = NowMs();
  e->gsoActive_.store(e->udp_.gso);
}

void Engine::TxWorker::Refresh() {
  if (view_.Refresh()) Rebuild();
}

void Engine::TxWorker::Rebuild() {
  nets_.clear();
  fds_.clear();
  std::vector<const Tap*> stillFailed;
  for (const core::Network& n : view_.Table().nets) {
    const Tap* tap = static_cast<const Tap*>(n.io.get());
    if (std::find(failed_.begin(), failed_.end(), tap) != failed_.end()) {
      stillFailed.push_back(tap);
      continue;
    }
    nets_.push_back(&n);
    fds_.push_back(tap->fd);
  }
  failed_.swap(stillFailed);
  ready_.resize(fds_.size());
  nextNet_ = 0;
}

int Engine::TxWorker::ReadTap(const core::Network& net, int budget, int64_t wakeMs, bool* empty) {
  const int fd = TapFd(net);
  sender_.SetNet(net.slot);
  int reads = 0;
  *empty = false;
  while (reads < budget) {
    uint8_t* tail = sender_.Tail(kVxlanHeaderBytes + kMaxTapFrameBytes + kSplitHeaderBytes, kTxDatagramsPerRead);
    struct iovec rv[2] = {{&hdr_, kVnetHdrBytes}, {tail + kVxlanHeaderBytes, kMaxTapFrameBytes}};
    ssize_t n = ::readv(fd, rv, 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        *empty = true;
        break;
      }
      e_->TapFailed(net, errno, "read");
      failed_.push_back(static_cast<const Tap*>(net.io.get()));
      *empty = true;
      break;
    }
    if (n == 0) {
      e_->TapFailed(net, EBADFD, "read");
      failed_.push_back(static_cast<const Tap*>(net.io.get()));
      *empty = true;
      break;
    }
    reads++;
    c_.v[kTxTapReads]++;
    if (static_cast<size_t>(n) > kVnetHdrBytes + kMaxTapFrameBytes) {
      // Older kernels report a frame longer than the buffer at its whole
      // length (newer ones at the part read): larger than the MTU allows.
      c_.NetDrop(net.slot, kTxOversize);
      continue;
    }
    uint8_t* frame = tail + kVxlanHeaderBytes;
    const size_t flen = static_cast<size_t>(n) > kVnetHdrBytes ? static_cast<size_t>(n) - kVnetHdrBytes : 0;
    e_->Forward(sender_, net, hdr_, tail, frame, flen, segLens_, wakeMs, used_, c_);
  }
  return reads;
}

int Engine::TxWorker::Step() {
  Refresh();
  const int64_t wakeMs = NowMs();
  const bool hadUsed = !used_.empty();
  int reads = 0;
  bool more = false;
  const size_t count = nets_.size();
  const size_t failedBefore = failed_.size();
  if (count == 1) {
    bool empty = false;
    reads = ReadTap(*nets_[0], kTxReadsPerWake, wakeMs, &empty);
    more = !empty;
  } else if (count > 1) {
    // One poll finds the TAPs with frames, rather than a read of each.
    for (size_t i = 0; i < count; i++) ready_[i] = {fds_[i], POLLIN, 0};
    if (::poll(ready_.data(), count, 0) > 0) {
      const size_t first = nextNet_ % count;
      nextNet_ = first + 1;
      for (size_t k = 0; k < count && reads < kTxReadsPerWake; k++) {
        const size_t i = (first + k) % count;
        if (ready_[i].revents == 0) continue;
        bool empty = false;
        reads += ReadTap(*nets_[i], kTxReadsPerWake - reads, wakeMs, &empty);
        more |= !empty;
      }
    }
  }
  if (failed_.size() != failedBefore) Rebuild();
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
  return more ? 1 : 0;
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

void Engine::Forward(UdpSender& sender, const core::Network& net, const struct virtio_net_hdr& hdr, uint8_t* tail,
                     uint8_t* frame, size_t flen, uint32_t* segLens, int64_t nowMs, std::vector<UsedKey>& used,
                     LocalCounters& c) {
  const size_t maxUntagged = kEthBytes + net.mtuBytes;
  // Every check of the frame itself (the core's, then the split's) comes
  // before the lookup: a frame that is not sent must not mark a
  // forwarding entry used.
  const int drop = core::TxFrameDrop(hdr, frame, flen, maxUntagged, net.allowVlan);
  if (drop >= 0) {
    c.NetDrop(net.slot, drop, drop == kTxVlanTagged ? FramesIn(hdr, flen) : 1);
    size_t replyBytes = 0;
    if (drop == kTxOversize && hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE &&
        core::PmtuReply(*net.icmpBudget, net.mtuBytes, frame, flen, nowMs, &replyBytes) == core::kPmtuReplied) {
      WriteReply(net, frame, replyBytes, kIcmpTooBigSent, c);
    }
    return;
  }
  if (net.suppress && hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    size_t replyBytes = 0;
    const core::SuppressVerdict v = core::SuppressReply(ctx_->neighbours, net.vni, frame, flen, maxUntagged, &replyBytes);
    if (v != core::kNotSuppressed) return WriteReply(net, frame, replyBytes, v == core::kArpReplied ? kArpSuppressed : kNdSuppressed, c);
  }
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
      return c.NetDrop(net.slot, segs == offload::kSplitMalformed || segs == offload::kSplitTooBig ? kTxOversize : kTxQueueFull);
    }
    c.v[kTxTsoFrames]++;
  }
  core::TxDests to;
  bool usedDue = false;
  core::TxDestinations(*ctx_, net.vni, frame, nowMs, kUsedReportIntervalMs, used.size() < kMaxUsedPerReport ? &usedDue : nullptr,
                       &to);
  if (usedDue) used.push_back(UsedKey{net.vni, to.flooded ? 0 : MacAt(frame)});
  sender.SetSocket(core::FlowSlot(core::FlowHash(frame, flen)));
  const Vtep* dests = to.dests;
  const size_t ndest = to.count;
  if (ndest == 0) return c.NetDrop(net.slot, kTxNoDestination, static_cast<uint64_t>(segs));
  sender.SetTos(core::OuterTos(envelopeTos_, frame, flen));  // a super-frame's segments share the inner header
  if (gso) {
    const size_t stride = kVxlanHeaderBytes + layout.hdrLen;
    for (int s = 0; s < segs; s++) WriteVxlanHeader(out + s * stride, net.vni);
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
  WriteVxlanHeader(tail, net.vni);
  sender.Commit(frame + flen);
  for (size_t d = 0; d < ndest; d++) {
    sender.MakeRoom(frame + flen);
    sender.Add(dests[d], tail, kVxlanHeaderBytes + flen);
  }
}

void Engine::WriteReply(const core::Network& net, const uint8_t* frame, size_t bytes, int event, LocalCounters& c) {
  const struct virtio_net_hdr none = {};
  struct iovec iov[2] = {{const_cast<struct virtio_net_hdr*>(&none), kVnetHdrBytes}, {const_cast<uint8_t*>(frame), bytes}};
  ssize_t r;
  do {
    r = ::writev(TapFd(net), iov, 2);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return c.NetDrop(net.slot, core::RxTapWriteDrop(errno));
  c.Net(net.slot)[kNetEventBase + event]++;
}

void Engine::WriteVxlanHeader(uint8_t* p, uint32_t vni) {
  p[0] = kVxlanFlagI;
  p[1] = p[2] = p[3] = 0;
  p[4] = static_cast<uint8_t>(vni >> 16);
  p[5] = static_cast<uint8_t>(vni >> 8);
  p[6] = static_cast<uint8_t>(vni);
  p[7] = 0;
}

}  // namespace engine
}  // namespace vxland
