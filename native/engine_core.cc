#include "engine_core.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "core_binding.h"
#include "core_rx.h"
#include "core_tx.h"
#include "engine_fdb.h"
#include "engine_io.h"
#include "engine_offload.h"
#include "errors.h"

namespace vxland {
namespace {

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

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t NowMs() { return MonotonicNs() / 1000000; }

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

/** A sender refused by the source policy and how many datagrams it sent. */
struct Refused {
  Vtep from;
  uint64_t count;
};

/** A sender of datagrams with a VNI not ours, and how many it sent. */
struct Foreign {
  Vtep from;
  uint32_t vni;
  uint64_t count;
};

struct EngineEvent {
  enum Kind { kObservations, kFallback, kFatal } kind;
  std::vector<Observation> obs;
  std::string feature;
  std::string message;
  std::string syscall;
  int err = 0;
  std::vector<Refused> refused;
  std::vector<UsedKey> used;
  std::vector<Foreign> foreign;
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

class Engine : public Napi::ObjectWrap<Engine>, public core::CoreSetters<Engine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    std::vector<Napi::ClassPropertyDescriptor<Engine>> props{
        InstanceMethod<&Engine::Start>("start"),
        InstanceMethod<&Engine::Stop>("stop"),
        InstanceMethod<&Engine::Counters>("counters"),
        InstanceMethod<&Engine::TakeVtepCounts>("takeVtepCounts"),
        InstanceMethod<&Engine::Info>("info"),
    };
    AddMethods(&props);  // the core context's setters, as the dgram path's PacketCore has them
    Napi::Function ctor = DefineClass(env, "NativeEngine", props);
    Napi::Array names = Napi::Array::New(env, kCounterCount);
    for (uint32_t i = 0; i < kCounterCount; i++) names.Set(i, Napi::String::New(env, kCounterNames[i]));
    ctor.Set("counterNames", names);
    return ctor;
  }

