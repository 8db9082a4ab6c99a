// libFuzzer harness: the rx path from received UDP payloads to TAP writes,
// through the functions the engine's rx worker (native/engine_rx.cc
// RxWorker::Handle, Engine::WriteTap) and the dgram path's PacketCore call:
// offload::SplitRxMessage (UDP_GRO datagrams), core::RxReader::Classify (the
// packet core's rx rules, native/core_rx.h: source policy, VXLAN header, VNI
// -> network, inner frame checks, static-MAC conflict, learning offers),
// offload::GroPlan or PlanSingles, and offload::GroWriteIov (the TAP write's
// iovecs). Each received message is its own exact-size allocation, so ASan
// sees reads past it.
//
// Input layout (missing bytes read as 0):
//   [u24 VNI][u16 LE MTU][6 bytes own MAC][u8 options: bit 0 no coalescing,
//   bit 1 allow VLAN-tagged frames, bit 2 the source policy refuses the
//   sender, bit 3 every source MAC is pinned (static) at another VTEP, bit 4
//   every message arrived with an outer ECN CE (else: outer TOS unknown)]
//   then up to 32 messages (one recvmmsg): [u16 LE length][u16 LE UDP_GRO
//   segment size, 0 = none][length bytes: VXLAN header + frame, repeated]
//
// Checked beyond ASan/UBSan: the datagrams of a message tile it exactly; a
// datagram the core delivers satisfies every rx rule (sender accepted,
// length, I flag, VNI, tag policy, MTU, source MAC neither ours nor group nor
// zero nor pinned elsewhere, not a not-ECT IP packet under an outer CE) and
// its frame is the datagram past the VXLAN header, an ECN-capable inner IP
// packet under an outer CE marked CE with a valid IPv4 header checksum kept
// valid (core_ecn.h); a refused one is refused for a rule it breaks; a source MAC is
// offered for learning exactly once (the mirror stays empty, the clock
// stands still). Every accepted frame is written exactly once; iovecs add up
// to the write's bytes with no underflow; coalesced writes (GroPlan with
// udp=true: a TAP that took TUN_F_USO4/6) are consistent TSO frames, or USO
// ones (GSO_UDP_L4, IP and UDP length fields, at most 64 datagrams), whose
// segments fit the MTU; single writes are unmodified.
#include <set>
#include <utility>

#include "../../native/core_ecn.h"
#include "../../native/core_rx.h"
#include "../../native/drop_reasons.h"
#include "fuzz_common.h"

using namespace vxland::offload;
using vxland::Vtep;
namespace core = vxland::core;

namespace {

constexpr uint32_t kMaxSegs = 64;      // engine_core.h
constexpr size_t kRxMaxFrames = 32 * 64;

struct Rules {
  uint32_t vni;
  size_t mtuBytes;
  uint64_t ownMac;
  bool allowVlan;
  bool refuseSender;
  bool pinElsewhere;
  bool outerCe;
};

/** The inner IP header's offset in frame f and its ECN field, or -1 when f
 *  carries no IPv4/IPv6 header (written here from the frame layout, apart
 *  from the core's parser). */
int InnerEcn(const uint8_t* f, size_t fl, size_t* at) {
  if (fl < 14) return -1;
  size_t off = 12;
  if (Get16(f + 12) == 0x8100 || Get16(f + 12) == 0x88a8) off = 16;
  if (fl < off + 2) return -1;
  const uint16_t type = Get16(f + off);
  *at = off + 2;
  if (type == 0x0800 && fl >= *at + 20 && (f[*at] >> 4) == 4) return f[*at + 1] & 3;
  if (type == 0x86dd && fl >= *at + 40 && (f[*at] >> 4) == 6) return (f[*at + 1] >> 4) & 3;
  return -1;
}

bool Ipv4HeaderValid(const uint8_t* ip) {
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2) s += Get16(ip + i);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s == 0xffff;
}

/** The rules a datagram must meet, as properties (which one is checked first
 *  is the core's business; the harness checks the reason is one it breaks). */
