// libFuzzer harness: the tx path's offload work on one TAP read, as
// Engine::Forward (native/engine_tx.cc) does it: a virtio_net_hdr and a
// frame; GSO frames (TCPV4/TCPV6 TSO, UDP_L4 USO from a sender using
// UDP_SEGMENT) go through offload::TsoSplitHeaders (what the engine calls:
// headers per segment, payload left in the frame) and offload::TsoSplit (the
// copying variant), each checked on its own; others with NEEDS_CSUM through
// offload::CompleteChecksum.
//
// Input layout (every field optional: missing bytes read as 0):
//   [0..10)  struct virtio_net_hdr (little-endian, as the TAP gives it)
//   [10..12) MTU (u16 LE); the frame limit is 14 + MTU (+4 when tagged),
//            as in the engine
//   [12]     options: bits 0-5 maxSegs - 1 (1..64);
//            bit 6: tight output buffer (size from the next u16 * 4)
//                   instead of the engine's (TsoSplitHeaders: 64 * 168
//                   bytes; TsoSplit: frame + 64 * 168 bytes);
//            bit 7: inflate: the frame is repeated to the length in the
//                   next u16 + 1 (large super-frames from small inputs)
//   [..]     u16 fields named by options, in the order above
//   rest     the frame (Ethernet, no FCS; TCP or UDP)
//
// Checked beyond ASan/UBSan: segment count and layout (TsoSplit's segment s
// at s * (8 + segLens[0]); TsoSplitHeaders' headers at s * (8 + hdrLen), its
// payload at hdrLen + s * mss in the frame, as Engine::Forward sends it),
// the reported layout, every segment fits the frame limit,
// parses with consistent IP lengths, has valid TCP and IPv4 header
// checksums, consecutive sequence numbers and IPv4 IDs, the flag rules, the
// payload in order, the header otherwise unchanged, the VXLAN prefix room
// untouched; for UDP_L4 (IPv4 or IPv6, the only gso_type a UDP frame may be
// split under, and one a TCP frame may not): each datagram's own IP and UDP
// length fields, a valid nonzero UDP checksum, consecutive IPv4 IDs, the
// ports unchanged, the payloads reassembling to the original; CompleteChecksum's result and the checksum it stores. First,
// the packet core's frame checks (core::TxFrameDrop, what Engine::Forward and
// the dgram path's PacketCore call before anything else), with VLAN tags
// allowed and refused: runt, tag, oversize and bad offload exactly when the
// frame is one.
#include "../../native/core_tx.h"
#include "../../native/drop_reasons.h"
#include "fuzz_common.h"

using namespace vxland::offload;

