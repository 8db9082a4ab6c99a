// The engine's N-API binding: the NativeEngine class's options, lifecycle,
// counters, info and events (the JS surface engine_core.h lists), and the
// constants the addon exports with it.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

// Linux 6.2's <linux/if_tun.h>; older headers lack them.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

#include "addon.h"
#include "core_srcport.h"
#include "engine_core.h"
#include "engine_rx.h"
#include "engine_tx.h"
#include "errors.h"

namespace vxland {
namespace engine {

Napi::Function Engine::Define(Napi::Env env) {
  std::vector<Napi::ClassPropertyDescriptor<Engine>> props{
      InstanceMethod<&Engine::Start>("start"),
      InstanceMethod<&Engine::Stop>("stop"),
      InstanceMethod<&Engine::Counters>("counters"),
      InstanceMethod<&Engine::NetCounters>("netCounters"),
      InstanceMethod<&Engine::AddNetwork>("addNetwork"),
      InstanceMethod<&Engine::RemoveNetwork>("removeNetwork"),
      InstanceMethod<&Engine::TakeVtepCounts>("takeVtepCounts"),
      InstanceMethod<&Engine::Info>("info"),
  };
  AddMethods(&props);  // the core context's setters, as the dgram path's PacketCore has them
  Napi::Function ctor = DefineClass(env, "NativeEngine", props);
  Napi::Array names = Napi::Array::New(env, kCounterCount);
  for (uint32_t i = 0; i < kCounterCount; i++) names.Set(i, Napi::String::New(env, kCounterNames[i]));
  ctor.Set("counterNames", names);
  ctor.Set("netCounterCount", Napi::Number::New(env, kNetCounterCount));
  return ctor;
}

Engine::Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
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
  const int64_t port = num("port");
  const int64_t dstPort = num("dstPort");
  if (port < 0 || port > 65535 || dstPort < 0 || dstPort > 65535) {
    throw Napi::RangeError::New(env, "NativeEngine: port or dstPort out of range");
  }
  dstPort_ = static_cast<uint16_t>(dstPort);
  ctx_ = std::make_unique<core::Context>();
  netCounters_.reset(new std::atomic<uint64_t>[kMaxNetworks * kNetCounterCount]);
  for (size_t i = 0; i < kMaxNetworks * kNetCounterCount; i++) netCounters_[i].store(0, std::memory_order_relaxed);
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

  offload_ = flag("offload");
  const int64_t ttl = o.Get("ttl").IsUndefined() ? 64 : num("ttl");
  const int64_t tos = o.Get("tos").IsUndefined() ? 0 : num("tos");
  if (ttl < 1 || ttl > 255 || tos < -1 || tos > 255) throw Napi::RangeError::New(env, "NativeEngine: ttl or tos out of range");
  envelopeTos_ = static_cast<int>(tos);
  const bool df = o.Get("df").IsUndefined() ? false : o.Get("df").ToBoolean().Value();

