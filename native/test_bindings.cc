// Bindings that only tests load (build/Release/vxland_test.node, never
// loaded by src/): what a test needs to stand in for the kernel around the
// production engine.
//
//   seqpacketPair() -> [engineEnd, peerEnd]
//       socketpair(AF_UNIX, SOCK_SEQPACKET), both ends non-blocking and
//       close-on-exec: one message per frame, as a TAP reads and writes.
//       engineEnd goes to NativeEngine.openWith({ tapFd }) (src/io/engine.ts);
//       the test reads and writes peerEnd (fs.readSync/writeSync) and
//       closes it. Throws an Error with code/errno/syscall (errors.h).
//   shutdownRead(fd)
//       shutdown(fd, SHUT_RD) on peerEnd: the engine's writes to engineEnd
//       then fail with EPIPE (a TAP refusing frames), its reads still work.
//   engineSegmentForTest(vnetHdrAndFrame: Buffer, mtu) -> Buffer[] | number (kSplit* error)
//       the engine's TSO split (engine_offload.h) as its tx worker runs it
//   engineCoalesceForTest(frames: Buffer[], udp?) -> [{ hdr: {...}, frame: Buffer, count, first }]
//       the engine's GRO plan (engine_offload.h) as its rx worker runs it
//       (udp: for a TAP that took TUN_F_USO4/6)
//   engineTxDropForTest(vnetHdrAndFrame, mtu, allowVlan) -> drop reason name | null
//       the packet core's frame checks (core_tx.h TxFrameDrop)
//   coreOuterTosForTest(tosSetting (-1 = inherit), frame) -> outer TOS byte
//   coreDecapEcnForTest(outerTos, frame) -> drop reason name | null; frame
//       changed in place as delivered (core_ecn.h)

#include <napi.h>
#include <string.h>
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "core_ecn.h"
#include "core_tx.h"
#include "drop_reasons.h"
#include "engine_core.h"
#include "engine_offload.h"
#include "errors.h"

namespace vxland {
namespace engine {
namespace {

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
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "engineCoalesceForTest(frames[], udp?)");
  const bool udp = info.Length() > 1 && info[1].ToBoolean().Value();
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
  const uint32_t nw = offload::GroPlan(frames.data(), n, next.data(), writes.data(), kMaxSegs, udp);
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
}  // namespace engine
}  // namespace vxland

namespace {

Napi::Value SeqpacketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    vxland::ThrowSysError(env, errno, "socketpair", "");
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

Napi::Value ShutdownRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "shutdownRead(fd)");
  if (shutdown(info[0].As<Napi::Number>().Int32Value(), SHUT_RD) < 0) vxland::ThrowSysError(env, errno, "shutdown", "");
  return env.Undefined();
}

Napi::Value OuterTosForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "coreOuterTosForTest(tos, frame)");
  auto frame = info[1].As<Napi::Buffer<uint8_t>>();
  return Napi::Number::New(env, vxland::core::OuterTos(info[0].As<Napi::Number>().Int32Value(), frame.Data(), frame.Length()));
}

Napi::Value DecapEcnForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "coreDecapEcnForTest(outerTos, frame)");
  auto frame = info[1].As<Napi::Buffer<uint8_t>>();
  const int drop = vxland::core::DecapEcn(info[0].As<Napi::Number>().Int32Value(), frame.Data(), frame.Length());
  return drop < 0 ? env.Null() : Napi::String::New(env, vxland::kDropReasonNames[drop]);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace vxland::engine;
  exports.Set("seqpacketPair", Napi::Function::New(env, SeqpacketPair, "seqpacketPair"));
  exports.Set("shutdownRead", Napi::Function::New(env, ShutdownRead, "shutdownRead"));
  exports.Set("engineSegmentForTest", Napi::Function::New(env, SegmentForTest, "engineSegmentForTest"));
  exports.Set("engineCoalesceForTest", Napi::Function::New(env, CoalesceForTest, "engineCoalesceForTest"));
  exports.Set("engineTxDropForTest", Napi::Function::New(env, TxDropForTest, "engineTxDropForTest"));
  exports.Set("coreOuterTosForTest", Napi::Function::New(env, OuterTosForTest, "coreOuterTosForTest"));
  exports.Set("coreDecapEcnForTest", Napi::Function::New(env, DecapEcnForTest, "coreDecapEcnForTest"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vxland_test, Init)
