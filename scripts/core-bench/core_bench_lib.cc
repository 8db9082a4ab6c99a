// scripts/core-bench.sh: the packet core's per-packet rules in a loop, inside a
// shared object built as the addon is (-fPIC -shared), so that the build
// flags' effect on the calls between them (PLT or direct, inlined or not)
// shows. rx: RxReader::Classify on a 64-byte frame from a known MAC (the
// mirror and source policy checked, no learning offer); tx: TxFrameDrop then
// TxDestinations for a frame to a known MAC.
#include <arpa/inet.h>
#include <cstring>
#include <vector>
#include "core_rx.h"
#include "core_tx.h"
using namespace vxland;
extern "C" __attribute__((visibility("default"))) uint64_t RunRx(int iters) {
  core::Network net{42, 1450, 0x020000000001ull};
  core::Context ctx; uint32_t slot; ctx.AddNetwork(net, &slot);
  auto pol = std::make_shared<core::SourcePolicy>(); pol->mode = core::SourcePolicy::kAny; ctx.SetPolicy(42, pol);
  core::RxReader reader(&ctx);
  Vtep from; ParseVtep("198.18.0.2", AF_INET, 4789, &from);
  ctx.mirror.Set(42, 0x0200000000aaull, from, false);
  std::vector<uint8_t> d(8 + 14 + 64);
  d[0] = 0x08; d[4] = 0; d[5] = 0; d[6] = 42;
  const uint8_t dst[6] = {2,0,0,0,0,1}, src[6] = {2,0,0,0,0,0xaa};
  memcpy(&d[8], dst, 6); memcpy(&d[14], src, 6); d[20] = 0x08; d[21] = 0;
  uint64_t acc = 0;
  for (int i = 0; i < iters; i++) {
    reader.BeginBatch();
    for (int k = 0; k < 64; k++) {
      core::RxResult r;
      reader.Classify(d.data(), d.size(), from, 1000 + i / 1000, -1, &r);
      acc += r.frameBytes + r.drop;
    }
  }
  return acc;
}
extern "C" __attribute__((visibility("default"))) uint64_t RunTx(int iters) {
  core::Network net{42, 1450, 0x020000000001ull};
  core::Context ctx; uint32_t slot; ctx.AddNetwork(net, &slot);
  Vtep to; ParseVtep("198.18.0.2", AF_INET, 4789, &to);
  ctx.mirror.Set(42, 0x0200000000aaull, to, false);
  std::vector<uint8_t> f(14 + 64);
  const uint8_t dst[6] = {2,0,0,0,0,0xaa}, src[6] = {2,0,0,0,0,1};
  memcpy(&f[0], dst, 6); memcpy(&f[6], src, 6); f[12] = 0x08; f[13] = 0;
  struct virtio_net_hdr none = {};
  uint64_t acc = 0;
  for (int i = 0; i < iters * 64; i++) {
    int drop = core::TxFrameDrop(none, f.data(), f.size(), 14 + 1450, false);
    core::TxDests td; bool due = false;
    core::TxDestinations(ctx, 42, f.data(), 1000, 1000, &due, &td);
    acc += drop + td.count;
  }
  return acc;
}