  std::string syscall;
  int err = OpenUdpSocket(localAddr, bufferBytes, &udp_, &syscall);
  if (err != 0) ThrowSysError(env, err, syscall, localIp + " port " + std::to_string(port));
  err = SetEnvelope(udp_.fd, family_, static_cast<int>(ttl), 0, df, &syscall);
  if (err != 0) {
    ::close(udp_.fd);
    udp_.fd = -1;
    ThrowSysError(env, err, syscall, localIp + " port " + std::to_string(port));
  }
  if (dstPort_ == 0) dstPort_ = static_cast<uint16_t>(udp_.port);
  if (o.Get("srcPortMin").IsNumber() || o.Get("srcPortMax").IsNumber()) {
    const int64_t srcMin = num("srcPortMin");
    const int64_t srcMax = num("srcPortMax");
    if (srcMin < 1 || srcMax > 65535 || srcMin > srcMax) {
      ::close(udp_.fd);
      udp_.fd = -1;
      throw Napi::RangeError::New(env, "NativeEngine: srcPortMin..srcPortMax must be within 1..65535, min <= max");
    }
    OpenSendSockets(env, localAddr, bufferBytes, static_cast<uint16_t>(srcMin), static_cast<uint16_t>(srcMax), static_cast<int>(ttl), df);
  }
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
  for (const UdpSocket& s : sendSockets_) udp_.gso = udp_.gso && s.gso;
  gsoActive_.store(udp_.gso);
  // CloseFds holds the one list of what an engine opens.
  const auto fail = [&](int e, const char* syscall) {
    CloseFds();
    sendSockets_.clear();
    ThrowSysError(env, e, syscall, "");
  };
  for (int* fd : {&wakeFd_, &handToTxFd_, &handToRxFd_, &reconfigRxFd_, &reconfigTxFd_}) {
    *fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (*fd < 0) fail(errno, "eventfd");
  }
  if (!sendSockets_.empty()) {
    sendErrorsFd_ = epoll_create1(EPOLL_CLOEXEC);
    if (sendErrorsFd_ < 0) fail(errno, "epoll_create1");
    for (const UdpSocket& s : sendSockets_) {
      struct epoll_event ev = {};  // EPOLLERR is always reported
      if (epoll_ctl(sendErrorsFd_, EPOLL_CTL_ADD, s.fd, &ev) < 0) fail(errno, "epoll_ctl");
    }
  }
  onEvent_ = Napi::Persistent(info[1].As<Napi::Function>());
  for (auto& c : counters_) c.store(0, std::memory_order_relaxed);
}

std::vector<int> Engine::SendFds() const {
  if (sendSockets_.empty()) return {udp_.fd};
  std::vector<int> fds;
  for (const UdpSocket& s : sendSockets_) fds.push_back(s.fd);
  return fds;
}

void Engine::OpenSendSockets(Napi::Env env, const Vtep& local, int bufferBytes, uint16_t minPort, uint16_t maxPort, int ttl, bool df) {
  const uint32_t span = static_cast<uint32_t>(maxPort - minPort) + 1;
  const uint32_t wanted = std::min<uint32_t>(static_cast<uint32_t>(kSrcPortSockets), span);
  int lastErr = 0;
  std::string lastSyscall;
  for (uint32_t slot = 0; slot < wanted; slot++) {
    for (uint32_t attempt = 0; attempt < static_cast<uint32_t>(kSrcPortBindAttempts) && attempt < span; attempt++) {
      const uint16_t port = core::SrcPortCandidate(minPort, maxPort, slot, attempt);
      bool mine = port == udp_.port;
      for (const UdpSocket& s : sendSockets_) mine = mine || s.port == port;
      if (mine) continue;
      Vtep at = local;
      if (at.addr.sa.sa_family == AF_INET) at.addr.in4.sin_port = htons(port);
      else at.addr.in6.sin6_port = htons(port);
      UdpSocket s;
      std::string syscall;
      int err = OpenUdpSocket(at, bufferBytes, &s, &syscall);
      // The envelope (TTL, DF) of every datagram, whichever socket sends it.
      if (err == 0) err = SetEnvelope(s.fd, family_, ttl, 0, df, &syscall);
      if (err == 0) {
        sendSockets_.push_back(s);
        break;
      }
      if (s.fd >= 0) ::close(s.fd);
      lastErr = err;
      lastSyscall = syscall;
    }
  }
  const std::string range = std::to_string(minPort) + "-" + std::to_string(maxPort);
  if (sendSockets_.empty()) {
    ::close(udp_.fd);
    udp_.fd = -1;
    ThrowSysError(env, lastErr, lastSyscall, "no send socket could bind a source port in " + range);
  }
  if (sendSockets_.size() < wanted) {
    startupFallbacks_.push_back({"srcport", lastErr,
                                 std::to_string(sendSockets_.size()) + " of " + std::to_string(wanted) +
                                     " send sockets bound in " + range + " (" + lastSyscall +
                                     " failed for the rest): their flows share the others"});
  }
}

Engine::~Engine() {
  Shutdown();
  CloseFds();
}

Tap::~Tap() {
  if (fd < 0) return;
  ::close(fd);
  engine->OnTapClosed(vni);
}

void Engine::OnTapClosed(uint32_t vni) {
  if (!postTapClosed_.load()) return;
  auto* ev = new EngineEvent{EngineEvent::kTapClosed, {}, "", "", "", 0, {}, {}, {}};
  ev->err = static_cast<int>(vni);
  Post(ev);
}

void Engine::TapFailed(const core::Network& net, int err, const char* syscall) {
  auto* ev = new EngineEvent{EngineEvent::kTapFailed, {}, "", static_cast<const Tap*>(net.io.get())->name, syscall, err, {}, {}, {}};
  ev->vni = net.vni;
  ev->token = static_cast<const Tap*>(net.io.get())->token;
  Post(ev);
}

void Engine::Reconfigure() {
  if (state_ != State::kRunning) return;
  Signal(reconfigRxFd_);
  Signal(reconfigTxFd_);
}

Napi::Value Engine::AddNetwork(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ == State::kStopped) throw Napi::Error::New(env, "NativeEngine: stopped");
  core::Network n = core::NapiNetworkOf(env, info[0], "addNetwork");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value fdv = o.Get("tapFd");
  if (!fdv.IsNumber() || fdv.As<Napi::Number>().Int32Value() < 0) throw Napi::TypeError::New(env, "addNetwork: tapFd must be an fd");
  const int fd = fdv.As<Napi::Number>().Int32Value();
  Napi::Value standIn = o.Get("standIn");
  if (ctx_->Snapshot()->Find(n.vni) != nullptr) return Napi::Number::New(env, -1);
  const std::string context = "fd " + std::to_string(fd);
  int hdrSize = static_cast<int>(kVnetHdrBytes);
  const unsigned offloads = offload_ ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) : 0;
  // UDP segmentation both ways (Linux 6.2+): coalesced UDP writes, and UDP
  // super-frames read from senders using UDP_SEGMENT. Older kernels refuse
  // the whole set, so it is asked for first and dropped alone.
  const unsigned udpOffloads = offload_ ? (TUN_F_USO4 | TUN_F_USO6) : 0;
  bool uso = false;
  if (!standIn.IsUndefined() && standIn.ToBoolean().Value()) {
    // A SOCK_SEQPACKET stand-in speaks the TAP's framing (virtio header,
    // one frame per message) and has no kernel that could refuse offloads:
    // whoever holds its other end plays the kernel, one that predates USO.
    tapUsoRefused_.store(true);
  } else if (ioctl(fd, TUNSETVNETHDRSZ, &hdrSize) < 0) {
    ThrowSysError(env, errno, "ioctl(TUNSETVNETHDRSZ)", context);
  } else {
    uso = udpOffloads != 0 && ioctl(fd, TUNSETOFFLOAD, offloads | udpOffloads) == 0;
    const int usoErr = errno;
    if (uso) {
      // Both sets taken.
    } else if (ioctl(fd, TUNSETOFFLOAD, offloads) != 0) {
      const int err = errno;
      (void)ioctl(fd, TUNSETOFFLOAD, 0u);
      if (offloads != 0 && !tapOffloadRefused_.exchange(true)) {
        AnnounceFallback("tso", err, "TUNSETOFFLOAD refused: reading frames one by one without TSO");
      }
    } else if (udpOffloads != 0 && !tapUsoRefused_.exchange(true)) {
      AnnounceFallback("uso", usoErr, "TUNSETOFFLOAD refused USO (Linux before 6.2): UDP datagrams are read and written one by one");
    }
  }
  Napi::Value name = o.Get("name");
  Napi::Value token = o.Get("token");
  n.io = std::shared_ptr<Tap>(new Tap{this, fd, n.vni, name.IsString() ? name.As<Napi::String>().Utf8Value() : std::string(),
                                      token.IsNumber() ? token.As<Napi::Number>().DoubleValue() : 0, uso});
  uint32_t slot = 0;
  if (!ctx_->AddNetwork(n, &slot)) {
    // Every slot taken: the fd stays the caller's.
    static_cast<Tap*>(n.io.get())->fd = -1;
    throw Napi::RangeError::New(env, "addNetwork: no free network slot (at most " + std::to_string(kMaxNetworks) + ")");
  }
  std::atomic<uint64_t>* c = netCounters_.get() + static_cast<size_t>(slot) * kNetCounterCount;
  for (int i = 0; i < kNetCounterCount; i++) c[i].store(0, std::memory_order_relaxed);
  Reconfigure();
  return Napi::Number::New(env, slot);
}

