#include "engine_rx.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

namespace vxland {
namespace engine {

Engine::RxWorker::RxWorker(Engine* e) : e_(e), rx_(e->udp_.fd, e->udp_.gro), reader_(e->ctx_.get()) {
  frames_.resize(kRxMaxFrames);
  frameVtep_.resize(kRxMaxFrames);
  next_.resize(kRxMaxFrames);
  writes_.resize(kRxMaxFrames);
  iov_.resize(kMaxSegs + 2);
  pending_.reserve(1024);
  refused_.reserve(kMaxRefusedPerReport);
  errorDests_.resize(kErrorsPerDrain);
  lastTrafficMs_ = pendingSinceMs_ = lastErrorDrainMs_ = NowMs();
}

int Engine::RxWorker::Step() {
  const int n = rx_.Receive();
  if (n < 0) {
    // Transient socket errors (a pending ICMP error) are not fatal; a
    // closed or broken socket is.
    if (-n == EBADF || -n == ENOTSOCK || -n == EINVAL || -n == EFAULT) {
      e_->Fatal(-n, "recvmmsg");
      return -1;
    }
    DrainErrors(NowMs());
    return 1;
  }
  if (n == 0) return 0;
  Handle(n);
  return 1;
}

int Engine::RxWorker::Idle(int64_t nowMs) {
  idle_ = true;
  e_->MergeVtepCounts(tally_);
  FlushReports(nowMs, false);
  if (Unreported()) return kIdlePollMs;
  const int64_t dueMs = std::min(lastTrafficMs_ + kQuietFlushMs, pendingSinceMs_ + kObservationMaxDelayMs);
  return static_cast<int>(std::max<int64_t>(1, dueMs - nowMs));
}

void Engine::RxWorker::Finish() {
  FlushReports(NowMs(), true);
  e_->MergeVtepCounts(tally_);
  e_->Publish(c_);
}

void Engine::RxWorker::Report(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs) {
  if (Unreported()) pendingSinceMs_ = nowMs;
  pending_.push_back(Observation{vni, mac, from});
}

void Engine::RxWorker::CountForeign(uint32_t vni, const Vtep& from) {
  for (Foreign& f : foreign_) {
    if (f.vni == vni && f.from.SameIp(from)) {
      f.count++;
      return;
    }
  }
  if (foreign_.size() >= kMaxForeignPerReport) return;
  if (Unreported()) pendingSinceMs_ = lastTrafficMs_;
  foreign_.push_back(Foreign{from, vni, 1});
}

void Engine::RxWorker::Refuse(const Vtep& from, uint32_t vni, uint64_t n) {
  for (Refused& r : refused_) {
    if (r.vni == vni && r.from.SameIp(from)) {
      r.count += n;
      return;
    }
  }
  if (refused_.size() >= kMaxRefusedPerReport) return;
  if (Unreported()) pendingSinceMs_ = lastTrafficMs_;
  refused_.push_back(Refused{from, vni, n});
}

void Engine::RxWorker::FlushReports(int64_t nowMs, bool final) {
  if (Unreported()) return;
  if (!final && nowMs - lastTrafficMs_ < kQuietFlushMs && nowMs - pendingSinceMs_ < kObservationMaxDelayMs) return;
  auto* ev = new EngineEvent{EngineEvent::kObservations, {}, "", "", "", 0, {}, {}, {}};
  ev->obs = std::move(pending_);
  ev->refused = std::move(refused_);
  ev->foreign = std::move(foreign_);
  foreign_ = std::vector<Foreign>();
  pending_ = std::vector<Observation>();
  pending_.reserve(1024);
  refused_ = std::vector<Refused>();
  refused_.reserve(kMaxRefusedPerReport);
  e_->Post(ev);
}

void Engine::RxWorker::DrainErrors(int64_t nowMs) {
  lastErrorDrainMs_ = nowMs;
  int ne = rx_.ReceiveErrors(errorDests_.data(), kErrorsPerDrain);
  // Sends leave from the send sockets: their errors queue there.
  for (const UdpSocket& s : e_->sendSockets_) {
    ne += UdpReceiver::ReceiveSendErrors(s.fd, errorDests_.data() + ne, kErrorsPerDrain - ne);
  }
  if (ne == 0) return;
  for (int i = 0; i < ne; i++) tally_.At(errorDests_[i], kHostNet)->drops++;
  c_.Drop(kTxSendError, static_cast<uint64_t>(ne));
  e_->Publish(c_);
}

void Engine::RxWorker::Handle(int n) {
  LocalCounters& c = c_;
  c.v[kRxRecvCalls]++;
  const int64_t nowMs = NowMs();
  lastTrafficMs_ = nowMs;
  if (idle_) {
    idle_ = false;
    busySinceMs_ = nowMs;
  }
  reader_.BeginBatch();
  uint32_t nf = 0;
  // Frames go to the TAP in runs of one network (a coalesced write never
  // mixes networks).
  const core::Network* runNet = nullptr;
  for (int m = 0; m < n; m++) {
    Vtep from;
    rx_.From(m, &from);
    uint8_t* data = rx_.Data(m);
    const offload::RxDatagrams dgrams = offload::SplitRxMessage(rx_.Len(m), rx_.SegBytes(m));
    const int tos = rx_.Tos(m);  // UDP_GRO only merges datagrams of one outer TOS
    if (dgrams.count > 1) c.v[kRxGroDatagrams]++;
    c.v[kRxDatagrams] += dgrams.count;
    for (size_t i = 0; i < dgrams.count; i++) {
      core::RxResult r;
      reader_.Classify(data + dgrams.Offset(i), dgrams.Bytes(i), from, nowMs, tos, &r);
      // Every datagram of a UDP_GRO message comes from the same sender
      // (the tally caches the last lookup).
      VtepCounts* vc = tally_.At(from, r.net == nullptr ? kHostNet : r.net->slot + 1);
      vc->lastRxMs = nowMs;
      if (r.drop < 0 && r.net != runNet && nf > 0) {
        e_->WriteTap(*runNet, frames_.data(), frameVtep_.data(), nf, next_.data(), writes_.data(), iov_.data(), c);
        nf = 0;
      }
      if (r.drop < 0 && nf == kRxMaxFrames) r.drop = kRxTapBusy;  // cannot happen with UDP_GRO's 64 datagrams per message; counted if it does
      if (r.drop >= 0) {
        if (r.drop == kRxWrongVni) CountForeign(r.vni, from);
        if (r.drop == kRxSourceNotAllowed) Refuse(from, r.vni, 1);
        if (r.net == nullptr) c.Drop(r.drop);
        else c.NetDrop(r.net->slot, r.drop);
        vc->drops++;
        continue;
      }
      if (r.learn) Report(r.vni, r.srcMac, from, nowMs);
      runNet = r.net;
      frameVtep_[nf] = vc;
      frames_[nf++] = offload::GroFrame{r.frame, static_cast<uint32_t>(r.frameBytes)};
    }
  }
  if (nf > 0) e_->WriteTap(*runNet, frames_.data(), frameVtep_.data(), nf, next_.data(), writes_.data(), iov_.data(), c);
  e_->Publish(c);
  // Counts and the error queue wait for Idle(), off the packet's way,
  // unless traffic never lets up.
  if (nowMs - busySinceMs_ >= kBusyHousekeepingMs) {
    if (nowMs - lastErrorDrainMs_ >= kErrorDrainMs) DrainErrors(nowMs);
    e_->MergeVtepCounts(tally_);
  }
  FlushReports(nowMs, false);
}

void Engine::WriteTap(const core::Network& net, offload::GroFrame* frames, VtepCounts* const* frameVtep, uint32_t nf,
                      uint32_t* next, offload::GroWrite* writes, struct iovec* iov, LocalCounters& c) {
  const int fd = TapFd(net);
  uint64_t* nc = c.Net(net.slot);
  const uint32_t nw = coalesce_ ? offload::GroPlan(frames, nf, next, writes, kMaxSegs, TapTakesUso(net)) : offload::PlanSingles(frames, nf, writes);
  for (uint32_t w = 0; w < nw; w++) {
    const offload::GroWrite& wr = writes[w];
    iov[0].iov_base = const_cast<struct virtio_net_hdr*>(&wr.hdr);
    iov[0].iov_len = kVnetHdrBytes;
    uint64_t innerBytes;
    offload::GroWriteIov(frames, next, wr, iov + 1, &innerBytes);
    ssize_t r;
    do {
      r = ::writev(fd, iov, static_cast<int>(wr.count + 1));
    } while (r < 0 && errno == EINTR);
    c.v[kRxTapWrites]++;
    const int reason = r < 0 ? core::RxTapWriteDrop(errno) : -1;
    uint32_t k = wr.first;
    for (uint32_t s = 0; s < wr.count; s++, k = next[k]) {
      VtepCounts* vc = frameVtep[k];
      if (reason >= 0) {
        vc->drops++;
      } else {
        vc->rxPackets++;
        vc->rxBytes += frames[k].len;
      }
    }
    if (reason >= 0) {
      nc[kNetDropBase + reason] += wr.count;
      continue;
    }
    if (wr.count > 1) c.v[kRxCoalescedWrites]++;
    c.v[kRxPackets] += wr.count;
    c.v[kRxBytes] += innerBytes;
    nc[kNetRxPackets] += wr.count;
    nc[kNetRxBytes] += innerBytes;
  }
}

}  // namespace engine
}  // namespace vxland