namespace {

constexpr size_t kPrefix = 8;                      // VXLAN header, as the engine passes
constexpr size_t kSplitOverhead = 64 * (8 + 160);  // engine_core.h kSplitHeaderBytes
constexpr uint8_t kFill = 0xa5;

void CheckComplete(std::vector<uint8_t>& frame, const struct virtio_net_hdr& hdr) {
  const size_t len = frame.size();
  fuzz::OwnedFrame f(frame);
  const size_t cs = hdr.csum_start, co = hdr.csum_offset;
  const bool fits = cs < len && co + 2 <= len - cs;
  const uint16_t oldField = fits ? Get16(f.data + cs + co) : 0;
  const bool r = CompleteChecksum(f.data, f.len, cs, co);
  FUZZ_CHECK(r == fits, "CompleteChecksum returned %d for start %zu offset %zu len %zu", r, cs, co, len);
  if (!r) {
    FUZZ_CHECK(fuzz::Eq(f.data, frame.data(), len), "CompleteChecksum changed a frame it rejected");
    return;
  }
  for (size_t i = 0; i < len; i++) {
    if (i == cs + co || i == cs + co + 1) continue;
    FUZZ_CHECK(f.data[i] == frame[i], "CompleteChecksum changed byte %zu outside the checksum field", i);
  }
  // The field held the pseudo-header sum; with it added back the range must
  // verify. Only meaningful when the field is word-aligned within the range.
  if (co % 2 == 0) {
    const uint32_t s = fuzz::Sum16(f.data + cs, len - cs, oldField);
    FUZZ_CHECK(s == 0xffff, "completed checksum does not verify: sum 0x%04x (start %zu offset %zu len %zu)", s, cs, co,
               len);
  }
}

/** headersOnly: TsoSplitHeaders (outCap bytes for headers), else TsoSplit. */
void CheckSplit(const std::vector<uint8_t>& frame, const struct virtio_net_hdr& hdr, size_t maxFrame, size_t outCap,
                int maxSegs, bool headersOnly) {
  fuzz::OwnedFrame in(frame);
  uint8_t* out = static_cast<uint8_t*>(malloc(outCap ? outCap : 1));
  memset(out, kFill, outCap);
  uint32_t segLens[64];
  memset(segLens, 0, sizeof(segLens));
  TsoLayout layout{0xdeadbeef, 0xdeadbeef};
  const int segs = headersOnly
                       ? TsoSplitHeaders(in.data, in.len, hdr, maxFrame, out, outCap, kPrefix, segLens, maxSegs, &layout)
                       : TsoSplit(in.data, in.len, hdr, maxFrame, out, outCap, kPrefix, segLens, maxSegs);
  // TsoSplitHeaders' segments point into the frame: it must stay as it was.
  FUZZ_CHECK(fuzz::Eq(in.data, frame.data(), frame.size()), "the split modified its input frame");
  FUZZ_CHECK(segs > 0 || segs == kSplitMalformed || segs == kSplitTooBig || segs == kSplitNoRoom,
             "TsoSplit returned %d", segs);
  if (segs <= 0) {
    free(out);
    return;
  }
  FUZZ_CHECK(segs <= maxSegs, "%d segments > maxSegs %d", segs, maxSegs);
  const fuzz::Hdrs h = fuzz::ParseLoose(frame.data(), frame.size());
  FUZZ_CHECK(h.ok, "TsoSplit accepted a frame the independent parser rejects");
  const size_t mss = hdr.gso_size;
  const size_t payload = frame.size() - h.hdrLen;
  const size_t want = payload == 0 ? 1 : (payload + mss - 1) / mss;
  FUZZ_CHECK(static_cast<size_t>(segs) == want, "%d segments, expected %zu (payload %zu mss %zu)", segs, want,
             payload, mss);
  if (headersOnly) {
    FUZZ_CHECK(layout.hdrLen == h.hdrLen && layout.mss == mss, "layout hdrLen %u mss %u, expected %zu %zu",
               layout.hdrLen, layout.mss, h.hdrLen, mss);
  }
  // TsoSplit's segments follow each other at kPrefix + segLens[0];
  // TsoSplitHeaders' headers at kPrefix + hdrLen.
  const size_t stride = kPrefix + (headersOnly ? h.hdrLen : segLens[0]);
  if (segs > 1) FUZZ_CHECK(segLens[0] == h.hdrLen + mss, "segLens[0] %u != hdrLen %zu + mss %zu", segLens[0], h.hdrLen, mss);
  std::vector<uint8_t> joined;  // headers-only: one segment as Engine::Forward sends it (head + payload slice)
  const uint8_t gsoType = hdr.gso_type & 0x7f;
  if (h.udp) {
    FUZZ_CHECK(gsoType == VIRTIO_NET_HDR_GSO_UDP_L4, "gso_type %u accepted for a UDP frame", hdr.gso_type);
  } else {
    FUZZ_CHECK(h.v6 == (gsoType == VIRTIO_NET_HDR_GSO_TCPV6) && gsoType != VIRTIO_NET_HDR_GSO_UDP_L4,
               "gso_type %u accepted for a TCP/%s frame", hdr.gso_type, h.v6 ? "IPv6" : "IPv4");
  }
  const uint32_t seq0 = h.udp ? 0 : Get32(frame.data() + h.l4 + 4);
  const uint16_t id0 = h.v6 ? 0 : Get16(frame.data() + h.l3 + 4);
  const uint8_t flags0 = h.udp ? 0 : frame[h.l4 + 13];
  size_t off = 0;
  for (int i = 0; i < segs; i++) {
    const uint8_t* base = out + static_cast<size_t>(i) * stride;
    for (size_t k = 0; k < kPrefix; k++) FUZZ_CHECK(base[k] == kFill, "segment %d: prefix byte %zu written", i, k);
    const size_t sl = segLens[i];
    const uint8_t* s = base + kPrefix;
    if (headersOnly) {
      FUZZ_CHECK(sl >= h.hdrLen && off + (sl - h.hdrLen) <= payload, "segment %d: payload slice outside the frame", i);
      joined.assign(s, s + h.hdrLen);
      joined.insert(joined.end(), in.data + h.hdrLen + static_cast<size_t>(i) * mss,
                    in.data + h.hdrLen + static_cast<size_t>(i) * mss + (sl - h.hdrLen));
      s = joined.data();
    }
    FUZZ_CHECK(sl <= maxFrame, "segment %d: %zu bytes > frame limit %zu", i, sl, maxFrame);
    FUZZ_CHECK(sl >= h.hdrLen, "segment %d shorter than the headers", i);
    const size_t chunk = sl - h.hdrLen;
    FUZZ_CHECK(chunk <= mss && (i + 1 == segs || chunk == mss), "segment %d: payload %zu (mss %zu)", i, chunk, mss);
    FUZZ_CHECK(fuzz::Eq(s + h.hdrLen, frame.data() + h.hdrLen + off, chunk), "segment %d: payload differs", i);
    // IP length fields (independently of the engine's parser for UDP).
    FUZZ_CHECK(Get16(s + h.l3 + (h.v6 ? 4 : 2)) == sl - (h.v6 ? h.l4 : h.l3), "segment %d: IP length field %u, %zu bytes",
               i, Get16(s + h.l3 + (h.v6 ? 4 : 2)), sl);
    if (h.udp) {
      FUZZ_CHECK(Get16(s + h.l4 + 4) == sl - h.l4, "segment %d: UDP length field %u, datagram %zu bytes", i,
                 Get16(s + h.l4 + 4), sl - h.l4);
      FUZZ_CHECK(fuzz::L4CsumOk(s, h, sl), "segment %d: UDP checksum 0x%04x invalid or zero", i, Get16(s + h.l4 + 6));
    } else {
      L4Info li;
      FUZZ_CHECK(ParseTcp(s, sl, &li), "segment %d does not parse (IP length fields)", i);
      FUZZ_CHECK(li.ipEnd == sl && li.hdrLen == h.hdrLen, "segment %d: ipEnd %zu len %zu", i, li.ipEnd, sl);
      FUZZ_CHECK(fuzz::L4CsumOk(s, h, sl), "segment %d: TCP checksum invalid", i);
    }
    if (!h.v6) {
      FUZZ_CHECK(fuzz::Ipv4CsumOk(s, h), "segment %d: IPv4 header checksum invalid", i);
      FUZZ_CHECK(Get16(s + h.l3 + 4) == static_cast<uint16_t>(id0 + i), "segment %d: IPv4 ID", i);
    }
    if (!h.udp) {
      FUZZ_CHECK(Get32(s + h.l4 + 4) == seq0 + static_cast<uint32_t>(off), "segment %d: sequence number", i);
      uint8_t fl = flags0;
      if (i + 1 != segs) fl &= static_cast<uint8_t>(~0x09);
      if (i != 0) fl &= static_cast<uint8_t>(~0x80);
      FUZZ_CHECK(s[h.l4 + 13] == fl, "segment %d: flags 0x%02x, expected 0x%02x", i, s[h.l4 + 13], fl);
    }
    // Every other header byte is copied unchanged (UDP: the ports; TCP: all
    // but sequence number, flags and checksum).
    for (size_t k = 0; k < h.hdrLen; k++) {
      const bool l4Varies = h.udp ? k >= h.l4 + 4 && k < h.l4 + 8
                                  : (k >= h.l4 + 4 && k < h.l4 + 8) || k == h.l4 + 13 || k == h.l4 + 16 || k == h.l4 + 17;
      const bool varies = l4Varies ||
                          (h.v6 ? (k == h.l3 + 4 || k == h.l3 + 5) : (k >= h.l3 + 2 && k < h.l3 + 6) || k == h.l3 + 10 || k == h.l3 + 11);
      if (!varies) FUZZ_CHECK(s[k] == frame[k], "segment %d: header byte %zu changed", i, k);
    }
    off += chunk;
  }
  FUZZ_CHECK(off == payload, "segments carry %zu of %zu payload bytes", off, payload);
  free(out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader r(data, size);
  struct virtio_net_hdr hdr;
  hdr.flags = r.U8();
  hdr.gso_type = r.U8();
  hdr.hdr_len = r.U16();
  hdr.gso_size = r.U16();
  hdr.csum_start = r.U16();
  hdr.csum_offset = r.U16();
  const size_t mtu = r.U16();
  const uint8_t opts = r.U8();
  const int maxSegs = (opts & 0x3f) + 1;
  const size_t tightCap = (opts & 0x40) ? static_cast<size_t>(r.U16()) * 4 : 0;
  const size_t inflateTo = (opts & 0x80) ? static_cast<size_t>(r.U16()) + 1 : 0;
  std::vector<uint8_t> frame = r.Rest();
  if (inflateTo > frame.size() && !frame.empty()) {
    const size_t n = frame.size();
    frame.resize(inflateTo);
    for (size_t i = n; i < inflateTo; i++) frame[i] = frame[i % n];
  }
  if (frame.size() > 65536 + 64) frame.resize(65536 + 64);  // a TAP read's limit
  const bool tagged = frame.size() >= 14 && (Get16(frame.data() + 12) == 0x8100 || Get16(frame.data() + 12) == 0x88a8);
  const size_t maxFrame = 14 + mtu + (tagged ? 4 : 0);
  for (const bool allowVlan : {false, true}) {
    std::vector<uint8_t> copy = frame;
    const int drop = vxland::core::TxFrameDrop(hdr, copy.data(), copy.size(), 14 + mtu, allowVlan);
    int want = -1;
    if (frame.size() < 14) want = vxland::kTxRunt;
    else if (tagged && !allowVlan) want = vxland::kTxVlanTagged;
    else if (hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE && frame.size() > maxFrame) want = vxland::kTxOversize;
    const bool csumCase = want < 0 && hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE && (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    FUZZ_CHECK(drop == want || (csumCase && drop == vxland::kTxBadOffload), "TxFrameDrop gave %d, expected %d", drop, want);
  }
  if (frame.size() < 14) return 0;  // the engine drops runts before any offload work
  if (hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
    CheckSplit(frame, hdr, maxFrame, (opts & 0x40) ? tightCap : kSplitOverhead, maxSegs, true);
    CheckSplit(frame, hdr, maxFrame, (opts & 0x40) ? tightCap : frame.size() + kSplitOverhead, maxSegs, false);
    return 0;
  }
  if (frame.size() > maxFrame) return 0;
  if (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) CheckComplete(frame, hdr);
  return 0;
}