Napi::Value Engine::RemoveNetwork(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "removeNetwork(vni)");
  const bool removed = ctx_->RemoveNetwork(info[0].As<Napi::Number>().Uint32Value(), nullptr);
  if (removed) Reconfigure();
  return Napi::Boolean::New(env, removed);
}

Napi::Value Engine::NetCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[1].As<Napi::Float64Array>().ElementLength() < kNetCounterCount) {
    throw Napi::TypeError::New(env, "netCounters(slot, out: Float64Array of netCounterCount)");
  }
  const uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
  if (slot >= kMaxNetworks) throw Napi::RangeError::New(env, "netCounters: slot out of range");
  Napi::Float64Array out = info[1].As<Napi::Float64Array>();
  const std::atomic<uint64_t>* c = netCounters_.get() + static_cast<size_t>(slot) * kNetCounterCount;
  for (int i = 0; i < kNetCounterCount; i++) out[i] = static_cast<double>(c[i].load(std::memory_order_relaxed));
  return env.Undefined();
}

Napi::Value Engine::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kIdle) throw Napi::Error::New(env, "NativeEngine can only start once");
  tsfn_ = Napi::ThreadSafeFunction::New(env, onEvent_.Value(), "vxland:engine", 0, 1);
  state_ = State::kRunning;
  postTapClosed_.store(true);
  Ref();  // the threads use this object until stop()
  for (const Fallback& f : startupFallbacks_) Announce(f.feature, f.err, f.message);
  rxWorker_ = std::make_unique<RxWorker>(this);
  txWorker_ = std::make_unique<TxWorker>(this);
  rx_ = std::thread([this] { RxThread(); });
  tx_ = std::thread([this] { TxThread(); });
  return env.Undefined();
}

