#include "engine_sched.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

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

int Engine::BusyPoll(struct pollfd* fds, size_t n, int64_t untilNs) {
  for (;;) {
    const int pr = ::poll(fds, n, 0);
    if (pr != 0 || MonotonicNs() >= untilNs) return pr;
    sched_yield();
  }
}

// Named so that `top -H`, `ps -L` and perf tell the engine's threads from
// Node's own (the name is at most 15 characters).
void Engine::RxThread() {
  pthread_setname_np(pthread_self(), "vxland-rx");
  RxWorker* rx = rxWorker_.get();
  TxWorker* tx = txWorker_.get();
  constexpr size_t kFixed = 4;
  std::vector<struct pollfd> p;
  p.reserve(kFixed + kMaxNetworks);
  int64_t windowStartNs = MonotonicNs();
  int64_t sleptNs = 0;
  int64_t lastWakeNs = 0;       // when poll() last returned with an fd ready
  int64_t lastSleepNs = 0;      // how long that poll() had waited
  while (!stopping_.load(std::memory_order_relaxed)) {
    bool txHere = txOwner_.load(std::memory_order_acquire) == kTxOnRxThread;
    int r = rx->Step();
    if (r < 0) return;
    bool more = r > 0;
    if (txHere) {
      more |= tx->Step() > 0;
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
    // The fixed fds, then (while it runs the tx worker) every TAP.
    p.resize(kFixed);
    p[0] = {udp_.fd, POLLIN, 0};
    p[1] = {wakeFd_, POLLIN, 0};
    p[2] = {handToRxFd_, POLLIN, 0};
    p[3] = {reconfigRxFd_, POLLIN, 0};
    // The send sockets' errors, through their epoll set.
    if (sendErrorsFd_ >= 0) p.push_back({sendErrorsFd_, POLLIN, 0});
    if (txHere) {
      timeout = std::min(timeout, tx->Idle(nowNs / 1000000));
      for (int fd : tx->fds()) p.push_back({fd, POLLIN, 0});
    }
    int pr = 0;
    if (txHere && lastSleepNs >= kBusyPollAfterSleepNs && nowNs < lastWakeNs + kBusyPollNs) {
      counters_[kRxBusyPolls].fetch_add(1, std::memory_order_relaxed);
      pr = BusyPoll(p.data(), p.size(), lastWakeNs + kBusyPollNs);
      if (pr > 0) counters_[kRxBusyPollHits].fetch_add(1, std::memory_order_relaxed);
    }
    if (pr == 0) pr = ::poll(p.data(), p.size(), timeout);
    if (pr < 0 && errno != EINTR) return Fatal(errno, "poll");
    const int64_t wokeNs = MonotonicNs();
    sleptNs += wokeNs - nowNs;
    if (pr > 0) {
      lastSleepNs = wokeNs - nowNs;
      lastWakeNs = wokeNs;
    }
    if (p[1].revents & POLLIN) return;
    const bool sendError = sendErrorsFd_ >= 0 && (p[kFixed].revents & POLLIN) != 0;
    if ((p[0].revents & POLLERR) || sendError) rx->OnPollError();
    if (p[2].revents & POLLIN) Drain(handToRxFd_);
    if (p[3].revents & POLLIN) {
      Drain(reconfigRxFd_);
      rx->Refresh();
      if (txOwner_.load(std::memory_order_acquire) == kTxOnRxThread) tx->Refresh();
    }
    // TAP POLLERR/POLLHUP/POLLNVAL: the tx worker's next read learns the errno.
  }
}

void Engine::TxThread() {
  pthread_setname_np(pthread_self(), "vxland-tx");
  TxWorker* tx = txWorker_.get();
  constexpr size_t kFixed = 2;
  std::vector<struct pollfd> p;
  p.reserve(kFixed + kMaxNetworks);
  int64_t windowStartNs = 0;
  int64_t sleptNs = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    if (txOwner_.load(std::memory_order_acquire) != kTxOnTxThread) {
      // The rx thread runs the tx worker (and refreshes it); this one only
      // waits for the hand-over. A reconfiguration meant for it is moot.
      struct pollfd q[3] = {{handToTxFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}, {reconfigTxFd_, POLLIN, 0}};
      const int pr = ::poll(q, 3, kIdlePollMs);
      if (pr < 0 && errno != EINTR) return Fatal(errno, "poll");
      if (q[1].revents & POLLIN) return;
      if (q[2].revents & POLLIN) Drain(reconfigTxFd_);
      if (q[0].revents & POLLIN) Drain(handToTxFd_);
      windowStartNs = MonotonicNs();
      sleptNs = 0;
      continue;
    }
    const int r = tx->Step();
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
    p.resize(kFixed);
    p[0] = {wakeFd_, POLLIN, 0};
    p[1] = {reconfigTxFd_, POLLIN, 0};
    for (int fd : tx->fds()) p.push_back({fd, POLLIN, 0});
    const int pr = ::poll(p.data(), p.size(), std::min(tx->Idle(nowNs / 1000000), untilWindowEndMs));
    if (pr < 0 && errno != EINTR) return Fatal(errno, "poll");
    sleptNs += MonotonicNs() - nowNs;
    if (p[0].revents & POLLIN) return;
    if (p[1].revents & POLLIN) {
      Drain(reconfigTxFd_);
      tx->Refresh();
    }
    // TAP POLLERR/POLLHUP/POLLNVAL: the next read learns the errno.
  }
}

}  // namespace engine
}  // namespace vxland
