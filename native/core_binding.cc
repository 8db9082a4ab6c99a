#include "core_binding.h"

#include <arpa/inet.h>

#include <algorithm>

#include <cstring>
#include <string>
#include <vector>

#include "core_pmtu.h"
#include "core_srcport.h"
#include "core_suppress.h"
#include "core_tx.h"
#include "drop_reasons.h"
#include "engine_offload.h"
#include "limits.h"

namespace vxland {
namespace core {

void NapiFdbSet(Context& ctx, const Napi::CallbackInfo& info, int family, uint16_t port) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString()) {
    throw Napi::TypeError::New(env, "fdbSet(vni, macKey, vtepIp, pinned)");
  }
  Vtep v;
  const std::string ip = info[2].As<Napi::String>().Utf8Value();
  if (!ParseVtep(ip, family, port, &v)) throw Napi::TypeError::New(env, "not an IP literal: " + ip);
  ctx.mirror.Set(info[0].As<Napi::Number>().Uint32Value(), static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
                 v, info[3].ToBoolean().Value());
}

Napi::Value NapiFdbDelete(Context& ctx, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "fdbDelete(vni, macKey)");
  }
  return Napi::Boolean::New(env, ctx.mirror.Delete(info[0].As<Napi::Number>().Uint32Value(),
                                                   static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value())));
}

void NapiSetFloodList(Context& ctx, const Napi::CallbackInfo& info, int family, uint16_t port) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "setFloodList(vni, vtepIps[])");
  }
  Napi::Array a = info[1].As<Napi::Array>();
  std::vector<Vtep> vteps;
  vteps.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Vtep v;
    const std::string ip = a.Get(i).ToString().Utf8Value();
    if (!ParseVtep(ip, family, port, &v)) throw Napi::TypeError::New(env, "not an IP literal: " + ip);
    vteps.push_back(v);
  }
  ctx.mirror.SetFloodList(info[0].As<Napi::Number>().Uint32Value(), std::move(vteps));
}

void NapiSetSourcePolicy(Context& ctx, const Napi::CallbackInfo& info, int family) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsArray() || !info[3].IsArray()) {
    throw Napi::TypeError::New(env, "setSourcePolicy(vni, mode, named[], cidrs[])");
  }
  auto strings = [](Napi::Array a) {
    std::vector<std::string> out;
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).ToString().Utf8Value());
    return out;
  };
  auto policy = std::make_shared<SourcePolicy>();
  bool rangeError = false;
  const std::string err = BuildSourcePolicy(info[1].As<Napi::String>().Utf8Value(), strings(info[2].As<Napi::Array>()),
                                            strings(info[3].As<Napi::Array>()), family, policy.get(), &rangeError);
  if (!err.empty()) {
    if (rangeError) throw Napi::RangeError::New(env, err);
    throw Napi::TypeError::New(env, err);
  }
  ctx.SetPolicy(info[0].As<Napi::Number>().Uint32Value(), std::move(policy));
}

namespace {

/** An IP literal as the neighbour mirror keys it (IPv4 v4-mapped). */
NeighIp NeighIpOf(Napi::Env env, const Napi::Value& v) {
  const std::string text = v.ToString().Utf8Value();
  NeighIp ip{};
  struct in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    ip[10] = ip[11] = 0xff;
    memcpy(ip.data() + 12, &a4, 4);
  } else if (inet_pton(AF_INET6, text.c_str(), ip.data()) != 1) {
    throw Napi::TypeError::New(env, "not an IP literal: " + text);
  }
  return ip;
}

}  // namespace

void NapiNeighSet(Context& ctx, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "neighSet(vni, ip, macKey)");
  }
  ctx.neighbours.Set(info[0].As<Napi::Number>().Uint32Value(), NeighIpOf(env, info[1]),
                     static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()));
}

Napi::Value NapiNeighDelete(Context& ctx, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) throw Napi::TypeError::New(env, "neighDelete(vni, ip)");
  return Napi::Boolean::New(env, ctx.neighbours.Delete(info[0].As<Napi::Number>().Uint32Value(), NeighIpOf(env, info[1])));
}

