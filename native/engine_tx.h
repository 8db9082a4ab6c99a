// The engine's tx worker (TAP -> UDP): frames read from every network's TAP,
// each through the packet core (core_tx.h), sent as VXLAN datagrams in
// batches.
#pragma once

#include <poll.h>

#include "engine_core.h"

namespace vxland {
namespace engine {

/** The TAP -> UDP direction: its send batch, reports and counters. Owned
 *  by one thread at a time; Step() blocks only while the socket has no
 *  room (UdpSender, which also watches the stop eventfd). */
class Engine::TxWorker {
 public:
  explicit TxWorker(Engine* e);

  /** The TAP fds to poll for POLLIN (as of the last Refresh). */
  const std::vector<int>& fds() const { return fds_; }

  /** Picks up a changed network table (letting go of removed TAPs). */
  void Refresh();

  /** Up to kTxReadsPerWake TAP reads over all TAPs, sent as one batch.
   *  Returns 1 when a TAP may hold more, 0 when they were emptied, -1 after
   *  a fatal error (already reported). */
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

  /** Reads network net's TAP until it is empty or budget reads were made;
   *  returns the reads, or -1 after a fatal error. */
  int ReadTap(const core::Network& net, int budget, int64_t wakeMs, bool* empty);

  Engine* e_;
  core::NetworkView view_;
  std::vector<const core::Network*> nets_;  // into view_'s table
  std::vector<int> fds_;
  std::vector<struct pollfd> ready_;
  size_t nextNet_ = 0;  // round robin: which TAP is read first
  LocalCounters c_;
  VtepTally tally_;
  UdpSender sender_;
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
