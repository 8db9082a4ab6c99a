// libFuzzer harness: offload::GroPlan, the rx path's coalescing of received
// TCP segments into TSO writes and of UDP datagrams into USO (GSO_UDP_L4)
// writes to the TAP (Engine::WriteTap).
//
// Every input is planned on fresh copies of its frames three ways: udp=false
// (a TAP without TUN_F_USO4/6) and udp=true with maxSegs from the options
// byte, and, when that is 64 (the engine's kMaxSegs), udp=true with maxSegs
// 4096 (UDP writes must still stop at 64 datagrams).
//
// Input layout (missing bytes read as 0; unchanged by UDP support):
//   [0] options: bits 0-5 maxSegs - 1 (1..64); bit 6: template mode;
//       bit 7: fix up every raw frame (lengths and checksums made valid)
//   raw mode, then up to 256 records:
//       [u16 LE length][u8 per-frame flags: bit 0 fix up][length bytes]
//   template mode (a TCP stream, or a UDP flow when the template frame is
//   UDP, cut into segments / datagrams, then tweaked):
//       [u8 segments - 1][u16 LE payload bytes per segment] (at most
//       192 KiB in all: segments are halved until they fit)
//       [u8 tweaks] tweaks * [u8 frame][u16 LE offset][u8 xor]
//                           [u8 how: bit 0 fix up afterwards, bit 1
//                            truncate the frame at offset instead of xor]
//       rest: the template frame (headers + payload, repeated as needed;
//       TCP: sequence numbers count up from its own, UDP: no sequence;
//       IPv4 IDs count up from its own; every frame fixed up). A truncating
//       tweak with fix-up on the last datagram makes a shorter last one.
//   The fix-up (fuzz_common.h FixUp: IP and UDP lengths, IPv4 header and
//   TCP/UDP checksums, a computed UDP 0 sent as 0xffff) is what a real
//   sender does; without it the fuzzer would rarely get past checksum
//   verification.
//
// Checked beyond ASan/UBSan: every frame is written exactly once, frames of
// one flow in order; a write's chain, count (<= maxSegs), hdrLen and bytes
// agree with the frames (no length underflow in the engine's iovecs); single
// writes carry unmodified frames and an all-zero header; a coalesced write is
// a well-formed TSO/USO super-frame (IP length <= 65535, IP length fields,
// IPv4 header checksum, IHL 20; UDP: UDP length field = 8 + all payload, at
// most 64 datagrams; the CHECKSUM_PARTIAL pseudo-header sum in the TCP/UDP
// checksum field; virtio_net_hdr NEEDS_CSUM, gso_type TCPV4/TCPV6/UDP_L4,
// hdr_len, gso_size = the first payload, csum_start = l4, csum_offset 16/6;
// every member but the last of gso_size payload bytes, the last no longer),
// every member had a valid (UDP: nonzero) checksum, and TsoSplit of the
// write gives back exactly the original segments (TCP: byte for byte but the
// checksum and urgent pointer; UDP: byte for byte, the checksum too: a valid
// nonzero one is unique). With udp=false no UDP write is ever coalesced.
#include <map>
#include <string>

#include "fuzz_common.h"

// Checks for findings that were fixed in engine_offload.cc (see
// test/fuzz/README.md, "Fixed findings"); each has a finding-* input in the
// corpus. They are on by default; -DFUZZ_STRICT=0 (FUZZ_STRICT=0 bash
// scripts/fuzz.sh) turns them off, e.g. to bisect an older engine:
//  - IPV4_CSUM: a segment whose IPv4 header checksum is wrong must not be
//    coalesced (its header would be rewritten with a valid checksum).
//  - TCP_RESERVED: segments whose TCP byte 12 (data offset, reserved and AE
//    bits) differs must not be merged (the later segments' bits are lost).
//  - ORDER: frames of a held flow that the coalescer cannot merge (IP
//    options, a first fragment with MF set) must not overtake it.
#ifndef FUZZ_STRICT
#define FUZZ_STRICT 1
#endif
#ifndef FUZZ_STRICT_IPV4_CSUM
#define FUZZ_STRICT_IPV4_CSUM FUZZ_STRICT
#endif
#ifndef FUZZ_STRICT_TCP_RESERVED
#define FUZZ_STRICT_TCP_RESERVED FUZZ_STRICT
#endif
#ifndef FUZZ_STRICT_ORDER
#define FUZZ_STRICT_ORDER FUZZ_STRICT
#endif

