// The engine's tx worker (TAP -> UDP): frames read from the TAP, each through
// the packet core (core_tx.h), sent as VXLAN datagrams in batches.
#pragma once

#include "engine_core.h"

namespace vxland {
namespace engine {

/** The TAP -> UDP direction: its send batch, reports and counters. Owned
 *  by one thread at a time; Step() blocks only while the socket has no
 *  room (UdpSender, which also watches the stop eventfd). */
class Engine::TxWorker {
 public:
  explicit TxWorker(Engine* e);

  int fd() const { return e_->tapFd_; }

  /** Up to kTxReadsPerWake TAP reads, sent as one batch. Returns 1 when
   *  the TAP may hold more, 0 when it was emptied, -1 after a fatal error
   *  (already reported). */
  int Step();

  /** Sends the reports that are due; returns how long the thread may
   *  sleep before the next one is. */
  int Idle(int64_t nowMs);

  /** The threads are gone: what is queued goes out, counts too. */
  void Finish();

 private:
  // Used entries go out in a pause of traffic, or once they waited
  // kUsedMaxDelayMs; final = the engine is stopping.
  void FlushUsed(int64_t nowMs, bool final);

  Engine* e_;
  LocalCounters c_;
  VtepTally tally_;
  UdpSender sender_;
  const size_t maxUntagged_;
  struct virtio_net_hdr hdr_;
  uint32_t segLens_[kMaxSegs];
  std::vector<UsedKey> used_;
  int64_t lastTrafficMs_;  // the last batch read from the TAP
  int64_t usedSinceMs_;    // the oldest unsent used entry
  bool idle_ = true;         // as in RxWorker
  int64_t busySinceMs_ = 0;
};

}  // namespace engine
}  // namespace vxland
