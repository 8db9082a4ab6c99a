// The engine's two packet threads (engine_sched.cc) and who runs the tx worker.
//
// While traffic is light the rx thread runs both workers: a packet then
// costs one thread wake-up on each host instead of two (the TAP write
// that delivers a request queues the reply, which the same thread reads
// and sends without sleeping), and a ping through two vxland hosts is
// about 40 us faster on a 2-CPU VM. When the rx thread stays busy it
// hands the tx worker to the tx thread, so heavy traffic uses two CPUs;
// the tx thread hands it back once it sleeps most of the time again.
// While it runs both workers, the rx thread also busy-polls for a moment
// after a packet that ended a long sleep (kBusyPollNs below).
// A worker is used by one thread at a time: only its owner changes
// txOwner_ (release), and the other thread takes it up after reading the
// new owner (acquire).
#pragma once

#include <cstdint>

namespace vxland {
namespace engine {

/** The rx thread measures its load over windows of this length... */
constexpr int64_t kLoadWindowNs = 10 * 1000 * 1000;
/** ...and hands the tx worker to the tx thread when it slept for less than
 *  this share of a window (percent). */
constexpr int64_t kSplitBelowIdlePercent = 20;
/** The tx thread hands the tx worker back when, over a window this long,
 *  it slept for at least kJoinAboveIdlePercent of the time. */
constexpr int64_t kJoinWindowNs = 50 * 1000 * 1000;
constexpr int64_t kJoinAboveIdlePercent = 95;
/** After a wake-up that ended a sleep of at least kBusyPollAfterSleepNs
 *  (an isolated packet: a request, or the answer to one), the rx thread,
 *  while it runs both workers, polls without sleeping for kBusyPollNs,
 *  yielding its CPU to any runnable task between polls. The answer to
 *  what it just sent usually comes back within that time and then costs
 *  no wake-up: on a VM an idle vCPU halts, and waking a thread on one
 *  took 30-70 us on the bench machine, several times the work of a packet
 *  (BENCHMARKS.md, "Busy polling after an isolated packet"). Bounded: at
 *  most kBusyPollNs per kBusyPollAfterSleepNs slept (under a sixth of a
 *  CPU), never between the packets of a stream (their gaps are shorter),
 *  and counted as sleep by the load windows above. */
constexpr int64_t kBusyPollNs = 200 * 1000;
constexpr int64_t kBusyPollAfterSleepNs = 1000 * 1000;
enum TxOwner : int { kTxOnRxThread = 0, kTxOnTxThread = 1 };

}  // namespace engine
}  // namespace vxland