Network NapiNetworkOf(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + ": {vni, mtu, ownMac}");
  Napi::Object o = v.As<Napi::Object>();
  const int64_t vni = o.Get("vni").ToNumber().Int64Value();
  const int64_t mtu = o.Get("mtu").ToNumber().Int64Value();
  Napi::Value mac = o.Get("ownMac");
  if (vni < 0 || vni > kVniMax || mtu < kMtuMinBytes || mtu > kMtuMaxBytes) {
    throw Napi::RangeError::New(env, std::string(what) + ": vni or mtu out of range");
  }
  if (!mac.IsBuffer() || mac.As<Napi::Buffer<uint8_t>>().Length() != 6) {
    throw Napi::TypeError::New(env, std::string(what) + ": ownMac must be a 6-byte Buffer");
  }
  Network n;
  n.vni = static_cast<uint32_t>(vni);
  n.mtuBytes = static_cast<size_t>(mtu);
  n.ownMac = offload::MacAt(mac.As<Napi::Buffer<uint8_t>>().Data());
  return n;
}

namespace {

/** Codes of PacketCore.classifyRx besides drop reasons (>= 0)... */
constexpr int kCodeDeliver = -1;
constexpr int kCodeDeliverLearn = -2;
/** ...and of classifyTx. */
constexpr int kCodeUnicast = -1;
constexpr int kCodeFlood = -2;
constexpr int kCodeArpReply = -3;
constexpr int kCodeNdReply = -4;
constexpr int kCodeIcmpReply = -5;
/** Longest IP literal of a sender (IPv6 with zone). */
constexpr size_t kMaxAddressChars = 64;

/** The dgram path's core: a Context (any number of networks) and one
 *  RxReader over it.
 *  new PacketCore({family: 4|6, dstPort}, out: Float64Array(2)) sets this.result = out.
 *  addNetwork({vni, mtu, ownMac}): false when the VNI is served already.
 *  removeNetwork(vni): drops it with its mirror entries; false when unknown.
 *  classifyRx(datagram, fromAddress, nowMs): a drop reason, or -1 deliver,
 *  -2 deliver and offer (vni, mac) = (out[0], out[1]) for learning; out[0]
 *  is the datagram's VNI (the network's, or for rx_wrong_vni the foreign one).
 *  classifyTx(vni, buffer, offsets, lengths, count, codes, nowMs): for each
 *  frame buffer[offsets[i], +lengths[i]) read from network vni's TAP,
 *  codes[i] = a drop reason, -1 unicast (the mirror knows its destination
 *  MAC), -2 flood, or (suppression on) -3 / -4: the frame is now the ARP
 *  reply / neighbour advertisement to write back to the TAP, lengths[i] its
 *  length, or -5: the frame was oversize (count tx_oversize) and is now the
 *  ICMP too-big reply (core_pmtu.h) to write back to the TAP. capacity (optional, default lengths[i]): bytes each frame may
 *  grow to in place. flowSlots (optional Uint32Array): for a frame to send,
 *  flowSlots[i] = its send socket slot, core::FlowSlot(FlowHash(frame)).
 *  flowSlot(frame): the same for one frame.
 *  rxTapWriteDrop(errno): the drop reason of a frame the TAP write refused
 *  with errno (RxTapWriteDrop, as the engine counts it).
 *  Nothing is allocated per call. */
class PacketCore : public Napi::ObjectWrap<PacketCore>, public CoreSetters<PacketCore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    std::vector<Napi::ClassPropertyDescriptor<PacketCore>> props{InstanceMethod<&PacketCore::ClassifyRx>("classifyRx"),
                                                          InstanceMethod<&PacketCore::ClassifyTx>("classifyTx"),
                                                          InstanceMethod<&PacketCore::AddNetwork>("addNetwork"),
                                                          InstanceMethod<&PacketCore::RemoveNetwork>("removeNetwork"),
                                                          InstanceMethod<&PacketCore::RxTapWriteDropOf>("rxTapWriteDrop"),
                                                          InstanceMethod<&PacketCore::FlowSlotOf>("flowSlot")};
    AddMethods(&props);
    return DefineClass(env, "PacketCore", props);
  }

  Context& CoreContext() { return *ctx_; }
  int CoreFamily() const { return family_; }
  uint16_t CorePort() const { return port_; }

  explicit PacketCore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketCore>(info), ctx_(std::make_unique<Context>()), reader_(ctx_.get()) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsTypedArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[1].As<Napi::Float64Array>().ElementLength() < 2) {
      throw Napi::TypeError::New(env, "PacketCore({family, dstPort}, out: Float64Array(2))");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    family_ = o.Get("family").ToNumber().Int32Value() == 6 ? AF_INET6 : AF_INET;
    port_ = static_cast<uint16_t>(o.Get("dstPort").ToNumber().Uint32Value());
    out_ = Napi::Persistent(info[1].As<Napi::Float64Array>());
    outData_ = out_.Value().Data();
    info.This().As<Napi::Object>().Set("result", info[1]);
  }

 private:
  Napi::Value AddNetwork(const Napi::CallbackInfo& info) {
    Network n = NapiNetworkOf(info.Env(), info[0], "addNetwork");
    return Napi::Boolean::New(info.Env(), ctx_->AddNetwork(std::move(n), nullptr));
  }

  Napi::Value RemoveNetwork(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "removeNetwork(vni)");
    return Napi::Boolean::New(info.Env(), ctx_->RemoveNetwork(info[0].As<Napi::Number>().Uint32Value(), nullptr));
  }

  Napi::Value ClassifyRx(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsString() || !info[2].IsNumber()) {
      throw Napi::TypeError::New(env, "classifyRx(datagram, fromAddress, nowMs)");
    }
    auto d = info[0].As<Napi::Buffer<uint8_t>>();
    char ip[kMaxAddressChars];
    size_t n = 0;
    napi_get_value_string_utf8(env, info[1], ip, sizeof(ip), &n);
    Vtep from;
    if (!ParseVtep(ip, family_, port_, &from)) throw Napi::TypeError::New(env, std::string("not an IP literal: ") + ip);
    reader_.BeginBatch();
    RxResult r;
    // node:dgram hands over no outer TOS: no ECN decapsulation on this path.
    reader_.Classify(d.Data(), d.Length(), from, info[2].As<Napi::Number>().Int64Value(), -1, &r);
    outData_[0] = r.vni;
    if (r.drop >= 0) return Napi::Number::New(env, r.drop);
    outData_[1] = static_cast<double>(r.srcMac);
    return Napi::Number::New(env, r.learn ? kCodeDeliverLearn : kCodeDeliver);
  }

  Napi::Value FlowSlotOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "flowSlot(frame)");
    auto f = info[0].As<Napi::Buffer<uint8_t>>();
    return Napi::Number::New(env, FlowSlot(FlowHash(f.Data(), f.Length())));
  }

  Napi::Value RxTapWriteDropOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "rxTapWriteDrop(errno)");
    return Napi::Number::New(env, RxTapWriteDrop(info[0].As<Napi::Number>().Int32Value()));
  }

  static bool IsArrayOf(const Napi::Value& v, napi_typedarray_type type) {
    return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
  }

  Napi::Value ClassifyTx(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 7 || !info[0].IsNumber() || !info[1].IsBuffer() || !IsArrayOf(info[2], napi_uint32_array) ||
        !IsArrayOf(info[3], napi_uint32_array) || !info[4].IsNumber() || !IsArrayOf(info[5], napi_int32_array) ||
        !info[6].IsNumber() || (info.Length() > 7 && !info[7].IsNumber() && !info[7].IsUndefined())) {
      throw Napi::TypeError::New(env, "classifyTx(vni, buffer, offsets: Uint32Array, lengths: Uint32Array, count, codes: Int32Array, nowMs, capacity?)");
    }
    const uint32_t vni = info[0].As<Napi::Number>().Uint32Value();
    auto buf = info[1].As<Napi::Buffer<uint8_t>>();
    auto offsets = info[2].As<Napi::Uint32Array>();
    auto lengths = info[3].As<Napi::Uint32Array>();
    auto codes = info[5].As<Napi::Int32Array>();
    const size_t count = info[4].As<Napi::Number>().Uint32Value();
    if (count > offsets.ElementLength() || count > lengths.ElementLength() || count > codes.ElementLength()) {
      throw Napi::RangeError::New(env, "classifyTx: count exceeds an array");
    }
    const int64_t nowMs = info[6].As<Napi::Number>().Int64Value();
    const size_t capacity = info.Length() > 7 && info[7].IsNumber() ? info[7].As<Napi::Number>().Uint32Value() : 0;
    uint32_t* flowSlots = nullptr;
    if (info.Length() > 8 && !info[8].IsUndefined()) {
      if (!IsArrayOf(info[8], napi_uint32_array) || info[8].As<Napi::Uint32Array>().ElementLength() < count) {
        throw Napi::TypeError::New(env, "classifyTx: flowSlots must be a Uint32Array of count entries at least");
      }
      flowSlots = info[8].As<Napi::Uint32Array>().Data();
    }
    reader_.BeginBatch();
    const Network* net = reader_.Table().Find(vni);
    if (net == nullptr) throw Napi::RangeError::New(env, "classifyTx: no network has vni " + std::to_string(vni));
    const size_t maxUntagged = offload::kEthHeaderBytes + net->mtuBytes;
    const bool allowVlan = net->allowVlan;
    const struct virtio_net_hdr none = {};  // the dgram path's TAP has no offloads
    for (size_t i = 0; i < count; i++) {
      const size_t off = offsets[i];
      const size_t len = lengths[i];
      if (off > buf.Length() || len > buf.Length() - off) throw Napi::RangeError::New(env, "classifyTx: frame outside the buffer");
      uint8_t* frame = buf.Data() + off;
      int code = TxFrameDrop(none, frame, len, maxUntagged, allowVlan);
      size_t replyBytes = 0;
      if (code == kTxOversize && PmtuReply(*net->icmpBudget, net->mtuBytes, frame, len, nowMs, &replyBytes) == kPmtuReplied) {
        lengths[i] = static_cast<uint32_t>(replyBytes);
        codes[i] = kCodeIcmpReply;
        continue;
      }
      if (code < 0 && net->suppress) {
        const size_t room = std::min(std::min(std::max(capacity, len), buf.Length() - off), maxUntagged);
        const SuppressVerdict v = SuppressReply(ctx_->neighbours, net->vni, frame, len, room, &replyBytes);
        if (v != kNotSuppressed) {
          lengths[i] = static_cast<uint32_t>(replyBytes);
          codes[i] = v == kArpReplied ? kCodeArpReply : kCodeNdReply;
          continue;
        }
      }
      if (code < 0) {
        TxDests to;
        TxDestinations(*ctx_, net->vni, frame, nowMs, 0, nullptr, &to);
        code = to.count == 0 ? kTxNoDestination : to.flooded ? kCodeFlood : kCodeUnicast;
        if (flowSlots != nullptr) flowSlots[i] = FlowSlot(FlowHash(frame, len));
      }
      codes[i] = code;
    }
    return env.Undefined();
  }

  std::unique_ptr<Context> ctx_;
  RxReader reader_;
  int family_ = AF_INET;
  uint16_t port_ = 0;
  Napi::Reference<Napi::Float64Array> out_;
  double* outData_ = nullptr;
};

}  // namespace

/** srcPortCandidate(minPort, maxPort, slot, attempt): core::SrcPortCandidate. */
static Napi::Value SrcPortCandidateOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; i++) {
    if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(env, "srcPortCandidate(minPort, maxPort, slot, attempt)");
  }
  const uint32_t minPort = info[0].As<Napi::Number>().Uint32Value();
  const uint32_t maxPort = info[1].As<Napi::Number>().Uint32Value();
  if (minPort < 1 || maxPort > 65535 || minPort > maxPort) throw Napi::RangeError::New(env, "srcPortCandidate: ports must be 1..65535, min <= max");
  return Napi::Number::New(env, SrcPortCandidate(static_cast<uint16_t>(minPort), static_cast<uint16_t>(maxPort),
                                                 info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value()));
}

void InitCore(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketCore", PacketCore::Define(env));
  exports.Set("srcPortCandidate", Napi::Function::New(env, SrcPortCandidateOf, "srcPortCandidate"));
}

}  // namespace core
}  // namespace vxland