  explicit Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "NativeEngine(options, onEvent)");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    auto num = [&](const char* key) -> int64_t {
      Napi::Value v = o.Get(key);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("options.") + key + " must be a number");
      return v.As<Napi::Number>().Int64Value();
    };
    auto flag = [&](const char* key) {
      Napi::Value v = o.Get(key);
      return v.IsUndefined() ? true : v.ToBoolean().Value();
    };
    tapFd_ = static_cast<int>(num("tapFd"));
    mtu_ = static_cast<size_t>(num("mtu"));
    vni_ = static_cast<uint32_t>(num("vni"));
    const int64_t port = num("port");
    const int64_t dstPort = num("dstPort");
    if (tapFd_ < 0 || mtu_ < kMtuMinBytes || mtu_ > kMtuMaxBytes || vni_ > kVniMax || port < 0 || port > 65535 || dstPort < 0 ||
        dstPort > 65535) {
      throw Napi::RangeError::New(env, "NativeEngine: tapFd, mtu, vni, port or dstPort out of range");
    }
    dstPort_ = static_cast<uint16_t>(dstPort);
    Napi::Value mac = o.Get("ownMac");
    if (!mac.IsBuffer() || mac.As<Napi::Buffer<uint8_t>>().Length() != 6) {
      throw Napi::TypeError::New(env, "options.ownMac must be a 6-byte Buffer");
    }
    ownMac_ = MacAt(mac.As<Napi::Buffer<uint8_t>>().Data());
    ctx_ = std::make_unique<core::Context>(core::Network{vni_, mtu_, ownMac_});
    Napi::Value local = o.Get("local");
    if (!local.IsString()) throw Napi::TypeError::New(env, "options.local must be an IP literal");
    const std::string localIp = local.As<Napi::String>().Utf8Value();
    Vtep localAddr;
    family_ = localIp.find(':') == std::string::npos ? AF_INET : AF_INET6;
    if (!ParseVtep(localIp, family_, static_cast<uint16_t>(port), &localAddr)) {
      throw Napi::TypeError::New(env, "options.local is not an IP literal: " + localIp);
    }
    coalesce_ = flag("coalesce");
    int bufferBytes = static_cast<int>(kEngineSocketBufferBytes);
    if (o.Get("socketBufferBytes").IsNumber()) bufferBytes = static_cast<int>(num("socketBufferBytes"));

    const std::string context = "fd " + std::to_string(tapFd_);
    int hdrSize = static_cast<int>(kVnetHdrBytes);
    unsigned offloads = flag("offload") ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) : 0;
    Napi::Value standIn = o.Get("standIn");
    if (!standIn.IsUndefined() && standIn.ToBoolean().Value()) {
      // A SOCK_SEQPACKET stand-in speaks the TAP's framing (virtio header,
      // one frame per message) and has no kernel that could refuse offloads:
      // whoever holds its other end plays the kernel.
      offload_ = offloads != 0;
    } else if (ioctl(tapFd_, TUNSETVNETHDRSZ, &hdrSize) < 0) {
      ThrowSysError(env, errno, "ioctl(TUNSETVNETHDRSZ)", context);
    } else if (ioctl(tapFd_, TUNSETOFFLOAD, offloads) == 0) {
      offload_ = offloads != 0;
    } else {
      const int err = errno;
      offload_ = false;
      (void)ioctl(tapFd_, TUNSETOFFLOAD, 0u);
      if (offloads != 0) startupFallbacks_.push_back({"tso", err, "TUNSETOFFLOAD refused: reading frames one by one without TSO"});
    }

    std::string syscall;
    int err = OpenUdpSocket(localAddr, bufferBytes, &udp_, &syscall);
    if (err != 0) ThrowSysError(env, err, syscall, localIp + " port " + std::to_string(port));
    if (dstPort_ == 0) dstPort_ = static_cast<uint16_t>(udp_.port);
    if (!flag("gro")) {
      int zero = 0;
      (void)setsockopt(udp_.fd, IPPROTO_UDP, 104 /* UDP_GRO */, &zero, sizeof(zero));
      udp_.gro = false;
    } else if (!udp_.gro) {
      startupFallbacks_.push_back({"gro", ENOPROTOOPT, "UDP_GRO unavailable: receiving datagrams one by one (recvmmsg)"});
    }
    if (!flag("gso")) {
      udp_.gso = false;
    } else if (!udp_.gso) {
      startupFallbacks_.push_back({"gso", ENOPROTOOPT, "UDP_SEGMENT unavailable: sending with plain sendmmsg"});
    }
    gsoActive_.store(udp_.gso);
    for (int* fd : {&wakeFd_, &handToTxFd_, &handToRxFd_}) {
      *fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (*fd < 0) {
        err = errno;
        for (int* open : {&udp_.fd, &wakeFd_, &handToTxFd_, &handToRxFd_}) {
          if (*open >= 0) ::close(*open);
          *open = -1;
        }
        ThrowSysError(env, err, "eventfd", "");
      }
    }
    onEvent_ = Napi::Persistent(info[1].As<Napi::Function>());
    for (auto& c : counters_) c.store(0, std::memory_order_relaxed);
  }

  core::Context& CoreContext() { return *ctx_; }
  int CoreFamily() const { return family_; }
  uint16_t CorePort() const { return dstPort_; }

  ~Engine() override {
    Shutdown();
    CloseFds();
  }

 private:
  struct Fallback {
    const char* feature;
    int err;
    const char* message;
  };
  enum class State { kIdle, kRunning, kStopped };

  // ---- JS methods ----

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_ != State::kIdle) throw Napi::Error::New(env, "NativeEngine can only start once");
    tsfn_ = Napi::ThreadSafeFunction::New(env, onEvent_.Value(), "vxland:engine", 0, 1);
    state_ = State::kRunning;
    Ref();  // the threads use this object until stop()
    for (const Fallback& f : startupFallbacks_) Announce(f.feature, f.err, f.message);
    rxWorker_ = std::make_unique<RxWorker>(this);
    txWorker_ = std::make_unique<TxWorker>(this);
    rx_ = std::thread([this] { RxThread(); });
    tx_ = std::thread([this] { TxThread(); });
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (state_ == State::kRunning) {
      Shutdown();
      tsfn_.Release();
      Unref();
    }
    state_ = State::kStopped;
    CloseFds();
    return info.Env().Undefined();
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[0].As<Napi::Float64Array>().ElementLength() < kCounterCount) {
      throw Napi::TypeError::New(env, "counters(out: Float64Array of counterNames.length)");
    }
    Napi::Float64Array out = info[0].As<Napi::Float64Array>();
    for (int i = 0; i < kCounterCount; i++) out[i] = static_cast<double>(counters_[i].load(std::memory_order_relaxed));
    return env.Undefined();
  }

  /** The per-VTEP counts since the last call: [{vtep (null = addresses
   *  past the table's bound), rxPackets, rxBytes, txPackets, txBytes, drops,
   *  lastRxAgoMs (-1 = none)}]. */
  Napi::Value TakeVtepCounts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct Taken {
      bool other;
      Vtep vtep;
      VtepCounts c;
    };
    std::vector<Taken> taken;
    {
      std::lock_guard<std::mutex> lock(vtepMu_);
      taken.reserve(vtepCounts_.Size() + 1);
      vtepCounts_.Drain([&](const Vtep* v, const VtepCounts& c) { taken.push_back(Taken{v == nullptr, v ? *v : Vtep(), c}); });
    }
    Napi::Array out = Napi::Array::New(env, taken.size());
    const int64_t nowMs = NowMs();
    uint32_t n = 0;
    for (const Taken& t : taken) {
      const VtepCounts& c = t.c;
      Napi::Object item = Napi::Object::New(env);
      if (t.other) item.Set("vtep", env.Null());
      else item.Set("vtep", t.vtep.IpString());
      item.Set("rxPackets", static_cast<double>(c.rxPackets));
      item.Set("rxBytes", static_cast<double>(c.rxBytes));
      item.Set("txPackets", static_cast<double>(c.txPackets));
      item.Set("txBytes", static_cast<double>(c.txBytes));
      item.Set("drops", static_cast<double>(c.drops));
      item.Set("lastRxAgoMs", static_cast<double>(c.lastRxMs == 0 ? -1 : std::max<int64_t>(0, nowMs - c.lastRxMs)));
      out.Set(n++, item);
    }
    return out;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("port", udp_.port);
    o.Set("offload", offload_);
    o.Set("gso", gsoActive_.load());
    o.Set("gro", udp_.gro);
    o.Set("coalesce", coalesce_);
    o.Set("rcvbufBytes", udp_.rcvbufBytes);
    o.Set("sndbufBytes", udp_.sndbufBytes);
    o.Set("state", state_ == State::kIdle ? "idle" : state_ == State::kRunning ? "running" : "stopped");
    return o;
  }

  // ---- lifecycle ----

  void Shutdown() {
    stopping_.store(true);
    if (wakeFd_ >= 0) {
      uint64_t one = 1;
      (void)!write(wakeFd_, &one, sizeof(one));
    }
    if (!rx_.joinable() && !tx_.joinable()) return;  // never started, or shut down already
    if (rx_.joinable()) rx_.join();
    if (tx_.joinable()) tx_.join();
    // The threads are gone (or failed): what they queued and counted goes
    // out from here, once.
    txWorker_->Finish();
    rxWorker_->Finish();
  }

  void CloseFds() {
    for (int* fd : {&tapFd_, &udp_.fd, &wakeFd_, &handToTxFd_, &handToRxFd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  // ---- events (any thread) ----

  void Post(EngineEvent* ev) {
    napi_status s = tsfn_.NonBlockingCall(ev, [](Napi::Env env, Napi::Function cb, EngineEvent* e) {
      std::unique_ptr<EngineEvent> owned(e);
      if (env == nullptr || cb.IsEmpty()) return;
      cb.Call({ToJs(env, *e)});
    });
    if (s != napi_ok) delete ev;
  }

  void Announce(const std::string& feature, int err, const std::string& message) {
    auto* ev = new EngineEvent{EngineEvent::kFallback, {}, feature, message, "", err, {}, {}, {}};
    Post(ev);
  }

  void Fatal(int err, const char* syscall) {
    if (fatal_.exchange(true)) return;
    auto* ev = new EngineEvent{EngineEvent::kFatal, {}, "", "", syscall, err, {}, {}, {}};
    Post(ev);
  }

  static Napi::Value ToJs(Napi::Env env, const EngineEvent& e) {
    Napi::Object o = Napi::Object::New(env);
    switch (e.kind) {
      case EngineEvent::kObservations: {
        o.Set("type", "observations");
        Napi::Array learn = Napi::Array::New(env);
        Napi::Array foreign = Napi::Array::New(env);
        for (const Observation& ob : e.obs) {
          Napi::Object item = Napi::Object::New(env);
          item.Set("vni", ob.vni);
          item.Set("mac", static_cast<double>(ob.mac));
          item.Set("vtep", ob.from.IpString());
          learn.Set(learn.Length(), item);
        }
        for (const Foreign& f : e.foreign) {
          Napi::Object item = Napi::Object::New(env);
          item.Set("vni", f.vni);
          item.Set("from", f.from.IpString());
          item.Set("count", static_cast<double>(f.count));
          foreign.Set(foreign.Length(), item);
        }
        o.Set("learn", learn);
        o.Set("foreign", foreign);
        Napi::Array refused = Napi::Array::New(env, e.refused.size());
        for (size_t i = 0; i < e.refused.size(); i++) {
          Napi::Object item = Napi::Object::New(env);
          item.Set("from", e.refused[i].from.IpString());
          item.Set("count", static_cast<double>(e.refused[i].count));
          refused.Set(static_cast<uint32_t>(i), item);
        }
        o.Set("refused", refused);
        Napi::Array used = Napi::Array::New(env, e.used.size());
        for (size_t i = 0; i < e.used.size(); i++) {
          Napi::Object item = Napi::Object::New(env);
          item.Set("vni", e.used[i].vni);
          item.Set("mac", static_cast<double>(e.used[i].mac));
          used.Set(static_cast<uint32_t>(i), item);
        }
        o.Set("used", used);
        break;
      }
      case EngineEvent::kFallback:
        o.Set("type", "fallback");
        o.Set("feature", e.feature);
        o.Set("errno", e.err);
        o.Set("message", e.message);
        break;
      case EngineEvent::kFatal:
        o.Set("type", "fatal");
        o.Set("error", SysError(env, e.err, e.syscall, "native engine").Value());
        break;
    }
    return o;
  }

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
  }

  // ---- rx: UDP -> TAP ----

  /** The UDP -> TAP direction: its buffers, reports and counters. Owned by
   *  one thread at a time; Step() and Idle() never block. */
  class RxWorker {
   public:
    explicit RxWorker(Engine* e) : e_(e), rx_(e->udp_.fd, e->udp_.gro), reader_(e->ctx_.get()) {
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

    int fd() const { return e_->udp_.fd; }

    /** One recvmmsg and what it brought, written to the TAP. Returns 1 when
     *  the socket may hold more, 0 when it was empty, -1 after a fatal
     *  error (already reported). */
    int Step() {
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

    /** Sends the reports that are due; returns how long the thread may
     *  sleep before the next one is. */
    int Idle(int64_t nowMs) {
      idle_ = true;
      e_->MergeVtepCounts(tally_);
      FlushReports(nowMs, false);
      if (Unreported()) return kIdlePollMs;
      const int64_t dueMs = std::min(lastTrafficMs_ + kQuietFlushMs, pendingSinceMs_ + kObservationMaxDelayMs);
      return static_cast<int>(std::max<int64_t>(1, dueMs - nowMs));
    }

    /** poll() saw POLLERR: the error queue holds ICMP errors. */
    void OnPollError() { DrainErrors(NowMs()); }

    /** The threads are gone: everything counted goes out. */
    void Finish() {
      FlushReports(NowMs(), true);
      e_->MergeVtepCounts(tally_);
      e_->Publish(c_);
    }

   private:
    bool Unreported() const { return pending_.empty() && refused_.empty() && foreign_.empty(); }

    void Report(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs) {
      if (Unreported()) pendingSinceMs_ = nowMs;
      pending_.push_back(Observation{vni, mac, from});
    }

    // Every datagram with a foreign VNI is counted (as the dgram path's
    // Stats.foreignVni does), not only the first of a second.
    void CountForeign(uint32_t vni, const Vtep& from) {
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

    void Refuse(const Vtep& from, uint64_t n) {
      for (Refused& r : refused_) {
        if (r.from.SameIp(from)) {
          r.count += n;
          return;
        }
      }
      if (refused_.size() >= kMaxRefusedPerReport) return;
      if (Unreported()) pendingSinceMs_ = lastTrafficMs_;
      refused_.push_back(Refused{from, n});
    }

    // Learning and refusals go out in a pause of traffic, or once they
    // waited kObservationMaxDelayMs; final = the engine is stopping.
    void FlushReports(int64_t nowMs, bool final) {
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

    // An ICMP error (e.g. port unreachable) about a datagram the tx side
    // sent is a send error of the VTEP it went to; it arrives here, on the
    // socket's error queue (the datagram was counted as sent too).
    void DrainErrors(int64_t nowMs) {
      lastErrorDrainMs_ = nowMs;
      const int ne = rx_.ReceiveErrors(errorDests_.data(), kErrorsPerDrain);
      if (ne == 0) return;
      for (int i = 0; i < ne; i++) tally_.At(errorDests_[i])->drops++;
      c_.Drop(kTxSendError, static_cast<uint64_t>(ne));
      e_->Publish(c_);
    }

    void Handle(int n) {
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
      for (int m = 0; m < n; m++) {
        Vtep from;
        rx_.From(m, &from);
        uint8_t* data = rx_.Data(m);
        const offload::RxDatagrams dgrams = offload::SplitRxMessage(rx_.Len(m), rx_.SegBytes(m));
        if (dgrams.count > 1) c.v[kRxGroDatagrams]++;
        c.v[kRxDatagrams] += dgrams.count;
        // Every datagram of a UDP_GRO message comes from the same sender.
        VtepCounts* vc = tally_.At(from);
        vc->lastRxMs = nowMs;
        for (size_t i = 0; i < dgrams.count; i++) {
          core::RxResult r;
          reader_.Classify(data + dgrams.Offset(i), dgrams.Bytes(i), from, nowMs, &r);
          if (r.drop < 0 && nf == kRxMaxFrames) r.drop = kRxTapBusy;  // cannot happen with UDP_GRO's 64 datagrams per message; counted if it does
          if (r.drop >= 0) {
            if (r.drop == kRxWrongVni) CountForeign(r.vni, from);
            if (r.drop == kRxSourceNotAllowed) Refuse(from, 1);
            c.Drop(r.drop);
            vc->drops++;
            continue;
          }
          if (r.learn) Report(r.vni, r.srcMac, from, nowMs);
          frameVtep_[nf] = vc;
          frames_[nf++] = offload::GroFrame{r.frame, static_cast<uint32_t>(r.frameBytes)};
        }
      }
      e_->WriteTap(frames_.data(), frameVtep_.data(), nf, next_.data(), writes_.data(), iov_.data(), c);
      e_->Publish(c);
      // Counts and the error queue wait for Idle(), off the packet's way,
      // unless traffic never lets up.
      if (nowMs - busySinceMs_ >= kBusyHousekeepingMs) {
        if (nowMs - lastErrorDrainMs_ >= kErrorDrainMs) DrainErrors(nowMs);
        e_->MergeVtepCounts(tally_);
      }
      FlushReports(nowMs, false);
    }

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

  void WriteTap(offload::GroFrame* frames, VtepCounts* const* frameVtep, uint32_t nf, uint32_t* next,
                offload::GroWrite* writes, struct iovec* iov, LocalCounters& c) {
    const uint32_t nw = coalesce_ ? offload::GroPlan(frames, nf, next, writes, kMaxSegs) : offload::PlanSingles(frames, nf, writes);
    for (uint32_t w = 0; w < nw; w++) {
      const offload::GroWrite& wr = writes[w];
      iov[0].iov_base = const_cast<struct virtio_net_hdr*>(&wr.hdr);
      iov[0].iov_len = kVnetHdrBytes;
      uint64_t innerBytes;
      offload::GroWriteIov(frames, next, wr, iov + 1, &innerBytes);
      ssize_t r;
      do {
        r = ::writev(tapFd_, iov, static_cast<int>(wr.count + 1));
      } while (r < 0 && errno == EINTR);
      c.v[kRxTapWrites]++;
      const int reason = r < 0 ? (errno == EAGAIN ? kRxTapBusy : kRxTapError) : -1;
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
        c.Drop(reason, wr.count);
        continue;
      }
      if (wr.count > 1) c.v[kRxCoalescedWrites]++;
      c.v[kRxPackets] += wr.count;
      c.v[kRxBytes] += innerBytes;
    }
  }

  // ---- tx: TAP -> UDP ----

  /** The TAP -> UDP direction: its send batch, reports and counters. Owned
   *  by one thread at a time; Step() blocks only while the socket has no
   *  room (UdpSender, which also watches the stop eventfd). */
  class TxWorker {
   public:
    explicit TxWorker(Engine* e)
        : e_(e),
          sender_(e->udp_.fd, e->udp_.gso, e->wakeFd_, &c_, &tally_,
                  [e](int err) {
                    e->gsoActive_.store(false);
                    e->Announce("gso", err, "UDP GSO send failed with EIO: sending with plain sendmmsg from now on");
                  }),
          maxUntagged_(kEthBytes + e->mtu_) {
      used_.reserve(kMaxUsedPerReport);
      lastTrafficMs_ = usedSinceMs_ = NowMs();
      e->gsoActive_.store(e->udp_.gso);
    }

    int fd() const { return e_->tapFd_; }

    /** Up to kTxReadsPerWake TAP reads, sent as one batch. Returns 1 when
     *  the TAP may hold more, 0 when it was emptied, -1 after a fatal error
     *  (already reported). */
    int Step() {
      bool empty = false;
      const int64_t wakeMs = NowMs();
      const bool hadUsed = !used_.empty();
      int reads = 0;
      for (; reads < kTxReadsPerWake; reads++) {
        uint8_t* tail = sender_.Tail(kVxlanHeaderBytes + kMaxTapFrameBytes + kSplitHeaderBytes, kTxDatagramsPerRead);
        struct iovec rv[2] = {{&hdr_, kVnetHdrBytes}, {tail + kVxlanHeaderBytes, kMaxTapFrameBytes}};
        ssize_t n = ::readv(e_->tapFd_, rv, 2);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) {
            empty = true;
            break;
          }
          e_->Fatal(errno, "read");
          return -1;
        }
        if (n == 0) {
          e_->Fatal(EBADFD, "read");
          return -1;
        }
        c_.v[kTxTapReads]++;
        if (static_cast<size_t>(n) > kVnetHdrBytes + kMaxTapFrameBytes) {
          // Older kernels report a frame longer than the buffer at its whole
          // length (newer ones at the part read): larger than the MTU allows.
          c_.Drop(kTxOversize);
          continue;
        }
        uint8_t* frame = tail + kVxlanHeaderBytes;
        const size_t flen = static_cast<size_t>(n) > kVnetHdrBytes ? static_cast<size_t>(n) - kVnetHdrBytes : 0;
        e_->Forward(sender_, hdr_, tail, frame, flen, segLens_, maxUntagged_, wakeMs, used_, c_);
      }
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
      return empty ? 0 : 1;
    }

    /** Sends the reports that are due; returns how long the thread may
     *  sleep before the next one is. */
    int Idle(int64_t nowMs) {
      idle_ = true;
      e_->MergeVtepCounts(tally_);
      FlushUsed(nowMs, false);
      if (used_.empty()) return kIdlePollMs;
      const int64_t dueMs = std::min(lastTrafficMs_ + kQuietFlushMs, usedSinceMs_ + kUsedMaxDelayMs);
      return static_cast<int>(std::max<int64_t>(1, dueMs - nowMs));
    }

    /** The threads are gone: what is queued goes out, counts too. */
    void Finish() {
      sender_.Flush();
      e_->Publish(c_);
      e_->MergeVtepCounts(tally_);
      FlushUsed(NowMs(), true);
    }

   private:
    // Used entries go out in a pause of traffic, or once they waited
    // kUsedMaxDelayMs; final = the engine is stopping.
    void FlushUsed(int64_t nowMs, bool final) {
      if (used_.empty()) return;
      if (!final && nowMs - lastTrafficMs_ < kQuietFlushMs && nowMs - usedSinceMs_ < kUsedMaxDelayMs) return;
      auto* ev = new EngineEvent{EngineEvent::kObservations, {}, "", "", "", 0, {}, {}, {}};
      ev->used = std::move(used_);
      used_ = std::vector<UsedKey>();
      used_.reserve(kMaxUsedPerReport);
      e_->Post(ev);
    }

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

  // ---- the two packet threads ----
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

  static void Signal(int fd) {
    uint64_t one = 1;
    (void)!::write(fd, &one, sizeof(one));
  }
  static void Drain(int fd) {
    uint64_t n;
    (void)!::read(fd, &n, sizeof(n));
  }

  void RxThread() {
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

  void TxThread() {
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

  /** Segments a TAP read would have made (for drop counts): a GSO
   *  super-frame counts as its segments. */
  static uint64_t FramesIn(const struct virtio_net_hdr& hdr, size_t flen) {
    if (hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE || hdr.gso_size == 0 || flen <= hdr.hdr_len) return 1;
    return (flen - hdr.hdr_len + hdr.gso_size - 1) / hdr.gso_size;
  }

  void Forward(UdpSender& sender, const struct virtio_net_hdr& hdr, uint8_t* tail, uint8_t* frame, size_t flen,
               uint32_t* segLens, size_t maxUntagged, int64_t nowMs, std::vector<UsedKey>& used,
               LocalCounters& c) {
    // Every check of the frame itself (the core's, then the split's) comes
    // before the lookup: a frame that is not sent must not mark a
    // forwarding entry used.
    const int drop = core::TxFrameDrop(hdr, frame, flen, maxUntagged, ctx_->AllowVlan());
    if (drop >= 0) return c.Drop(drop, drop == kTxVlanTagged ? FramesIn(hdr, flen) : 1);
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
        return c.Drop(segs == offload::kSplitMalformed || segs == offload::kSplitTooBig ? kTxOversize : kTxQueueFull);
      }
      c.v[kTxTsoFrames]++;
    }
    core::TxDests to;
    bool usedDue = false;
    core::TxDestinations(*ctx_, vni_, frame, nowMs, kUsedReportIntervalMs, used.size() < kMaxUsedPerReport ? &usedDue : nullptr,
                         &to);
    if (usedDue) used.push_back(UsedKey{vni_, to.flooded ? 0 : MacAt(frame)});
    const Vtep* dests = to.dests;
    const size_t ndest = to.count;
    if (ndest == 0) return c.Drop(kTxNoDestination, static_cast<uint64_t>(segs));
    if (gso) {
      const size_t stride = kVxlanHeaderBytes + layout.hdrLen;
      for (int s = 0; s < segs; s++) WriteVxlanHeader(out + s * stride);
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
    WriteVxlanHeader(tail);
    sender.Commit(frame + flen);
    for (size_t d = 0; d < ndest; d++) {
      sender.MakeRoom(frame + flen);
      sender.Add(dests[d], tail, kVxlanHeaderBytes + flen);
    }
  }

  void WriteVxlanHeader(uint8_t* p) const {
    p[0] = kVxlanFlagI;
    p[1] = p[2] = p[3] = 0;
    p[4] = static_cast<uint8_t>(vni_ >> 16);
    p[5] = static_cast<uint8_t>(vni_ >> 8);
    p[6] = static_cast<uint8_t>(vni_);
    p[7] = 0;
  }

  int tapFd_ = -1;
  int wakeFd_ = -1;
  int family_ = AF_INET;
  size_t mtu_ = 0;
  uint32_t vni_ = 0;
  uint16_t dstPort_ = 0;
  uint64_t ownMac_ = 0;
  bool offload_ = false;
  bool coalesce_ = true;
  UdpSocket udp_;
  std::vector<Fallback> startupFallbacks_;
  /** The networks, FDB mirror, source policy and VLAN option the workers apply. */
  std::unique_ptr<core::Context> ctx_;
  State state_ = State::kIdle;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> fatal_{false};
  std::atomic<bool> gsoActive_{false};
  std::atomic<uint64_t> counters_[kCounterCount];
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

// ---- test-only bindings over the pure offload functions ----

/** The (vnetHdrAndFrame: Buffer, mtu: number, ...) arguments of a test
 *  binding: the header into *hdr, the frame copied out. */
std::vector<uint8_t> VnetFrameArg(const Napi::CallbackInfo& info, const char* usage, struct virtio_net_hdr* hdr) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsNumber()) throw Napi::TypeError::New(env, usage);
  auto in = info[0].As<Napi::Buffer<uint8_t>>();
  if (in.Length() < kVnetHdrBytes) throw Napi::RangeError::New(env, "buffer shorter than a virtio_net_hdr");
  memcpy(hdr, in.Data(), kVnetHdrBytes);
  return std::vector<uint8_t>(in.Data() + kVnetHdrBytes, in.Data() + in.Length());
}

Napi::Value SegmentForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct virtio_net_hdr hdr;
  std::vector<uint8_t> frame = VnetFrameArg(info, "engineSegmentForTest(vnetHdrAndFrame, mtu)", &hdr);
  const size_t mtu = info[1].As<Napi::Number>().Uint32Value();
  const size_t maxFrame = kEthBytes + mtu + (frame.size() >= kEthBytes && IsTagged(frame.data()) ? 4 : 0);
  if (hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    const int drop = core::TxFrameDrop(hdr, frame.data(), frame.size(), kEthBytes + mtu, true);
    if (drop >= 0) return Napi::Number::New(env, drop == kTxOversize ? offload::kSplitTooBig : offload::kSplitMalformed);
    Napi::Array out = Napi::Array::New(env, 1);
    out.Set(0u, Napi::Buffer<uint8_t>::Copy(env, frame.data(), frame.size()));
    return out;
  }
  // The engine's own path: headers per segment, payload left in the frame.
  std::vector<uint8_t> hdrBuf(kSplitHeaderBytes);
  uint32_t segLens[kMaxSegs];
  offload::TsoLayout layout;
  int segs = offload::TsoSplitHeaders(frame.data(), frame.size(), hdr, maxFrame, hdrBuf.data(), hdrBuf.size(),
                                      kVxlanHeaderBytes, segLens, kMaxSegs, &layout);
  if (segs < 0) return Napi::Number::New(env, segs);
  Napi::Array out = Napi::Array::New(env, segs);
  const size_t stride = kVxlanHeaderBytes + layout.hdrLen;
  for (int s = 0; s < segs; s++) {
    Napi::Buffer<uint8_t> seg = Napi::Buffer<uint8_t>::New(env, segLens[s]);
    memcpy(seg.Data(), hdrBuf.data() + s * stride + kVxlanHeaderBytes, layout.hdrLen);
    memcpy(seg.Data() + layout.hdrLen, frame.data() + layout.hdrLen + s * static_cast<size_t>(layout.mss),
           segLens[s] - layout.hdrLen);
    out.Set(static_cast<uint32_t>(s), seg);
  }
  return out;
}

/** engineTxDropForTest(vnetHdrAndFrame, mtu, allowVlan): the drop reason's
 *  name TxFrameDrop gives a frame read from the TAP, or null. */
Napi::Value TxDropForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct virtio_net_hdr hdr;
  std::vector<uint8_t> frame = VnetFrameArg(info, "engineTxDropForTest(vnetHdrAndFrame, mtu, allowVlan)", &hdr);
  const int drop = core::TxFrameDrop(hdr, frame.data(), frame.size(), kEthBytes + info[1].As<Napi::Number>().Uint32Value(),
                               info[2].ToBoolean().Value());
  return drop < 0 ? env.Null() : Napi::String::New(env, kDropReasonNames[drop]);
}

Napi::Value CoalesceForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "engineCoalesceForTest(frames[])");
  Napi::Array in = info[0].As<Napi::Array>();
  const uint32_t n = in.Length();
  std::vector<std::vector<uint8_t>> store(n);
  std::vector<offload::GroFrame> frames(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = in.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "frames must be Buffers");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    store[i].assign(b.Data(), b.Data() + b.Length());
    frames[i] = offload::GroFrame{store[i].data(), static_cast<uint32_t>(store[i].size())};
  }
  std::vector<uint32_t> next(n);
  std::vector<offload::GroWrite> writes(n);
  const uint32_t nw = offload::GroPlan(frames.data(), n, next.data(), writes.data(), kMaxSegs);
  Napi::Array out = Napi::Array::New(env, nw);
  for (uint32_t w = 0; w < nw; w++) {
    const offload::GroWrite& wr = writes[w];
    std::vector<uint8_t> bytes(frames[wr.first].data, frames[wr.first].data + frames[wr.first].len);
    uint32_t k = wr.first;
    for (uint32_t s = 1; s < wr.count; s++) {
      k = next[k];
      bytes.insert(bytes.end(), frames[k].data + wr.hdrLen, frames[k].data + frames[k].len);
    }
    Napi::Object o = Napi::Object::New(env);
    Napi::Object h = Napi::Object::New(env);
    h.Set("flags", wr.hdr.flags);
    h.Set("gsoType", wr.hdr.gso_type);
    h.Set("hdrLen", wr.hdr.hdr_len);
    h.Set("gsoSize", wr.hdr.gso_size);
    h.Set("csumStart", wr.hdr.csum_start);
    h.Set("csumOffset", wr.hdr.csum_offset);
    o.Set("hdr", h);
    o.Set("frame", Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
    o.Set("count", wr.count);
    o.Set("first", wr.first);
    out.Set(w, o);
  }
  return out;
}

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeEngine", Engine::Define(env));
  exports.Set("engineSegmentForTest", Napi::Function::New(env, SegmentForTest, "engineSegmentForTest"));
  exports.Set("engineCoalesceForTest", Napi::Function::New(env, CoalesceForTest, "engineCoalesceForTest"));
  exports.Set("engineTxDropForTest", Napi::Function::New(env, TxDropForTest, "engineTxDropForTest"));
  Napi::Array names = Napi::Array::New(env, kDropReasonCount);
  for (uint32_t i = 0; i < kDropReasonCount; i++) names.Set(i, Napi::String::New(env, kDropReasonNames[i]));
  exports.Set("engineDropReasonNames", names);
  Napi::Object limits = Napi::Object::New(env);
#define VXLAND_X(name, value, doc) limits.Set(#name, Napi::Number::New(env, static_cast<double>(k##name)));
  VXLAND_LIMITS(VXLAND_X)
#undef VXLAND_X
  exports.Set("engineLimits", limits);
}

}  // namespace vxland