bool Breaks(int reason, const uint8_t* d, size_t dl, const Rules& cfg) {
  const uint8_t* f = d + kVxlanHeaderBytes;
  const bool tagged = dl >= kVxlanHeaderBytes + 14 && (Get16(f + 12) == 0x8100 || Get16(f + 12) == 0x88a8);
  switch (reason) {
    case vxland::kRxSourceNotAllowed: return cfg.refuseSender;
    case vxland::kRxTruncated: return dl < kVxlanHeaderBytes + 14;
    case vxland::kRxNoIFlag: return (d[0] & 0x08) == 0;
    case vxland::kRxWrongVni: return (static_cast<uint32_t>(d[4]) << 16 | d[5] << 8 | d[6]) != cfg.vni;
    case vxland::kRxVlanTagged: return tagged && !cfg.allowVlan;
    case vxland::kRxOversize: return dl - kVxlanHeaderBytes > 14 + cfg.mtuBytes + (tagged ? 4 : 0);
    case vxland::kRxOwnSourceMac: return MacAt(f + 6) == cfg.ownMac;
    case vxland::kRxBadSourceMac: return MacAt(f + 6) == 0 || (f[6] & 1) != 0;
    case vxland::kRxStaticMacConflict: return cfg.pinElsewhere;
    case vxland::kRxEcnNotEctCe: {
      size_t at = 0;
      return cfg.outerCe && dl >= kVxlanHeaderBytes && InnerEcn(f, dl - kVxlanHeaderBytes, &at) == 0;
    }
    default: return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader r(data, size);
  Rules cfg;
  cfg.vni = r.U24();
  cfg.mtuBytes = r.U16();
  uint8_t macBytes[6];
  for (uint8_t& b : macBytes) b = r.U8();
  cfg.ownMac = MacAt(macBytes);
  const uint8_t opts = r.U8();
  const bool coalesce = (opts & 1) == 0;
  cfg.allowVlan = (opts & 2) != 0;
  cfg.refuseSender = (opts & 4) != 0;
  cfg.pinElsewhere = (opts & 8) != 0;
  cfg.outerCe = (opts & 16) != 0;

  core::Context ctx;
  core::Network net;
  net.vni = cfg.vni;
  net.mtuBytes = cfg.mtuBytes;
  net.ownMac = cfg.ownMac;
  net.allowVlan = cfg.allowVlan;
  auto policy = std::make_shared<core::SourcePolicy>();
  if (!cfg.refuseSender) policy->mode = core::SourcePolicy::kAny;
  net.policy = policy;
  FUZZ_CHECK(ctx.AddNetwork(net, nullptr), "add network");
  Vtep sender, elsewhere;
  FUZZ_CHECK(vxland::ParseVtep("192.0.2.1", AF_INET, 4789, &sender) && vxland::ParseVtep("192.0.2.9", AF_INET, 4789, &elsewhere),
             "test addresses");
  core::RxReader reader(&ctx);
  std::set<std::pair<uint32_t, uint64_t>> offered;

  std::vector<fuzz::OwnedFrame> msgs;
  std::vector<size_t> segBytes;
  while (r.Left() > 0 && msgs.size() < 32) {
    const size_t len = r.U16();
    segBytes.push_back(r.U16());
    msgs.emplace_back(r.Bytes(len));
  }

  // RxWorker::Handle.
  std::vector<GroFrame> frames;
  std::vector<std::vector<uint8_t>> copies;  // what each frame held before GroPlan
  reader.BeginBatch();
  for (size_t m = 0; m < msgs.size(); m++) {
    uint8_t* buf = msgs[m].data;
    const size_t len = msgs[m].len;
    const RxDatagrams dg = SplitRxMessage(len, segBytes[m]);
    FUZZ_CHECK(dg.count >= 1 && dg.count <= (len == 0 ? 1 : len), "message of %zu bytes: %zu datagrams", len, dg.count);
    size_t tiled = 0;
    for (size_t i = 0; i < dg.count; i++) {
      FUZZ_CHECK(dg.Offset(i) == tiled, "datagram %zu at %zu, expected %zu", i, dg.Offset(i), tiled);
      const size_t dl = dg.Bytes(i);
      FUZZ_CHECK(dl <= len - tiled && (dl > 0 || len == 0), "datagram %zu: %zu bytes at %zu of %zu", i, dl, tiled, len);
      FUZZ_CHECK(i + 1 == dg.count || dl == dg.seg, "datagram %zu (not last) has %zu bytes, seg %zu", i, dl, dg.seg);
      uint8_t* d = buf + tiled;
      tiled += dl;
      if (cfg.pinElsewhere && dl >= kVxlanHeaderBytes + 14) {
        ctx.mirror.Set(cfg.vni, MacAt(d + kVxlanHeaderBytes + 6), elsewhere, true);
        reader.BeginBatch();  // as a new batch would see the mirror change
      }
      size_t ipAt = 0;
      const int ecnBefore = dl >= kVxlanHeaderBytes ? InnerEcn(d + kVxlanHeaderBytes, dl - kVxlanHeaderBytes, &ipAt) : -1;
      const bool v4 = ecnBefore >= 0 && (d[kVxlanHeaderBytes + ipAt] >> 4) == 4;
      const bool sumValid = v4 && Ipv4HeaderValid(d + kVxlanHeaderBytes + ipAt);
      core::RxResult rr;
      reader.Classify(d, dl, sender, 0, cfg.outerCe ? 0x03 : -1, &rr);
      if (rr.drop >= 0) {
        FUZZ_CHECK(Breaks(rr.drop, d, dl, cfg), "datagram refused (reason %d) for a rule it meets", rr.drop);
        continue;
      }
      for (int rule : {vxland::kRxSourceNotAllowed, vxland::kRxTruncated, vxland::kRxNoIFlag, vxland::kRxWrongVni,
                       vxland::kRxVlanTagged, vxland::kRxOversize, vxland::kRxOwnSourceMac, vxland::kRxBadSourceMac,
                       vxland::kRxStaticMacConflict, vxland::kRxEcnNotEctCe}) {
        FUZZ_CHECK(!Breaks(rule, d, dl, cfg), "datagram delivered but breaks rule %d", rule);
      }
      FUZZ_CHECK(rr.frame == d + kVxlanHeaderBytes && rr.frameBytes == dl - kVxlanHeaderBytes && rr.vni == cfg.vni &&
                     rr.srcMac == MacAt(rr.frame + 6),
                 "delivered frame is not the datagram past its VXLAN header");
      if (ecnBefore > 0) {
        size_t at = 0;
        const int ecnAfter = InnerEcn(rr.frame, rr.frameBytes, &at);
        FUZZ_CHECK(ecnAfter == (cfg.outerCe ? 3 : ecnBefore), "inner ECN %d under outer %s became %d", ecnBefore,
                   cfg.outerCe ? "CE" : "unknown", ecnAfter);
        FUZZ_CHECK(!sumValid || Ipv4HeaderValid(rr.frame + at), "a valid inner IPv4 checksum became invalid");
      }
      const bool first = offered.insert({rr.vni, rr.srcMac}).second;
      FUZZ_CHECK(rr.learn == first, "source MAC %012llx offered %s", static_cast<unsigned long long>(rr.srcMac),
                 first ? "not at its first frame" : "again");
      if (frames.size() < kRxMaxFrames) {
        frames.push_back(GroFrame{rr.frame, static_cast<uint32_t>(rr.frameBytes)});
        copies.emplace_back(rr.frame, rr.frame + rr.frameBytes);
      }
    }
    FUZZ_CHECK(tiled == len, "datagrams cover %zu of %zu bytes", tiled, len);
  }

  // Engine::WriteTap.
  const uint32_t nf = static_cast<uint32_t>(frames.size());
  std::vector<uint32_t> next(nf);
  std::vector<GroWrite> writes(nf ? nf : 1);
  const uint32_t nw = coalesce ? GroPlan(frames.data(), nf, next.data(), writes.data(), kMaxSegs, true)
                               : PlanSingles(frames.data(), nf, writes.data());
  FUZZ_CHECK(nw <= nf, "%u writes for %u frames", nw, nf);
  std::vector<int> writeOf(nf, -1);
  struct iovec iov[kMaxSegs];
  uint64_t packets = 0;
  for (uint32_t w = 0; w < nw; w++) {
    const GroWrite& wr = writes[w];
    FUZZ_CHECK(wr.count >= 1 && wr.count <= kMaxSegs && wr.first < nf, "write %u: count %u first %u", w, wr.count,
               wr.first);
    uint32_t k = wr.first;
    for (uint32_t s = 0; s < wr.count; s++) {
      if (s > 0) k = next[k];  // k < nf was checked in the previous round
      FUZZ_CHECK(k < nf && writeOf[k] == -1, "write %u: chain reaches frame %u (written by %d)", w, k,
                 k < nf ? writeOf[k] : -2);
      writeOf[k] = static_cast<int>(w);
      if (s > 0) {
        FUZZ_CHECK(frames[k].len >= wr.hdrLen, "write %u: iovec length underflow (frame %u: %u < hdrLen %u)", w, k,
                   frames[k].len, wr.hdrLen);
      }
    }
    uint64_t innerBytes = 0;
    FUZZ_CHECK(GroWriteIov(frames.data(), next.data(), wr, iov, &innerBytes) == wr.count, "write %u: iovec count", w);
    // The TAP write: vnet hdr + the iovecs.
    std::vector<uint8_t> tap(reinterpret_cast<const uint8_t*>(&wr.hdr),
                             reinterpret_cast<const uint8_t*>(&wr.hdr) + kVnetHdrBytes);
    for (uint32_t s = 0; s < wr.count; s++) {
      const uint8_t* b = static_cast<const uint8_t*>(iov[s].iov_base);
      tap.insert(tap.end(), b, b + iov[s].iov_len);
    }
    FUZZ_CHECK(tap.size() == kVnetHdrBytes + wr.bytes, "write %u: %zu bytes written, bytes says %u", w, tap.size(),
               wr.bytes);
    FUZZ_CHECK(innerBytes == wr.bytes + static_cast<uint64_t>(wr.count - 1) * wr.hdrLen,
               "write %u: counted %llu inner bytes", w, static_cast<unsigned long long>(innerBytes));
    if (wr.count == 1) {
      FUZZ_CHECK(fuzz::Eq(frames[wr.first].data, copies[wr.first].data(), copies[wr.first].size()),
                 "frame %u written alone but modified", wr.first);
    } else {
      // The kernel accepts a TSO/USO write only if its headers are consistent.
      const uint8_t* f = tap.data() + kVnetHdrBytes;
      const fuzz::Hdrs h = fuzz::ParseLoose(f, wr.bytes);
      FUZZ_CHECK(h.ok && h.hdrLen == wr.hdrLen && wr.hdr.hdr_len == wr.hdrLen && wr.hdr.csum_start == h.l4,
                 "write %u: coalesced frame's headers (hdrLen %u)", w, wr.hdrLen);
      if (h.udp) {
        // The TAP took TUN_F_USO4/6 (GroPlan's udp): a USO write.
        FUZZ_CHECK(wr.hdr.gso_type == VIRTIO_NET_HDR_GSO_UDP_L4 && wr.hdr.csum_offset == 6 && wr.count <= 64,
                   "write %u: UDP write gso_type %u csum_offset %u count %u", w, wr.hdr.gso_type, wr.hdr.csum_offset,
                   wr.count);
        FUZZ_CHECK(Get16(f + h.l3 + (h.v6 ? 4 : 2)) == wr.bytes - (h.v6 ? h.l4 : h.l3) &&
                       Get16(f + h.l4 + 4) == wr.bytes - h.l4,
                   "write %u: inconsistent USO frame (IP or UDP length field)", w);
      } else {
        L4Info li;
        FUZZ_CHECK(ParseTcp(f, wr.bytes, &li) && li.ipEnd == wr.bytes, "write %u: inconsistent TSO frame", w);
        FUZZ_CHECK(wr.hdr.gso_type == (h.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4),
                   "write %u: TCP write gso_type %u", w, wr.hdr.gso_type);
      }
      // Segments must fit what the receiver's TAP MTU allows.
      FUZZ_CHECK(wr.hdrLen + wr.hdr.gso_size <= 14 + cfg.mtuBytes + (IsTagged(f) ? kVlanTagBytes : 0),
                 "write %u: segment of %u bytes exceeds the MTU", w, wr.hdrLen + wr.hdr.gso_size);
    }
    packets += wr.count;
  }
  FUZZ_CHECK(packets == nf, "%llu packets written of %u frames", static_cast<unsigned long long>(packets), nf);
  return 0;
}
