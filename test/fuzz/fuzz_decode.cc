// libFuzzer harness: the rx path from received UDP payloads to TAP writes.
//
// The VXLAN decapsulation and validation in Engine::RxLoop
// (native/engine_core.cc) is inline in the thread loop and not callable, so
// DecapModel below MIRRORS it (UDP_GRO splitting, truncation, I flag, VNI,
// oversize, own/bad source MAC; the FDB mirror and learning are left out).
// Keep it in step with RxLoop until the engine exposes a pure function (see
// test/fuzz/README.md). What it exercises for real is the engine code after
// decapsulation: offload::GroPlan over frames laid out as the engine lays
// them out (contiguous inside one receive buffer, each buffer its own
// exact-size allocation so ASan sees reads past a datagram), and the iovec
// arithmetic of Engine::WriteTap.
//
// Input layout (missing bytes read as 0):
//   [u24 VNI][u16 LE MTU][6 bytes own MAC][u8 options: bit 0 no coalescing]
//   then up to 32 messages (one recvmmsg): [u16 LE length][u16 LE UDP_GRO
//   segment size, 0 = none][length bytes: VXLAN header + frame, repeated]
#include "fuzz_common.h"

using namespace vxland::offload;

namespace {

constexpr size_t kVxlanHeaderBytes = 8;
constexpr size_t kEthBytes = 14;
constexpr uint32_t kMaxSegs = 64;      // engine_core.cc
constexpr size_t kRxMaxFrames = 32 * 64;

uint64_t MacAt(const uint8_t* p) {
  return static_cast<uint64_t>(p[0]) << 40 | static_cast<uint64_t>(p[1]) << 32 | static_cast<uint64_t>(p[2]) << 24 |
         static_cast<uint64_t>(p[3]) << 16 | static_cast<uint64_t>(p[4]) << 8 | p[5];
}
bool IsTagged(const uint8_t* frame) {
  const uint16_t type = static_cast<uint16_t>(frame[12] << 8 | frame[13]);
  return type == 0x8100 || type == 0x88a8;
}

/** Mirror of RxLoop's per-datagram checks: the frame, or nullptr (dropped). */
uint8_t* DecapModel(uint8_t* d, size_t dl, uint32_t vni, size_t maxUntagged, uint64_t ownMac, size_t* frameBytes) {
  if (dl < kVxlanHeaderBytes + kEthBytes) return nullptr;      // kRxTruncated
  if ((d[0] & 0x08) == 0) return nullptr;                      // kRxNoIFlag
  const uint32_t v = static_cast<uint32_t>(d[4]) << 16 | static_cast<uint32_t>(d[5]) << 8 | d[6];
  if (v != vni) return nullptr;                                // kRxWrongVni
  uint8_t* frame = d + kVxlanHeaderBytes;
  *frameBytes = dl - kVxlanHeaderBytes;
  if (*frameBytes > maxUntagged + (IsTagged(frame) ? kVlanTagBytes : 0)) return nullptr;  // kRxOversize
  const uint64_t src = MacAt(frame + 6);
  if (src == ownMac) return nullptr;                           // kRxOwnSourceMac
  if (src == 0 || (frame[6] & 0x01) != 0) return nullptr;      // kRxBadSourceMac
  return frame;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader r(data, size);
  const uint32_t vni = r.U24();
  const size_t mtu = r.U16();
  uint8_t macBytes[6];
  for (uint8_t& b : macBytes) b = r.U8();
  const uint64_t ownMac = MacAt(macBytes);
  const bool coalesce = (r.U8() & 1) == 0;
  const size_t maxUntagged = kEthBytes + mtu;

  std::vector<fuzz::OwnedFrame> msgs;
  std::vector<size_t> segBytes;
  while (r.Left() > 0 && msgs.size() < 32) {
    const size_t len = r.U16();
    segBytes.push_back(r.U16());
    msgs.emplace_back(r.Bytes(len));
  }

  std::vector<GroFrame> frames;
  std::vector<std::vector<uint8_t>> copies;  // what each frame held before GroPlan
  for (size_t m = 0; m < msgs.size(); m++) {
    uint8_t* buf = msgs[m].data;
    const size_t len = msgs[m].len;
    size_t seg = segBytes[m];
    if (seg == 0 || seg > len) seg = len;
    for (size_t off = 0; off < len; off += seg) {
      uint8_t* d = buf + off;
      const size_t dl = len - off < seg ? len - off : seg;
      size_t fb = 0;
      uint8_t* frame = DecapModel(d, dl, vni, maxUntagged, ownMac, &fb);
      if (frame == nullptr) continue;
      FUZZ_CHECK(frame >= buf && frame + fb <= buf + len, "decapsulated frame outside its datagram");
      if (frames.size() < kRxMaxFrames) {
        frames.push_back(GroFrame{frame, static_cast<uint32_t>(fb)});
        copies.emplace_back(frame, frame + fb);
      }
    }
  }

  // Engine::WriteTap.
  const uint32_t nf = static_cast<uint32_t>(frames.size());
  std::vector<uint32_t> next(nf);
  std::vector<GroWrite> writes(nf ? nf : 1);
  uint32_t nw;
  if (coalesce) {
    nw = GroPlan(frames.data(), nf, next.data(), writes.data(), kMaxSegs);
  } else {
    for (uint32_t i = 0; i < nf; i++) {
      memset(&writes[i].hdr, 0, sizeof(writes[i].hdr));
      writes[i] = GroWrite{writes[i].hdr, i, 1, 0, frames[i].len};
    }
    nw = nf;
  }
  FUZZ_CHECK(nw <= nf, "%u writes for %u frames", nw, nf);
  uint64_t packets = 0;
  for (uint32_t w = 0; w < nw; w++) {
    const GroWrite& wr = writes[w];
    FUZZ_CHECK(wr.count >= 1 && wr.count <= kMaxSegs && wr.first < nf, "write %u: count %u first %u", w, wr.count,
               wr.first);
    // The TAP write: vnet hdr + first frame + the other frames past hdrLen.
    std::vector<uint8_t> tap(reinterpret_cast<const uint8_t*>(&wr.hdr),
                             reinterpret_cast<const uint8_t*>(&wr.hdr) + kVnetHdrBytes);
    tap.insert(tap.end(), frames[wr.first].data, frames[wr.first].data + frames[wr.first].len);
    uint32_t k = wr.first;
    for (uint32_t s = 1; s < wr.count; s++) {
      k = next[k];
      FUZZ_CHECK(k < nf, "write %u: chain index %u", w, k);
      FUZZ_CHECK(frames[k].len >= wr.hdrLen, "write %u: iovec length underflow (frame %u: %u < hdrLen %u)", w, k,
                 frames[k].len, wr.hdrLen);
      tap.insert(tap.end(), frames[k].data + wr.hdrLen, frames[k].data + frames[k].len);
    }
    FUZZ_CHECK(tap.size() == kVnetHdrBytes + wr.bytes, "write %u: %zu bytes written, bytes says %u", w, tap.size(),
               wr.bytes);
    if (wr.count == 1) {
      FUZZ_CHECK(fuzz::Eq(frames[wr.first].data, copies[wr.first].data(), copies[wr.first].size()),
                 "frame %u written alone but modified", wr.first);
    } else {
      // The kernel accepts a TSO write only if its headers are consistent.
      L4Info li;
      const uint8_t* f = tap.data() + kVnetHdrBytes;
      FUZZ_CHECK(ParseTcp(f, wr.bytes, &li) && li.ipEnd == wr.bytes, "write %u: inconsistent TSO frame", w);
      // Segments must fit what the receiver's TAP MTU allows.
      FUZZ_CHECK(wr.hdrLen + wr.hdr.gso_size <= maxUntagged + (IsTagged(f) ? kVlanTagBytes : 0),
                 "write %u: segment of %u bytes exceeds the MTU", w, wr.hdrLen + wr.hdr.gso_size);
    }
    packets += wr.count;
  }
  FUZZ_CHECK(packets == nf, "%llu packets written of %u frames", static_cast<unsigned long long>(packets), nf);
  return 0;
}
