// The native data path engine: packet work off the JS event loop, in two
// workers (rx: UDP -> TAP, tx: TAP -> UDP) run by one thread while traffic
// is light and by two under load (engine_sched.h says when). JS keeps configuration, the forwarding
// table and its rules (src/fdb/fdb.ts), logging and control; the engine holds
// a packet core context (core_rx.h: a mirror of the table, the source
// policy), runs the core's per-packet rules (core_rx.h, core_tx.h) and
// reports what it saw.
//
// One engine per host: one UDP socket and its two workers serve every
// network (any number of TAPs, added and removed while traffic flows; the
// tx worker polls all of them, the rx worker writes each frame to the TAP
// of the network the core classified it into).
//
// JS surface added by InitEngine (src/io/engine.ts wraps it):
//   new NativeEngine(options, onEvent)
//     options: { local, port, dstPort, offload?, gso?, gro?, coalesce?
//                (default true), socketBufferBytes?, ttl? (1..255, default
//                64), tos? (0..255 or -1 = inherit, default 0), df? (bool,
//                IPv4 only, default false) }
//     The UDP socket is opened and bound to local:port here; dstPort 0 =
//     the port bound. Throws an Error with code/errno/syscall (errors.h).
//   addNetwork({ vni, mtu, ownMac: Buffer(6), tapFd, standIn?, name? }) -> slot
//     (-1: the VNI is served already). tapFd must come from tapOpen(name,
//     { vnetHdr: true }), or with standIn: true be a non-blocking
//     SOCK_SEQPACKET socket carrying what a TAP with IFF_VNET_HDR carries (a
//     virtio_net_hdr, then one frame, per message; no TUN ioctls). The
//     engine owns the fd once this returns (the caller's still if it
//     throws) and closes it after removeNetwork or stop. slot indexes
//     netCounters() and takeVtepCounts(). name (the device's) goes into
//     the message of a 'tapFailed' error.
//   removeNetwork(vni) -> bool: stops carrying it, drops its mirror entries;
//     the TAP fd is closed once no worker holds it any more (while running:
//     a 'tapClosed' event follows; before start: at once).
//   start()  starts both threads; the engine keeps the process alive until
//            stop(). Throws if not idle.
//   stop()   wakes and joins the threads, closes every TAP fd (the devices
//            disappear) and the socket, releases the event callback.
//            Idempotent.
//   fdbSet, fdbDelete, setFloodList, setSourcePolicy, setAllowVlan,
//       setSuppress, neighSet, neighDelete: the core context's setters
//       (core_binding.h CoreSetters)
//   counters(out: Float64Array)   fills counterNames.length host values
//   netCounters(slot, out: Float64Array)  fills the network's
//       netCounterCount values: rxPackets, rxBytes, txPackets, txBytes, then
//       drops in DropReason order, then events in NetEvent order
//       (native/net_events.h: ARP/ND suppression)
//   takeVtepCounts() -> [{slot (-1 = host-level), vtep (null = past the
//                         table's bound), rxPackets, rxBytes, txPackets,
//                         txBytes, drops, lastRxAgoMs}]
//       per-VTEP counts since the last call (ICMP errors about sent
//       datagrams, IP_RECVERR, count as host-level drops of the VTEP they
//       were sent to)
//   info() -> { port, offload, gso, gro, coalesce, rcvbufBytes, sndbufBytes,
//               state }
//   NativeEngine.counterNames: string[]  (index order; drops are
//                                          "drop:<reason name>", in DropReason order)
//   NativeEngine.netCounterCount: number
//   engineDropReasonNames: string[]  (native/drop_reasons.h, in order)
//   engineNetEventNames: string[]  (native/net_events.h, in order)
//   engineLimits: { MtuMaxBytes, ... }  (native/limits.h)
// onEvent(event) runs on the JS thread with one of
//   { type: 'observations', learn: [{vni, mac, vtep}], foreign: [{vni, from, count}],
//     refused: [{vni, from, count}], used: [{vni, mac}] }
//       in the next 5 ms pause of traffic, learning at most 20 ms late
//       (deduplicated: a source MAC at most once a second); used = mirror
//       entries the tx side sent to (mac 0 = the flood list), each at most
//       once a second, at most 100 ms late. Nothing is posted per packet:
//       each post wakes the JS thread, which on a small host delays packets.
//   { type: 'tapClosed', vni }  a removed network's TAP fd is closed
//   { type: 'tapFailed', vni, token, error }  once per TAP (token: addNetwork's): reading it failed (EOF
//       = EBADFD: the device was deleted); the workers read it no more and
//       go on with the other networks; JS removes the network (or stops)
//   { type: 'fallback', feature: 'tso'|'gso'|'gro', errno, message }  once each
//   { type: 'fatal', error }  once; error has code/errno/syscall
#pragma once