using namespace vxland::offload;

namespace {

/** Flow identity for the order check, independent of the engine: L2 header,
 *  addresses, protocol (TCP/UDP), ports (IPv4 fragments with the L4 header
 *  included). */
bool FlowKey(const uint8_t* f, size_t len, std::string* key) {
  fuzz::Hdrs h = fuzz::ParseLoose(f, len);
  if (!h.ok || h.ipEnd > len || h.ipEnd < h.hdrLen) return false;
  key->clear();
  if (!h.v6 && (Get16(f + h.l3 + 6) & 0x1fff) != 0) return false;  // no TCP header in a later fragment
  if (!FUZZ_STRICT_ORDER) {
    // Only the frames the coalescer itself parses, flows told apart by l4 too
    // (UDP frames are left out).
    L4Info li;
    if (!ParseTcp(f, len, &li)) return false;
    key->push_back(static_cast<char>(h.l4));
  }
  key->append(reinterpret_cast<const char*>(f), h.l3);
  key->push_back(h.v6 ? '6' : '4');
  key->push_back(h.udp ? 'u' : 't');
  key->append(reinterpret_cast<const char*>(f + h.l3 + (h.v6 ? 8 : 12)), h.v6 ? 32 : 8);
  key->append(reinterpret_cast<const char*>(f + h.l4), 4);
  return true;
}

void Run(const std::vector<std::vector<uint8_t>>& in, uint32_t maxSegs, bool udp) {
  const uint32_t n = static_cast<uint32_t>(in.size());
  std::vector<fuzz::OwnedFrame> owned;
  owned.reserve(n);
  std::vector<GroFrame> frames(n);
  for (uint32_t i = 0; i < n; i++) {
    owned.emplace_back(in[i]);
    frames[i] = GroFrame{owned[i].data, static_cast<uint32_t>(owned[i].len)};
  }
  std::vector<uint32_t> next(n, 0xdeadbeef);
  std::vector<GroWrite> writes(n ? n : 1);
  const uint32_t nw = GroPlan(frames.data(), n, next.data(), writes.data(), maxSegs, udp);
  FUZZ_CHECK(nw <= n, "%u writes for %u frames", nw, n);

  std::vector<int> writeOf(n, -1);
  for (uint32_t w = 0; w < nw; w++) {
    const GroWrite& wr = writes[w];
    FUZZ_CHECK(wr.count >= 1 && wr.count <= maxSegs, "write %u: count %u (maxSegs %u)", w, wr.count, maxSegs);
    FUZZ_CHECK(wr.first < n, "write %u: first %u", w, wr.first);
    uint32_t k = wr.first;
    uint64_t bytes = 0;
    for (uint32_t s = 0; s < wr.count; s++) {
      if (s > 0) {
        const uint32_t nk = next[k];
        FUZZ_CHECK(nk < n && nk > k, "write %u: chain goes from %u to %u", w, k, nk);
        k = nk;
      }
      FUZZ_CHECK(writeOf[k] == -1, "frame %u written twice (writes %d and %u)", k, writeOf[k], w);
      writeOf[k] = static_cast<int>(w);
      FUZZ_CHECK(frames[k].data == owned[k].data && frames[k].len == in[k].size(), "frame %u: descriptor changed", k);
      if (s > 0) {
        FUZZ_CHECK(frames[k].len >= wr.hdrLen, "write %u: frame %u (%u bytes) shorter than hdrLen %u", w, k,
                   frames[k].len, wr.hdrLen);
        FUZZ_CHECK(fuzz::Eq(owned[k].data, in[k].data(), in[k].size()), "frame %u (not first) modified", k);
        bytes += frames[k].len - wr.hdrLen;
      } else {
        bytes += frames[k].len;
      }
    }
    FUZZ_CHECK(wr.bytes == bytes, "write %u: bytes %u, frames add up to %llu", w, wr.bytes,
               static_cast<unsigned long long>(bytes));
    if (wr.count == 1) {
      static const uint8_t zero[sizeof(struct virtio_net_hdr)] = {};
      FUZZ_CHECK(fuzz::Eq(&wr.hdr, zero, sizeof(zero)), "write %u: single frame with a non-zero vnet hdr", w);
      FUZZ_CHECK(fuzz::Eq(owned[wr.first].data, in[wr.first].data(), in[wr.first].size()),
                 "frame %u written alone but modified", wr.first);
    }
  }
  for (uint32_t i = 0; i < n; i++) FUZZ_CHECK(writeOf[i] >= 0, "frame %u never written", i);

  // Frames of one flow are written in their order.
  std::map<std::string, int> lastWrite;
  std::map<std::string, uint32_t> lastFrame;
  for (uint32_t i = 0; i < n; i++) {
    std::string key;
    if (!FlowKey(in[i].data(), in[i].size(), &key)) continue;
    auto it = lastWrite.find(key);
    if (it != lastWrite.end()) {
      FUZZ_CHECK(writeOf[i] >= it->second, "flow reordered: frame %u (write %d) before frame %u (write %d)", i,
                 writeOf[i], lastFrame[key], it->second);
    }
    lastWrite[key] = writeOf[i];
    lastFrame[key] = i;
  }

  // Coalesced writes are valid super-frames that split back into the input.
  for (uint32_t w = 0; w < nw; w++) {
    const GroWrite& wr = writes[w];
    if (wr.count == 1) continue;
    std::vector<uint8_t> sup(owned[wr.first].data, owned[wr.first].data + owned[wr.first].len);
    uint32_t k = wr.first;
    std::vector<uint32_t> members{k};
    for (uint32_t s = 1; s < wr.count; s++) {
      k = next[k];
      members.push_back(k);
      sup.insert(sup.end(), owned[k].data + wr.hdrLen, owned[k].data + owned[k].len);
    }
    FUZZ_CHECK(sup.size() == wr.bytes, "write %u: size", w);
    fuzz::OwnedFrame so(sup);
    const fuzz::Hdrs h = fuzz::ParseLoose(so.data, so.len);
    FUZZ_CHECK(h.ok && h.hdrLen == wr.hdrLen, "write %u: independent parse (ok %d hdrLen %zu, write hdrLen %u)", w,
               h.ok, h.hdrLen, wr.hdrLen);
    FUZZ_CHECK(udp || !h.udp, "write %u: %u UDP datagrams coalesced with udp=false", w, wr.count);
    FUZZ_CHECK(so.len - h.l3 - (h.v6 ? 40 : 0) <= kMaxIpLengthBytes, "write %u: IP length %zu", w, so.len - h.l3);
    FUZZ_CHECK(h.v6 || h.l4 - h.l3 == 20, "write %u: IPv4 options coalesced (IHL %zu)", w, h.l4 - h.l3);
    if (h.udp) {
      FUZZ_CHECK(wr.count <= 64, "write %u: %u UDP datagrams (maxSegs %u)", w, wr.count, maxSegs);
      FUZZ_CHECK(Get16(so.data + h.l3 + (h.v6 ? 4 : 2)) == so.len - (h.v6 ? h.l4 : h.l3),
                 "write %u: IP length field %u for %zu bytes", w, Get16(so.data + h.l3 + (h.v6 ? 4 : 2)), so.len);
      FUZZ_CHECK(Get16(so.data + h.l4 + 4) == so.len - h.l4, "write %u: UDP length field %u, datagram %zu bytes", w,
                 Get16(so.data + h.l4 + 4), so.len - h.l4);
    } else {
      L4Info li;
      FUZZ_CHECK(ParseTcp(so.data, so.len, &li), "write %u: coalesced frame does not parse", w);
      FUZZ_CHECK(li.ipEnd == so.len && li.hdrLen == wr.hdrLen && li.l4 == h.l4,
                 "write %u: ipEnd %zu hdrLen %zu, frame %zu hdrLen %u", w, li.ipEnd, li.hdrLen, so.len, wr.hdrLen);
    }
    if (!h.v6) FUZZ_CHECK(fuzz::Ipv4CsumOk(so.data, h), "write %u: IPv4 header checksum invalid", w);
    const size_t co = fuzz::CsumOffset(h);
    const uint32_t pseudo = fuzz::Pseudo(so.data, h, so.len - h.l4);
    const uint16_t field = Get16(so.data + h.l4 + co);
    FUZZ_CHECK(field % 0xffff == pseudo % 0xffff, "write %u: partial checksum 0x%04x, pseudo-header sum 0x%04x", w,
               field, pseudo);
    const struct virtio_net_hdr& vh = wr.hdr;
    const uint8_t gso = h.udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : h.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
    FUZZ_CHECK(vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && vh.gso_type == gso && vh.hdr_len == wr.hdrLen &&
                   vh.csum_start == h.l4 && vh.csum_offset == co,
               "write %u: vnet hdr flags %u gso %u hdr_len %u csum %u/%u (%s)", w, vh.flags, vh.gso_type, vh.hdr_len,
               vh.csum_start, vh.csum_offset, h.udp ? "UDP" : "TCP");
    const size_t mss = vh.gso_size;
    FUZZ_CHECK(mss > 0 && mss == in[wr.first].size() - wr.hdrLen, "write %u: gso_size %zu, first payload %zu", w, mss,
               in[wr.first].size() - wr.hdrLen);
    for (uint32_t s = 1; s < wr.count; s++) {
      const size_t p = in[members[s]].size() - wr.hdrLen;
      FUZZ_CHECK(p <= mss && (s + 1 == wr.count || p == mss), "write %u member %u: payload %zu, gso_size %zu", w, s, p,
                 mss);
    }

    // Round trip through the splitter (room for one segment more than
    // coalesced, so that splitting into too many is seen).
    const size_t room = static_cast<size_t>(wr.count) + 1;
    std::vector<uint8_t> out(room * (8 + wr.hdrLen + mss));
    std::vector<uint32_t> segLens(room);
    const int segs = TsoSplit(so.data, so.len, vh, 1 << 20, out.data(), out.size(), 8, segLens.data(),
                              static_cast<int>(room));
    FUZZ_CHECK(segs == static_cast<int>(wr.count), "write %u: split into %d, coalesced %u", w, segs, wr.count);
    const size_t stride = 8 + segLens[0];
    for (int s = 0; s < segs; s++) {
      const std::vector<uint8_t>& orig = in[members[s]];
      const uint8_t* seg = out.data() + s * stride + 8;
      FUZZ_CHECK(segLens[s] == orig.size(), "write %u segment %d: %u bytes, original %zu", w, s, segLens[s], orig.size());
      for (size_t b = 0; b < orig.size(); b++) {
        if (!h.udp) {
          if (b == h.l4 + 16 || b == h.l4 + 17) continue;  // equivalent checksums may differ (0 vs 0xffff)
          if (b == h.l4 + 18 || b == h.l4 + 19) continue;  // urgent pointer: meaningless without URG (not coalesced)
        }
        if (!FUZZ_STRICT_IPV4_CSUM && !h.v6 && (b == h.l3 + 10 || b == h.l3 + 11)) continue;
        if (!FUZZ_STRICT_TCP_RESERVED && !h.udp && b == h.l4 + 12) {
          FUZZ_CHECK(seg[b] >> 4 == orig[b] >> 4, "write %u segment %d: data offset changed", w, s);
          continue;
        }
        FUZZ_CHECK(seg[b] == orig[b], "write %u segment %d (frame %u, %s): byte %zu is 0x%02x, was 0x%02x", w, s,
                   members[s], h.udp ? "UDP" : "TCP", b, seg[b], orig[b]);
      }
      FUZZ_CHECK(fuzz::L4CsumOk(orig.data(), h, orig.size()), "frame %u coalesced with an invalid %s checksum",
                 members[s], h.udp ? "(or zero) UDP" : "TCP");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader r(data, size);
  const uint8_t opts = r.U8();
  const uint32_t maxSegs = (opts & 0x3f) + 1u;
  std::vector<std::vector<uint8_t>> in;
  if ((opts & 0x40) == 0) {
    while (r.Left() > 0 && in.size() < 256) {
      const size_t len = r.U16();
      const uint8_t fl = r.U8();
      in.push_back(r.Bytes(len));
      if ((fl & 1) || (opts & 0x80)) fuzz::FixUp(in.back().data(), in.back().size());
    }
  } else {
    size_t nseg = r.U8() + 1u;
    const size_t mss = r.U16();
    // Enough to pass the 64 KiB IP length limit and maxSegs; more only slows.
    while (nseg > 1 && nseg * mss > 192 * 1024) nseg /= 2;
    const size_t ntweaks = r.U8();
    struct Tweak {
      uint8_t frame;
      uint16_t off;
      uint8_t x;
      uint8_t how;
    };
    std::vector<Tweak> tweaks;
    for (size_t i = 0; i < ntweaks && r.Left() > 0; i++) {
      Tweak t;
      t.frame = r.U8();
      t.off = r.U16();
      t.x = r.U8();
      t.how = r.U8();
      tweaks.push_back(t);
    }
    std::vector<uint8_t> tmpl = r.Rest();
    fuzz::Hdrs h = fuzz::ParseLoose(tmpl.data(), tmpl.size());
    if (!h.ok) return 0;
    const std::vector<uint8_t> src(tmpl.begin() + h.hdrLen, tmpl.end());
    const uint32_t seq0 = h.udp ? 0 : Get32(tmpl.data() + h.l4 + 4);
    const uint16_t id0 = h.v6 ? 0 : Get16(tmpl.data() + h.l3 + 4);
    for (size_t i = 0; i < nseg; i++) {
      std::vector<uint8_t> f(tmpl.begin(), tmpl.begin() + h.hdrLen);
      for (size_t b = 0; b < mss; b++) f.push_back(src.empty() ? static_cast<uint8_t>(b) : src[(i * mss + b) % src.size()]);
      if (!h.udp) Put32(f.data() + h.l4 + 4, seq0 + static_cast<uint32_t>(i * mss));
      if (!h.v6) Put16(f.data() + h.l3 + 4, static_cast<uint16_t>(id0 + i));
      fuzz::FixUp(f.data(), f.size());
      in.push_back(std::move(f));
    }
    for (const Tweak& t : tweaks) {
      std::vector<uint8_t>& f = in[t.frame % in.size()];
      if (f.empty()) continue;
      if (t.how & 2) {
        f.resize(t.off % (f.size() + 1));
      } else {
        f[t.off % f.size()] ^= t.x;
      }
      if (t.how & 1) fuzz::FixUp(f.data(), f.size());
    }
  }
  Run(in, maxSegs, false);
  Run(in, maxSegs, true);
  if (maxSegs == 64) Run(in, 4096, true);
  return 0;
}
