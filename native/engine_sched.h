// The engine's two packet threads (engine_sched.cc) and who runs the tx worker.
//
// While traffic is light the rx thread runs both workers: a packet then
// costs one thread wake-up on each host instead of two (the TAP write
// that delivers a request queues the reply, which the same thread reads
// and sends without sleeping), and a ping through two vxland hosts is
// about 40 us faster on a 2-CPU VM. When the rx thread stays busy it
// hands the tx worker to the tx thread, so heavy traffic uses two CPUs;
// the tx thread hands it back once it sleeps most of the time again.
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
enum TxOwner : int { kTxOnRxThread = 0, kTxOnTxThread = 1 };

}  // namespace engine
}  // namespace vxland