#include <napi.h>
#include <poll.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core_binding.h"
#include "core_rx.h"
#include "engine_fdb.h"
#include "engine_io.h"
#include "engine_offload.h"
#include "engine_sched.h"

namespace vxland {

void InitEngine(Napi::Env env, Napi::Object exports);

// What the engine's files share: its constants, the events it posts, and
// the Engine class (the binding in engine_binding.cc, its workers in
// engine_rx.{h,cc} and engine_tx.{h,cc}, its threads in engine_sched.cc).
namespace engine {

using offload::IsTagged;
using offload::kVnetHdrBytes;
using offload::kVxlanFlagI;
using offload::kVxlanHeaderBytes;
using offload::MacAt;

constexpr size_t kEthBytes = offload::kEthHeaderBytes;
/** Poll timeout of both threads when idle: bounds how long a missed wake-up
 *  could delay stop(). */
constexpr int kIdlePollMs = 100;
/** What the threads tell JS (learning, refusals, used entries) waits for
 *  a pause in traffic this long: each post wakes the JS thread, which on a
 *  small host would otherwise compete with the packets in flight... */
constexpr int64_t kQuietFlushMs = 5;
/** ...but observations wait at most this long (learning must not lag)... */
constexpr int64_t kObservationMaxDelayMs = 20;
/** A thread busy without a pause for this long merges its per-VTEP counts
 *  and drains the error queue between batches. */
constexpr int64_t kBusyHousekeepingMs = 5;
/** TAP reads per wake-up before the send batch is flushed. */
constexpr int kTxReadsPerWake = 64;
/** A TAP read: a 64 KiB GSO super-frame plus Ethernet and tag. */
constexpr size_t kMaxTapFrameBytes = 65536 + 64;
/** Segments per TSO super-frame and per coalesced TAP write at most. */
constexpr int kMaxSegs = 64;
/** Room a split needs beyond the frame: per segment a VXLAN header and a
 *  copy of the headers (Ethernet + tag + IPv6 + TCP with options <= 138). */
constexpr size_t kSplitHeaderBytes = kMaxSegs * (kVxlanHeaderBytes + 160);
/** Datagrams reserved per TAP read; a frame flooded to more VTEPs than a
 *  batch holds sends the batch and goes on (UdpSender::MakeRoom). */
constexpr size_t kTxDatagramsPerRead = kMaxSegs * 4;
constexpr size_t kRxMaxFrames = UdpReceiver::kMsgs * 64;

inline int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline int64_t NowMs() { return MonotonicNs() / 1000000; }

/** A source MAC offered for learning. */
struct Observation {
  uint32_t vni;
  uint64_t mac;
  Vtep from;
};

/** A forwarding entry the tx thread sent to: (vni, mac), mac 0 = the flood
 *  list of vni (FLOOD_MAC, as the table lists it). */
struct UsedKey {
  uint32_t vni;
  uint64_t mac;
};

/** A sender refused by a network's source policy and how many datagrams it sent. */
struct Refused {
  Vtep from;
  uint32_t vni;
  uint64_t count;
};

/** A sender of datagrams with a VNI not ours, and how many it sent. */
struct Foreign {
  Vtep from;
  uint32_t vni;
  uint64_t count;
};

struct EngineEvent {
  enum Kind { kObservations, kFallback, kFatal, kTapClosed, kTapFailed } kind;
  std::vector<Observation> obs;
  std::string feature;
  std::string message;
  std::string syscall;
  int err = 0;
  std::vector<Refused> refused;
  std::vector<UsedKey> used;
  std::vector<Foreign> foreign;
  /** kTapFailed: the network's VNI (its device's name is in message). */
  uint32_t vni = 0;
  /** kTapFailed: the token addNetwork was given with this TAP (0 if none),
   *  so JS can tell a removed network's TAP from a new one with the same VNI. */
  double token = 0;
};

/** Most refused senders, and foreign-VNI senders, reported per observation
 *  batch (JS keeps no more). */
constexpr size_t kMaxRefusedPerReport = static_cast<size_t>(kMaxRefusedSenders);
constexpr size_t kMaxForeignPerReport = static_cast<size_t>(kMaxForeignVniSenders);
/** ...and used entries this long. */
constexpr int64_t kUsedMaxDelayMs = 100;
/** While datagrams keep arriving (poll() is not reached), the socket's
 *  error queue (ICMP errors about our sends) is drained this often. */
constexpr int64_t kErrorDrainMs = 100;
/** Error-queue entries read per drain at most. */
constexpr int kErrorsPerDrain = 64;
/** An entry the tx thread sends to is reported as used at most this often
 *  (the table's USED column: resolution a second, like the kernel's ageing
 *  granularity matters, not per frame). */
constexpr int64_t kUsedReportIntervalMs = 1000;
/** Used entries per report at most; past it entries are reported in a later
 *  report (their mirror time is not advanced), so nothing is allocated per
 *  packet. */
constexpr size_t kMaxUsedPerReport = 1024;

class Engine;

/** A network's TAP as the workers use it (core::Network::io): the fd is
 *  closed when the last snapshot holding the network lets go of it, on
 *  whichever thread that is, so no worker ever writes to a closed (or
 *  reused) fd. */
struct Tap {
  Engine* engine;
  int fd;
  uint32_t vni;
  /** The device's name, for errors (may be empty). */
  std::string name;
  /** addNetwork's token, echoed in 'tapFailed'. */
  double token;
  /** The TAP took TUN_F_USO4/6: UDP datagrams may be coalesced into its writes. */
  bool uso;
  ~Tap();
};

inline int TapFd(const core::Network& n) { return static_cast<const Tap*>(n.io.get())->fd; }
inline bool TapTakesUso(const core::Network& n) { return static_cast<const Tap*>(n.io.get())->uso; }

class Engine : public Napi::ObjectWrap<Engine>, public core::CoreSetters<Engine> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit Engine(const Napi::CallbackInfo& info);

