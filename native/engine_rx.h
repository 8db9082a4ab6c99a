// The engine's rx worker (UDP -> TAP): batches from the socket, each datagram
// through the packet core (core_rx.h), frames written to the TAP of the
// network the core picked.
#pragma once

#include "engine_core.h"

namespace vxland {
namespace engine {

/** The UDP -> TAP direction: its buffers, reports and counters. Owned by
 *  one thread at a time; Step() and Idle() never block. */
class Engine::RxWorker {
 public:
  explicit RxWorker(Engine* e);

  int fd() const { return e_->udp_.fd; }

  /** One recvmmsg and what it brought, written to the TAP. Returns 1 when
   *  the socket may hold more, 0 when it was empty, -1 after a fatal
   *  error (already reported). */
  int Step();

  /** Sends the reports that are due; returns how long the thread may
   *  sleep before the next one is. */
  int Idle(int64_t nowMs);

  /** Picks up a changed network table (letting go of removed TAPs). */
  void Refresh() { reader_.BeginBatch(); }

  /** poll() saw ICMP errors queued: POLLERR on the receive socket, or the
   *  send sockets' epoll set readable. Drains both. */
  void OnPollError() { DrainErrors(NowMs()); }

  /** The threads are gone: everything counted goes out. */
  void Finish();

 private:
  bool Unreported() const { return pending_.empty() && refused_.empty() && foreign_.empty(); }

  void Report(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs);

  // Every datagram with a foreign VNI is counted (as the dgram path's
  // Stats.foreignVni does), not only the first of a second.
  void CountForeign(uint32_t vni, const Vtep& from);

  void Refuse(const Vtep& from, uint32_t vni, uint64_t n);

  // Learning and refusals go out in a pause of traffic, or once they
  // waited kObservationMaxDelayMs; final = the engine is stopping.
  void FlushReports(int64_t nowMs, bool final);

  // An ICMP error (e.g. port unreachable) about a datagram the tx side
  // sent is a send error of the VTEP it went to; it arrives here, on the
  // socket's error queue (the datagram was counted as sent too).
  void DrainErrors(int64_t nowMs);

  void Handle(int n);

  Engine* e_;
  UdpReceiver rx_;
  LocalCounters c_;
  VtepTally tally_;
  std::vector<offload::GroFrame> frames_;
  std::vector<VtepCounts*> frameVtep_;
  std::vector<uint32_t> next_;
  std::vector<offload::GroWrite> writes_;
  std::vector<struct iovec> iov_;
  std::vector<Observation> pending_;
  std::vector<Refused> refused_;
  std::vector<Foreign> foreign_;
  std::vector<Vtep> errorDests_;
  int64_t lastTrafficMs_;   // the last batch received
  int64_t pendingSinceMs_;  // the oldest unsent observation or refusal
  int64_t lastErrorDrainMs_;
  bool idle_ = true;         // Idle() ran since the last traffic
  int64_t busySinceMs_ = 0;  // traffic without a pause since then
  core::RxReader reader_;
};

}  // namespace engine
}  // namespace vxland
