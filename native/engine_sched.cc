#include "engine_sched.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "engine_core.h"
#include "engine_rx.h"
#include "engine_tx.h"

namespace vxland {
namespace engine {

void Engine::Signal(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof(one));
}

void Engine::Drain(int fd) {
  uint64_t n;
  (void)!::read(fd, &n, sizeof(n));
}

void Engine::RxThread() {
  RxWorker* rx = rxWorker_.get();
  TxWorker* tx = txWorker_.get();
  int64_t windowStartNs = MonotonicNs();
  int64_t sleptNs = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    bool txHere = txOwner_.load(std::memory_order_acquire) == kTxOnRxThread;
    int r = rx->Step();
    if (r < 0) return;
    bool more = r > 0;
    if (txHere) {
      r = tx->Step();
      if (r < 0) return;
      more |= r > 0;
    }
    const int64_t nowNs = MonotonicNs();
    if (nowNs - windowStartNs >= kLoadWindowNs) {
      // Asleep for less than kSplitBelowIdlePercent of the window: the
      // tx worker gets a thread of its own.
      if (txHere && sleptNs * 100 < (nowNs - windowStartNs) * kSplitBelowIdlePercent) {
        txOwner_.store(kTxOnTxThread, std::memory_order_release);
        Signal(handToTxFd_);
        counters_[kTxWorkerSplits].fetch_add(1, std::memory_order_relaxed);
        txHere = false;
      }
      windowStartNs = nowNs;
      sleptNs = 0;
    }
    if (more) continue;
    int timeout = rx->Idle(nowNs / 1000000);
    struct pollfd p[4] = {{udp_.fd, POLLIN, 0}, {wakeFd_, POLLIN, 0}, {handToRxFd_, POLLIN, 0}, {tapFd_, POLLIN, 0}};
    if (txHere) timeout = std::min(timeout, tx->Idle(nowNs / 1000000));
    const int pr = ::poll(p, txHere ? 4 : 3, timeout);
    if (pr < 0 && errno != EINTR) return Fatal(errno, "poll");
    sleptNs += MonotonicNs() - nowNs;
    if (p[1].revents & POLLIN) return;
    if (p[0].revents & POLLERR) rx->OnPollError();
    if (p[2].revents & POLLIN) Drain(handToRxFd_);
    // TAP POLLERR/POLLHUP/POLLNVAL: the tx worker's next read learns the errno.
  }
}

void Engine::TxThread() {
  TxWorker* tx = txWorker_.get();
  int64_t windowStartNs = 0;
  int64_t sleptNs = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    if (txOwner_.load(std::memory_order_acquire) != kTxOnTxThread) {
      struct pollfd p[2] = {{handToTxFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
      const int pr = ::poll(p, 2, kIdlePollMs);
      if (pr < 0 && errno != EINTR) return Fatal(errno, "poll");
      if (p[1].revents & POLLIN) return;
      if (p[0].revents & POLLIN) Drain(handToTxFd_);
      windowStartNs = MonotonicNs();
      sleptNs = 0;
      continue;
    }
    const int r = tx->Step();
    if (r < 0) return;
    const int64_t nowNs = MonotonicNs();
    if (nowNs - windowStartNs >= kJoinWindowNs) {
      // Asleep for most of the window: the rx thread can carry the tx
      // worker again.
      if (sleptNs * 100 >= (nowNs - windowStartNs) * kJoinAboveIdlePercent) {
        txOwner_.store(kTxOnRxThread, std::memory_order_release);
        Signal(handToRxFd_);
        counters_[kTxWorkerJoins].fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      windowStartNs = nowNs;
      sleptNs = 0;
    }
    if (r > 0) continue;
    const int untilWindowEndMs = static_cast<int>((windowStartNs + kJoinWindowNs - nowNs) / 1000000) + 1;
    struct pollfd p[2] = {{tapFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    const int pr = ::poll(p, 2, std::min(tx->Idle(nowNs / 1000000), untilWindowEndMs));
    if (pr < 0 && errno != EINTR) return Fatal(errno, "poll");
    sleptNs += MonotonicNs() - nowNs;
    if (p[1].revents & POLLIN) return;
    // TAP POLLERR/POLLHUP/POLLNVAL: the next read learns the errno.
  }
}

}  // namespace engine
}  // namespace vxland