  core::Context& CoreContext() { return *ctx_; }
  int CoreFamily() const { return family_; }
  uint16_t CorePort() const { return dstPort_; }

  ~Engine() override;

  /** Tap::~Tap: tells JS (while running) that vni's TAP fd is closed. */
  void OnTapClosed(uint32_t vni);

  /** A worker could not read net's TAP: tells JS ('tapFailed'); the caller
   *  stops reading it. */
  void TapFailed(const core::Network& net, int err, const char* syscall);

 private:
  struct Fallback {
    const char* feature;
    int err;
    std::string message;
  };
  enum class State { kIdle, kRunning, kStopped };

  // ---- JS methods (engine_binding.cc) ----

  Napi::Value Start(const Napi::CallbackInfo& info);

  Napi::Value Stop(const Napi::CallbackInfo& info);

  Napi::Value Counters(const Napi::CallbackInfo& info);

  Napi::Value NetCounters(const Napi::CallbackInfo& info);

  Napi::Value AddNetwork(const Napi::CallbackInfo& info);

  Napi::Value RemoveNetwork(const Napi::CallbackInfo& info);

  /** Wakes both threads to pick up a changed network table. */
  void Reconfigure();

  /** The per-VTEP counts since the last call: [{vtep (null = addresses
   *  past the table's bound), rxPackets, rxBytes, txPackets, txBytes, drops,
   *  lastRxAgoMs (-1 = none)}]. */
  Napi::Value TakeVtepCounts(const Napi::CallbackInfo& info);

  Napi::Value Info(const Napi::CallbackInfo& info);

  // ---- lifecycle (engine_binding.cc) ----

  void Shutdown();

  void CloseFds();

  // ---- events, from any thread (engine_binding.cc) ----

  void Post(EngineEvent* ev);

  void Announce(const std::string& feature, int err, const std::string& message);
  /** Announce now when running, else when the engine starts (JS thread only). */
  void AnnounceFallback(const char* feature, int err, const std::string& message);

  void Fatal(int err, const char* syscall);

  static Napi::Value ToJs(Napi::Env env, const EngineEvent& e);

  /** Adds a thread's per-VTEP counts to the engine's (no wake-up: JS
   *  takes them when it reads its counters, takeVtepCounts()). */
  void MergeVtepCounts(VtepTally& tally) {
    if (tally.Empty()) return;
    std::lock_guard<std::mutex> lock(vtepMu_);
    vtepCounts_.MergeFrom(tally);
  }

  void Publish(LocalCounters& c) {
    for (int i = 0; i < kCounterCount; i++) {
      if (c.v[i] != 0) {
        counters_[i].fetch_add(c.v[i], std::memory_order_relaxed);
        c.v[i] = 0;
      }
    }
    c.DrainNets([this](uint32_t slot, const uint64_t* v) {
      std::atomic<uint64_t>* to = netCounters_.get() + static_cast<size_t>(slot) * kNetCounterCount;
      for (int i = 0; i < kNetCounterCount; i++) {
        if (v[i] != 0) to[i].fetch_add(v[i], std::memory_order_relaxed);
      }
    });
  }

  // ---- rx: UDP -> TAP (engine_rx.cc) ----