Napi::Value Engine::Stop(const Napi::CallbackInfo& info) {
  if (state_ == State::kRunning) {
    Shutdown();
    tsfn_.Release();
    Unref();
  }
  state_ = State::kStopped;
  CloseFds();
  return info.Env().Undefined();
}

Napi::Value Engine::Counters(const Napi::CallbackInfo& info) {
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

Napi::Value Engine::TakeVtepCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct Taken {
    uint32_t net;
    bool other;
    Vtep vtep;
    VtepCounts c;
  };
  std::vector<Taken> taken;
  {
    std::lock_guard<std::mutex> lock(vtepMu_);
    taken.reserve(vtepCounts_.Size() + 1);
    vtepCounts_.Drain([&](uint32_t net, const Vtep* v, const VtepCounts& c) {
      taken.push_back(Taken{net, v == nullptr, v ? *v : Vtep(), c});
    });
  }
  Napi::Array out = Napi::Array::New(env, taken.size());
  const int64_t nowMs = NowMs();
  uint32_t n = 0;
  for (const Taken& t : taken) {
    const VtepCounts& c = t.c;
    Napi::Object item = Napi::Object::New(env);
    item.Set("slot", static_cast<double>(t.net) - 1);
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

Napi::Value Engine::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("port", udp_.port);
  o.Set("offload", offload_ && !tapOffloadRefused_.load());
  o.Set("uso", offload_ && !tapOffloadRefused_.load() && !tapUsoRefused_.load());
  o.Set("gso", gsoActive_.load());
  o.Set("gro", udp_.gro);
  o.Set("coalesce", coalesce_);
  o.Set("rcvbufBytes", udp_.rcvbufBytes);
  o.Set("sndbufBytes", udp_.sndbufBytes);
  Napi::Array ports = Napi::Array::New(env, sendSockets_.size());
  for (size_t i = 0; i < sendSockets_.size(); i++) ports.Set(static_cast<uint32_t>(i), sendSockets_[i].port);
  o.Set("srcPorts", ports);
  o.Set("state", state_ == State::kIdle ? "idle" : state_ == State::kRunning ? "running" : "stopped");
  return o;
}

void Engine::Shutdown() {
  stopping_.store(true);
  postTapClosed_.store(false);
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

void Engine::CloseFds() {
  // The workers' snapshots, then the table: the last holders of the TAPs.
  rxWorker_.reset();
  txWorker_.reset();
  if (ctx_ != nullptr) ctx_->Clear();
  for (int* fd : {&udp_.fd, &wakeFd_, &handToTxFd_, &handToRxFd_, &reconfigRxFd_, &reconfigTxFd_, &sendErrorsFd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  for (UdpSocket& s : sendSockets_) {
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
  }
}

void Engine::Post(EngineEvent* ev) {
  napi_status s = tsfn_.NonBlockingCall(ev, [](Napi::Env env, Napi::Function cb, EngineEvent* e) {
    std::unique_ptr<EngineEvent> owned(e);
    if (env == nullptr || cb.IsEmpty()) return;
    cb.Call({ToJs(env, *e)});
  });
  if (s != napi_ok) delete ev;
}

void Engine::AnnounceFallback(const char* feature, int err, const std::string& message) {
  if (state_ == State::kRunning) Announce(feature, err, message);
  else startupFallbacks_.push_back({feature, err, message});
}

void Engine::Announce(const std::string& feature, int err, const std::string& message) {
  auto* ev = new EngineEvent{EngineEvent::kFallback, {}, feature, message, "", err, {}, {}, {}};
  Post(ev);
}

void Engine::Fatal(int err, const char* syscall) {
  if (fatal_.exchange(true)) return;
  auto* ev = new EngineEvent{EngineEvent::kFatal, {}, "", "", syscall, err, {}, {}, {}};
  Post(ev);
}

Napi::Value Engine::ToJs(Napi::Env env, const EngineEvent& e) {
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
        item.Set("vni", e.refused[i].vni);
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
    case EngineEvent::kTapClosed:
      o.Set("type", "tapClosed");
      o.Set("vni", e.err);
      break;
    case EngineEvent::kTapFailed:
      o.Set("type", "tapFailed");
      o.Set("vni", e.vni);
      o.Set("token", e.token);
      o.Set("error", SysError(env, e.err, e.syscall, e.message).Value());
      break;
    case EngineEvent::kFatal:
      o.Set("type", "fatal");
      o.Set("error", SysError(env, e.err, e.syscall, "native engine").Value());
      break;
  }
  return o;
}

/** udpSetEnvelope(fd, family: 4 | 6, ttl, tos, df): SetEnvelope on a
 *  node:dgram socket's fd (the dgram path's sockets: node:dgram has no API
 *  for the TOS or DF). Throws an Error with code/errno/syscall. */
Napi::Value UdpSetEnvelope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, "udpSetEnvelope(fd, family, ttl, tos, df)");
  }
  const int ttl = info[2].As<Napi::Number>().Int32Value();
  const int tos = info[3].As<Napi::Number>().Int32Value();
  if (ttl < 1 || ttl > 255 || tos < 0 || tos > 255) throw Napi::RangeError::New(env, "udpSetEnvelope: ttl or tos out of range");
  std::string syscall;
  const int family = info[1].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  const int err = SetEnvelope(info[0].As<Napi::Number>().Int32Value(), family, ttl, tos, info[4].ToBoolean().Value(), &syscall);
  if (err != 0) ThrowSysError(env, err, syscall, "dgram socket");
  return env.Undefined();
}

}  // namespace engine

void InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeEngine", engine::Engine::Define(env));
  exports.Set("udpSetEnvelope", Napi::Function::New(env, engine::UdpSetEnvelope, "udpSetEnvelope"));
  Napi::Array names = Napi::Array::New(env, kDropReasonCount);
  for (uint32_t i = 0; i < kDropReasonCount; i++) names.Set(i, Napi::String::New(env, kDropReasonNames[i]));
  exports.Set("engineDropReasonNames", names);
  Napi::Array events = Napi::Array::New(env, kNetEventCount);
  for (uint32_t i = 0; i < kNetEventCount; i++) events.Set(i, Napi::String::New(env, kNetEventNames[i]));
  exports.Set("engineNetEventNames", events);
  Napi::Object limits = Napi::Object::New(env);
#define VXLAND_X(name, value, doc) limits.Set(#name, Napi::Number::New(env, static_cast<double>(k##name)));
  VXLAND_LIMITS(VXLAND_X)
#undef VXLAND_X
  exports.Set("engineLimits", limits);
  // udp6AcceptZeroChecksums(fd): 0 or the errno (engine_io.h AcceptZeroUdp6Checksums),
  // for the dgram path's receive socket, which node:dgram cannot configure.
  exports.Set("udp6AcceptZeroChecksums", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "udp6AcceptZeroChecksums(fd: number)");
    return Napi::Number::New(info.Env(), AcceptZeroUdp6Checksums(info[0].As<Napi::Number>().Int32Value()));
  }, "udp6AcceptZeroChecksums"));
}

}  // namespace vxland