  class RxWorker;  // engine_rx.h

  void WriteTap(const core::Network& net, offload::GroFrame* frames, VtepCounts* const* frameVtep, uint32_t nf,
                uint32_t* next, offload::GroWrite* writes, struct iovec* iov, LocalCounters& c);

  // ---- tx: TAP -> UDP (engine_tx.cc) ----

  class TxWorker;  // engine_tx.h

  // ---- the two packet threads (engine_sched.cc; engine_sched.h says who runs the tx worker) ----

  static void Signal(int fd);
  static void Drain(int fd);
  /** poll() without sleeping, the CPU yielded between tries, until an fd
   *  is ready (poll's result) or untilNs (MonotonicNs) has passed (0). */
  static int BusyPoll(struct pollfd* fds, size_t n, int64_t untilNs);

  void RxThread();

  void TxThread();

  /** Segments a TAP read would have made (for drop counts): a GSO
   *  super-frame counts as its segments. */
  static uint64_t FramesIn(const struct virtio_net_hdr& hdr, size_t flen);

  void Forward(UdpSender& sender, const core::Network& net, const struct virtio_net_hdr& hdr, uint8_t* tail,
               uint8_t* frame, size_t flen, uint32_t* segLens, int64_t nowMs, std::vector<UsedKey>& used,
               LocalCounters& c);

  static void WriteVxlanHeader(uint8_t* p, uint32_t vni);

  /** Writes an ARP/ND answer (core::SuppressReply) to net's TAP and counts
   *  it as the event, or as the drop the TAP write refused it with. */
  static void WriteReply(const core::Network& net, const uint8_t* frame, size_t bytes, int event, LocalCounters& c);

  int wakeFd_ = -1;
  /** eventfds: the network table changed (one per thread: each refreshes the workers it runs). */
  int reconfigRxFd_ = -1;
  int reconfigTxFd_ = -1;
  int family_ = AF_INET;
  uint16_t dstPort_ = 0;
  bool offload_ = false;  // TAP offloads asked for
  std::atomic<bool> tapOffloadRefused_{false};
  /** A TAP took TSO but not USO (a kernel before 6.2). */
  std::atomic<bool> tapUsoRefused_{false};
  /** Tap::~Tap posts 'tapClosed' while this is set (running, not stopping). */
  std::atomic<bool> postTapClosed_{false};
  bool coalesce_ = true;
  /** The outer TOS setting: 0..255 or core::kTosInherit (core_ecn.h). */
  int envelopeTos_ = 0;
  UdpSocket udp_;
  /** The send sockets, one per outer source port over the --srcport range
   *  (core_srcport.h); empty = send from udp_ (no range given). */
  std::vector<UdpSocket> sendSockets_;
  /** An epoll set of the send sockets (-1 without them): readable while one
   *  has a queued error. The rx thread polls this one fd instead of every
   *  send socket: kSrcPortSockets more fds in each of its poll() calls cost
   *  about 8 % of its CPU and 0.1 ms of ping RTT (BENCHMARKS.md). */
  int sendErrorsFd_ = -1;
  /** The fds the tx worker sends from: sendSockets_', else udp_'s. */
  std::vector<int> SendFds() const;
  /** Binds up to kSrcPortSockets send sockets over [minPort, maxPort]; throws
   *  a system error when none binds. */
  void OpenSendSockets(Napi::Env env, const Vtep& local, int bufferBytes, uint16_t minPort, uint16_t maxPort, int ttl, bool df);
  std::vector<Fallback> startupFallbacks_;
  /** The networks (each with its TAP, source policy, VLAN option) and the FDB mirror the workers apply. */
  std::unique_ptr<core::Context> ctx_;
  State state_ = State::kIdle;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> fatal_{false};
  std::atomic<bool> gsoActive_{false};
  std::atomic<uint64_t> counters_[kCounterCount];
  std::unique_ptr<std::atomic<uint64_t>[]> netCounters_;  // kMaxNetworks * kNetCounterCount
  std::mutex vtepMu_;
  VtepTally vtepCounts_;  // merged by the threads, taken by JS (vtepMu_)
  std::unique_ptr<RxWorker> rxWorker_;
  std::unique_ptr<TxWorker> txWorker_;
  /** Which thread runs the tx worker (TxOwner); changed only by its owner. */
  std::atomic<int> txOwner_{kTxOnRxThread};
  /** eventfds: the rx thread hands the tx worker over / gets it back. */
  int handToTxFd_ = -1;
  int handToRxFd_ = -1;
  std::thread rx_;
  std::thread tx_;
  Napi::FunctionReference onEvent_;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace engine
}  // namespace vxland
