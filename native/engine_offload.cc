#include "engine_offload.h"

#include <string.h>

namespace vxland {
namespace offload {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio_net_hdr and checksums assume a little-endian host");

constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;
constexpr size_t kUdpHeaderBytes = 8;
constexpr size_t kTcpMinHeaderBytes = 20;
constexpr size_t kTcpSeqOffset = 4;
constexpr size_t kTcpAckOffset = 8;
constexpr size_t kTcpFlagsOffset = 13;
constexpr size_t kTcpWindowOffset = 14;
constexpr size_t kTcpChecksumOffset = 16;
constexpr size_t kUdpChecksumOffset = 6;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpCwr = 0x80;
/** Flows the coalescer keeps open at once within one batch. */
constexpr uint32_t kGroOpenFlows = 8;
/** Datagrams in one UDP GSO write: the kernel's UDP_MAX_SEGMENTS was 64
 *  before 6.9 and a larger GSO datagram is refused there. */
constexpr uint32_t kUdpGroMaxSegs = 64;

/** A 16-bit network-order value as Sum() would have read it from memory. */
inline uint64_t MemOrder16(uint16_t v) { return static_cast<uint16_t>((v >> 8) | (v << 8)); }
inline void StoreChecksum(uint8_t* p, uint16_t memOrderValue) { memcpy(p, &memOrderValue, 2); }

void Ipv4HeaderChecksum(uint8_t* ip, size_t ihl) {
  ip[10] = 0;
  ip[11] = 0;
  StoreChecksum(ip + 10, static_cast<uint16_t>(~Fold(Sum(ip, ihl, 0))));
}

/** Ethernet with at most one tag: the inner ethertype and where L3 starts. */
bool ParseL2(const uint8_t* f, size_t len, uint16_t* type, size_t* l3) {
  if (len < kEthHeaderBytes) return false;
  const L3Start at = FindL3(f, len, 1);
  *type = at.etherType;
  *l3 = at.offset;
  return true;
}

/** Ethernet (+1 tag) / IPv4 (no fragments) or IPv6 (no extension headers) /
 *  TCP, or UDP when allowUdp. strictLength: the IP (and UDP) length fields
 *  must describe the frame; otherwise (a GSO super-frame, whose lengths the
 *  kernel leaves loose) the frame's end is the IP end. */
bool Parse(const uint8_t* f, size_t len, bool strictLength, bool allowUdp, L4Info* out) {
  uint16_t type;
  size_t l3;
  if (!ParseL2(f, len, &type, &l3)) return false;
  L4Info info{};
  info.l3 = l3;
  if (type == kEtherTypeIpv4) {
    if (len < l3 + kIpv4MinHeaderBytes || (f[l3] >> 4) != 4) return false;
    size_t ihl = static_cast<size_t>(f[l3] & 0x0f) * 4;
    if (ihl < kIpv4MinHeaderBytes || len < l3 + ihl) return false;
    if ((Get16(f + l3 + 6) & 0x3fff) != 0) return false;  // MF or a fragment offset
    info.proto = f[l3 + 9];
    info.l4 = l3 + ihl;
    info.ipEnd = strictLength ? l3 + Get16(f + l3 + 2) : len;
    if (strictLength && (info.ipEnd < info.l4 || info.ipEnd > len)) return false;
  } else if (type == kEtherTypeIpv6) {
    if (len < l3 + kIpv6HeaderBytes || (f[l3] >> 4) != 6) return false;
    info.v6 = true;
    info.proto = f[l3 + 6];  // extension headers are not followed: such frames are not TCP here
    info.l4 = l3 + kIpv6HeaderBytes;
    info.ipEnd = strictLength ? info.l4 + Get16(f + l3 + 4) : len;
    if (info.ipEnd > len) return false;
  } else {
    return false;
  }
  if (info.proto == kIpProtoUdp && allowUdp) {
    if (info.ipEnd < info.l4 + kUdpHeaderBytes) return false;
    if (strictLength && Get16(f + info.l4 + 4) != info.ipEnd - info.l4) return false;
    info.hdrLen = info.l4 + kUdpHeaderBytes;
    *out = info;
    return true;
  }
  if (info.proto != kIpProtoTcp || info.ipEnd < info.l4 + kTcpMinHeaderBytes) return false;
  size_t thlen = static_cast<size_t>(f[info.l4 + 12] >> 4) * 4;
  if (thlen < kTcpMinHeaderBytes || info.l4 + thlen > info.ipEnd) return false;
  info.hdrLen = info.l4 + thlen;
  *out = info;
  return true;
}

}  // namespace

uint64_t Sum(const uint8_t* p, size_t n, uint64_t sum) {
  while (n >= 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    sum += static_cast<uint64_t>(w[0]) + w[1] + w[2] + w[3];
    p += 16;
    n -= 16;
  }
  while (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) sum += p[0];  // little-endian: the trailing byte is the low byte of its word
  return sum;
}

uint16_t Fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

bool ParseTcp(const uint8_t* frame, size_t len, L4Info* out) { return Parse(frame, len, true, false, out); }

uint64_t PseudoSum(const uint8_t* f, const L4Info& info, size_t l4Len) {
  uint64_t sum = MemOrder16(info.proto) + MemOrder16(static_cast<uint16_t>(l4Len));
  if (info.v6) return Sum(f + info.l3 + 8, 32, sum);
  return Sum(f + info.l3 + 12, 8, sum);
}

bool L4ChecksumValid(const uint8_t* f, const L4Info& info) {
  // A UDP datagram without a checksum (IPv4) is not known to be intact: a
  // merged one's fresh checksum would vouch for bytes nobody checked.
  if (info.proto == kIpProtoUdp && f[info.l4 + kUdpChecksumOffset] == 0 && f[info.l4 + kUdpChecksumOffset + 1] == 0) {
    return false;
  }
  size_t l4Len = info.ipEnd - info.l4;
  return Fold(Sum(f + info.l4, l4Len, PseudoSum(f, info, l4Len))) == 0xffff;
}

bool CompleteChecksum(uint8_t* frame, size_t len, size_t csumStart, size_t csumOffset) {
  if (csumStart >= len || csumOffset + 2 > len - csumStart) return false;
  uint16_t csum = static_cast<uint16_t>(~Fold(Sum(frame + csumStart, len - csumStart, 0)));
  // RFC 768: a computed UDP checksum of zero is sent as all ones.
  if (csum == 0 && csumOffset == kUdpChecksumOffset) csum = 0xffff;
  StoreChecksum(frame + csumStart + csumOffset, csum);
  return true;
}

namespace {

/** The split behind TsoSplit and TsoSplitHeaders: segment i's headers are
 *  written at out + i * stride + prefixBytes, followed by its payload when
 *  copyPayload (else the payload stays in the frame). */
int Split(const uint8_t* frame, size_t len, const struct virtio_net_hdr& hdr, size_t maxFrameBytes, uint8_t* out,
          size_t outCap, size_t prefixBytes, bool copyPayload, uint32_t* segLens, int maxSegs, TsoLayout* layout) {
  const uint8_t gsoType = hdr.gso_type & static_cast<uint8_t>(~VIRTIO_NET_HDR_GSO_ECN);
  const bool udp = gsoType == VIRTIO_NET_HDR_GSO_UDP_L4;
  if (gsoType != VIRTIO_NET_HDR_GSO_TCPV4 && gsoType != VIRTIO_NET_HDR_GSO_TCPV6 && !udp) return kSplitMalformed;
  L4Info info;
  // The kernel's header length and IP length fields describe the super-frame
  // loosely (hdr_len is skb_headlen); everything is recomputed from the frame.
  if (!Parse(frame, len, false, udp, &info) || (info.proto == kIpProtoUdp) != udp) return kSplitMalformed;
  if (!udp && info.v6 != (gsoType == VIRTIO_NET_HDR_GSO_TCPV6)) return kSplitMalformed;
  const size_t mss = hdr.gso_size;
  if (mss == 0) return kSplitMalformed;
  const size_t hdrLen = info.hdrLen;
  const size_t payload = len - hdrLen;
  const size_t segs = payload == 0 ? 1 : (payload + mss - 1) / mss;
  const size_t firstChunk = payload < mss ? payload : mss;
  if (hdrLen + firstChunk > maxFrameBytes) return kSplitTooBig;
  const size_t stride = prefixBytes + hdrLen + (copyPayload ? mss : 0);
  const size_t lastBytes = prefixBytes + hdrLen + (copyPayload ? firstChunk : 0);
  if (segs > static_cast<size_t>(maxSegs) || (segs - 1) * stride + lastBytes > outCap) return kSplitNoRoom;
  const size_t l3 = info.l3;
  const size_t l4 = info.l4;
  const size_t ipHdrLen = l4 - l3;
  const uint32_t seq0 = udp ? 0 : Get32(frame + l4 + kTcpSeqOffset);
  const uint16_t id0 = info.v6 ? 0 : Get16(frame + l3 + 4);
  const uint8_t flags = udp ? 0 : frame[l4 + kTcpFlagsOffset];
  const size_t csumAt = l4 + (udp ? kUdpChecksumOffset : kTcpChecksumOffset);
  for (size_t i = 0; i < segs; i++) {
    const size_t off = i * mss;
    const size_t chunk = payload - off < mss ? payload - off : mss;
    const uint8_t* src = frame + hdrLen + off;
    uint8_t* dst = out + i * stride + prefixBytes;
    memcpy(dst, frame, hdrLen);
    if (copyPayload) memcpy(dst + hdrLen, src, chunk);
    const size_t l4Len = hdrLen - l4 + chunk;
    if (info.v6) {
      Put16(dst + l3 + 4, static_cast<uint16_t>(l4Len));
    } else {
      Put16(dst + l3 + 2, static_cast<uint16_t>(ipHdrLen + l4Len));
      Put16(dst + l3 + 4, static_cast<uint16_t>(id0 + i));
      Ipv4HeaderChecksum(dst + l3, ipHdrLen);
    }
    if (udp) {
      // The kernel's __udp_gso_segment rules: each datagram its own length.
      Put16(dst + l4 + 4, static_cast<uint16_t>(l4Len));
    } else {
      Put32(dst + l4 + kTcpSeqOffset, seq0 + static_cast<uint32_t>(off));
      uint8_t f = flags;
      if (i + 1 != segs) f &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
      if (i != 0) f &= static_cast<uint8_t>(~kTcpCwr);
      dst[l4 + kTcpFlagsOffset] = f;
    }
    dst[csumAt] = 0;
    dst[csumAt + 1] = 0;
    // The TCP and UDP headers are whole numbers of 4-byte words, so the
    // payload's sum continues them exactly; an odd byte can only end the last chunk.
    uint64_t sum = Sum(dst + l4, hdrLen - l4, PseudoSum(dst, info, l4Len));
    sum = Sum(src, chunk, sum);
    uint16_t csum = static_cast<uint16_t>(~Fold(sum));
    if (udp && csum == 0) csum = 0xffff;  // RFC 768: zero means "no checksum"
    StoreChecksum(dst + csumAt, csum);
    segLens[i] = static_cast<uint32_t>(hdrLen + chunk);
  }
  if (layout != nullptr) {
    layout->hdrLen = static_cast<uint32_t>(hdrLen);
    layout->mss = static_cast<uint32_t>(mss);
  }
  return static_cast<int>(segs);
}

}  // namespace

int TsoSplit(const uint8_t* frame, size_t len, const struct virtio_net_hdr& hdr, size_t maxFrameBytes,
             uint8_t* out, size_t outCap, size_t prefixBytes, uint32_t* segLens, int maxSegs) {
  return Split(frame, len, hdr, maxFrameBytes, out, outCap, prefixBytes, true, segLens, maxSegs, nullptr);
}

int TsoSplitHeaders(const uint8_t* frame, size_t len, const struct virtio_net_hdr& hdr, size_t maxFrameBytes,
                    uint8_t* hdrOut, size_t hdrCap, size_t prefixBytes, uint32_t* segLens, int maxSegs,
                    TsoLayout* layout) {
  return Split(frame, len, hdr, maxFrameBytes, hdrOut, hdrCap, prefixBytes, false, segLens, maxSegs, layout);
}

// ---- GRO ----

namespace {

struct OpenFlow {
  uint32_t first;
  uint32_t last;
  uint32_t count;
  uint32_t payload;  // payload bytes so far
  uint32_t mss;      // payload bytes of the first segment
  uint32_t nextSeq;
  uint16_t nextId;
  L4Info info;       // of the first frame
};

bool Eligible(const GroFrame& fr, const L4Info& info) {
  const uint8_t* f = fr.data;
  if (info.ipEnd != fr.len) return false;  // Ethernet padding: a tiny frame, not worth it
  if (!info.v6 && info.l4 - info.l3 != kIpv4MinHeaderBytes) return false;
  if (info.ipEnd == info.hdrLen) return false;  // pure ACK, empty datagram
  if (info.proto == kIpProtoTcp) {
    const uint8_t flags = f[info.l4 + kTcpFlagsOffset];
    if ((flags & ~(kTcpAck | kTcpPsh)) != 0 || (flags & kTcpAck) == 0) return false;
  }
  // The kernel's inet_gro_receive verifies it too; EmitFlow recomputes the
  // merged header's, which would otherwise "repair" a corrupt one.
  if (!info.v6 && Fold(Sum(f + info.l3, kIpv4MinHeaderBytes, 0)) != 0xffff) return false;
  return L4ChecksumValid(f, info);
}

/** Offset and length of the source + destination addresses of an IP header. */
inline size_t AddrOffset(bool v6) { return v6 ? 8 : 12; }
inline size_t AddrBytes(bool v6) { return v6 ? 32 : 8; }

/** Same L2 header (MACs, tag, ethertype) and IP addresses: a's l3/v6 describe
 *  both frames, and both must hold the addresses. */
bool SameHosts(const uint8_t* a, const uint8_t* b, size_t l3, bool v6) {
  return memcmp(a, b, l3) == 0 && memcmp(a + l3 + AddrOffset(v6), b + l3 + AddrOffset(v6), AddrBytes(v6)) == 0;
}

/** Same TCP or UDP flow. Ports are read at each frame's own l4, so a frame
 *  with IP options (not Eligible) still matches its flow and closes it before
 *  it is written: it must not overtake the held segments. */
bool SameFlow(const uint8_t* a, const L4Info& ia, const uint8_t* b, const L4Info& ib) {
  if (ia.v6 != ib.v6 || ia.l3 != ib.l3 || ia.proto != ib.proto) return false;
  return SameHosts(a, b, ia.l3, ia.v6) && memcmp(a + ia.l4, b + ib.l4, 4) == 0;
}

/** For a frame ParseTcp refused: where its IP header is, if it has one whose
 *  addresses fit in len (a fragment, options, extension headers or a length
 *  mismatch; the version nibble is not checked either). */
bool PeekIp(const uint8_t* f, size_t len, size_t* l3, bool* v6) {
  uint16_t type;
  if (!ParseL2(f, len, &type, l3) || (type != kEtherTypeIpv4 && type != kEtherTypeIpv6)) return false;
  *v6 = type == kEtherTypeIpv6;
  return len >= *l3 + (*v6 ? kIpv6HeaderBytes : kIpv4MinHeaderBytes);
}

/** The TCP rules of CanAppend: the kernel's tcp_gro_receive ones. */
bool TcpCanAppend(const OpenFlow& fl, const GroFrame* frames, const uint8_t* h, const uint8_t* f, const L4Info& info) {
  const L4Info& hi = fl.info;
  // Data offset, reserved and AccECN AE bits (the rest of the kernel's
  // tcp_flag_word is checked by Eligible): a later segment's bits would be lost.
  if (h[hi.l4 + 12] != f[info.l4 + 12]) return false;
  if ((frames[fl.last].data[hi.l4 + kTcpFlagsOffset] & kTcpPsh) != 0) return false;
  if (Get32(f + info.l4 + kTcpSeqOffset) != fl.nextSeq) return false;
  if (memcmp(h + hi.l4 + kTcpAckOffset, f + info.l4 + kTcpAckOffset, 4) != 0) return false;
  if (memcmp(h + hi.l4 + kTcpWindowOffset, f + info.l4 + kTcpWindowOffset, 2) != 0) return false;
  if (memcmp(h + hi.l4 + kTcpMinHeaderBytes, f + info.l4 + kTcpMinHeaderBytes, hi.hdrLen - hi.l4 - kTcpMinHeaderBytes) !=
      0) {
    return false;  // options (timestamps) differ
  }
  return true;
}

/** IP header fields every segment of a GSO write shares (the kernel's
 *  segmentation copies them from the first) and the IPv4 IDs it counts up. */
bool SameIpEnvelope(const OpenFlow& fl, const uint8_t* h, const uint8_t* f, const L4Info& info) {
  const L4Info& hi = fl.info;
  if (info.v6) {
    // Version, traffic class and flow label; hop limit.
    return memcmp(h + hi.l3, f + info.l3, 4) == 0 && h[hi.l3 + 7] == f[info.l3 + 7];
  }
  // TOS, flags (DF), TTL must match; IDs must increment as a GSO sender's do.
  return h[hi.l3 + 1] == f[info.l3 + 1] && h[hi.l3 + 6] == f[info.l3 + 6] && h[hi.l3 + 8] == f[info.l3 + 8] &&
         Get16(f + info.l3 + 4) == fl.nextId;
}

/** Whether fr (Eligible, of fl's flow) can join fl's write. */
bool CanAppend(const OpenFlow& fl, const GroFrame* frames, const GroFrame& fr, const L4Info& info, uint32_t maxSegs) {
  const uint8_t* h = frames[fl.first].data;
  const uint8_t* f = fr.data;
  const L4Info& hi = fl.info;
  if (fl.count >= maxSegs) return false;
  if (info.hdrLen != hi.hdrLen) return false;
  const uint32_t payload = static_cast<uint32_t>(info.ipEnd - info.hdrLen);
  if (payload > fl.mss) return false;
  if (fl.payload != fl.count * fl.mss) return false;  // a shorter segment ended the run
  if (hi.ipEnd - hi.l3 + fl.payload - fl.mss + payload > kMaxIpLengthBytes) return false;
  if (hi.proto == kIpProtoTcp && !TcpCanAppend(fl, frames, h, f, info)) return false;
  return SameIpEnvelope(fl, h, f, info);
}

void EmitSingle(uint32_t index, const GroFrame* frames, GroWrite* writes, uint32_t* nw) {
  GroWrite& w = writes[(*nw)++];
  memset(&w.hdr, 0, sizeof(w.hdr));
  w.first = index;
  w.count = 1;
  w.hdrLen = 0;
  w.bytes = frames[index].len;
}

void EmitFlow(const OpenFlow& fl, GroFrame* frames, GroWrite* writes, uint32_t* nw) {
  if (fl.count == 1) return EmitSingle(fl.first, frames, writes, nw);
  const L4Info& info = fl.info;
  const bool udp = info.proto == kIpProtoUdp;
  uint8_t* f = frames[fl.first].data;
  const size_t l4Len = info.hdrLen - info.l4 + fl.payload;
  if (info.v6) {
    Put16(f + info.l3 + 4, static_cast<uint16_t>(l4Len));
  } else {
    Put16(f + info.l3 + 2, static_cast<uint16_t>(info.l4 - info.l3 + l4Len));
    Ipv4HeaderChecksum(f + info.l3, info.l4 - info.l3);
  }
  // The kernel's __udp_gso_segment derives each datagram's length and
  // checksum from the whole one's.
  if (udp) Put16(f + info.l4 + 4, static_cast<uint16_t>(l4Len));
  else f[info.l4 + kTcpFlagsOffset] |= frames[fl.last].data[info.l4 + kTcpFlagsOffset] & kTcpPsh;
  // CHECKSUM_PARTIAL convention: the field holds the folded pseudo-header
  // sum (not complemented); every segment's checksum was verified above.
  const size_t csumOffset = udp ? kUdpChecksumOffset : kTcpChecksumOffset;
  f[info.l4 + csumOffset] = 0;
  f[info.l4 + csumOffset + 1] = 0;
  StoreChecksum(f + info.l4 + csumOffset, Fold(PseudoSum(f, info, l4Len)));
  GroWrite& w = writes[(*nw)++];
  memset(&w.hdr, 0, sizeof(w.hdr));
  w.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  w.hdr.gso_type = udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : info.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  w.hdr.hdr_len = static_cast<uint16_t>(info.hdrLen);
  w.hdr.gso_size = static_cast<uint16_t>(fl.mss);
  w.hdr.csum_start = static_cast<uint16_t>(info.l4);
  w.hdr.csum_offset = static_cast<uint16_t>(csumOffset);
  w.first = fl.first;
  w.count = fl.count;
  w.hdrLen = static_cast<uint32_t>(info.hdrLen);
  w.bytes = static_cast<uint32_t>(info.hdrLen + fl.payload);
}

}  // namespace

uint32_t GroPlan(GroFrame* frames, uint32_t n, uint32_t* next, GroWrite* writes, uint32_t maxSegs, bool udp) {
  OpenFlow open[kGroOpenFlows];
  uint32_t openCount = 0;
  uint32_t nw = 0;
  auto close = [&](uint32_t k) {
    EmitFlow(open[k], frames, writes, &nw);
    for (uint32_t j = k + 1; j < openCount; j++) open[j - 1] = open[j];
    openCount--;
  };
  for (uint32_t i = 0; i < n; i++) {
    next[i] = UINT32_MAX;
    GroFrame& fr = frames[i];
    L4Info info;
    if (!Parse(fr.data, fr.len, true, udp, &info)) {
      // It may still belong to a held flow (a first fragment, IP options):
      // write every held flow between the same hosts first.
      size_t l3;
      bool v6;
      if (PeekIp(fr.data, fr.len, &l3, &v6)) {
        for (uint32_t k = 0; k < openCount;) {
          const OpenFlow& fl = open[k];
          if (fl.info.v6 == v6 && fl.info.l3 == l3 && SameHosts(frames[fl.first].data, fr.data, l3, v6)) {
            close(k);
          } else {
            k++;
          }
        }
      }
      EmitSingle(i, frames, writes, &nw);
      continue;
    }
    uint32_t k = 0;
    while (k < openCount && !SameFlow(frames[open[k].first].data, open[k].info, fr.data, info)) k++;
    const bool found = k < openCount;
    if (!Eligible(fr, info)) {
      if (found) close(k);
      EmitSingle(i, frames, writes, &nw);
      continue;
    }
    const uint32_t payload = static_cast<uint32_t>(info.ipEnd - info.hdrLen);
    const uint32_t flowMaxSegs = info.proto == kIpProtoUdp && maxSegs > kUdpGroMaxSegs ? kUdpGroMaxSegs : maxSegs;
    if (found && CanAppend(open[k], frames, fr, info, flowMaxSegs)) {
      OpenFlow& fl = open[k];
      next[fl.last] = i;
      fl.last = i;
      fl.count++;
      fl.payload += payload;
      fl.nextSeq += payload;  // TCP only, like the checks that read it
      fl.nextId++;
      continue;
    }
    if (found) close(k);
    if (openCount == kGroOpenFlows) close(0);
    OpenFlow& fl = open[openCount++];
    fl.first = i;
    fl.last = i;
    fl.count = 1;
    fl.payload = payload;
    fl.mss = payload;
    fl.nextSeq = info.proto == kIpProtoTcp ? Get32(fr.data + info.l4 + kTcpSeqOffset) + payload : 0;
    fl.nextId = info.v6 ? 0 : static_cast<uint16_t>(Get16(fr.data + info.l3 + 4) + 1);
    fl.info = info;
  }
  while (openCount > 0) close(0);
  return nw;
}

uint32_t PlanSingles(const GroFrame* frames, uint32_t n, GroWrite* writes) {
  uint32_t nw = 0;
  for (uint32_t i = 0; i < n; i++) EmitSingle(i, frames, writes, &nw);
  return nw;
}

uint32_t GroWriteIov(const GroFrame* frames, const uint32_t* next, const GroWrite& w, struct iovec* iov,
                     uint64_t* innerBytes) {
  iov[0].iov_base = frames[w.first].data;
  iov[0].iov_len = frames[w.first].len;
  uint64_t bytes = frames[w.first].len;
  uint32_t k = w.first;
  for (uint32_t s = 1; s < w.count; s++) {
    k = next[k];
    iov[s].iov_base = frames[k].data + w.hdrLen;
    iov[s].iov_len = frames[k].len - w.hdrLen;
    bytes += frames[k].len;
  }
  *innerBytes = bytes;
  return w.count;
}

// ---- rx decapsulation ----

uint64_t MacAt(const uint8_t* p) {
  return static_cast<uint64_t>(p[0]) << 40 | static_cast<uint64_t>(p[1]) << 32 | static_cast<uint64_t>(p[2]) << 24 |
         static_cast<uint64_t>(p[3]) << 16 | static_cast<uint64_t>(p[4]) << 8 | p[5];
}

bool IsTagged(const uint8_t* p) {
  const uint16_t type = Get16(p + 12);
  return type == kEtherTypeVlan || type == kEtherTypeQinQ;
}

L3Start FindL3(const uint8_t* frame, size_t len, int maxTags) {
  size_t off = kEthHeaderBytes - 2;
  uint16_t type = Get16(frame + off);
  for (int tags = 0; tags < maxTags && (type == kEtherTypeVlan || type == kEtherTypeQinQ) && off + kVlanTagBytes + 2 <= len; tags++) {
    off += kVlanTagBytes;
    type = Get16(frame + off);
  }
  return L3Start{type, off + 2};
}

RxDatagrams SplitRxMessage(size_t len, size_t groSegBytes) {
  const size_t seg = groSegBytes == 0 || groSegBytes > len ? len : groSegBytes;
  return RxDatagrams{len, seg, len == 0 ? 1 : (len + seg - 1) / seg};
}

RxVerdict DecapVxlan(uint8_t* d, size_t dl, const RxConfig& cfg, RxFrame* out) {
  if (dl < kVxlanHeaderBytes + kEthHeaderBytes) return RxVerdict::kTruncated;
  if ((d[0] & kVxlanFlagI) == 0) return RxVerdict::kNoIFlag;
  out->vni = static_cast<uint32_t>(d[4]) << 16 | static_cast<uint32_t>(d[5]) << 8 | d[6];
  if (out->vni != cfg.vni) return RxVerdict::kWrongVni;
  uint8_t* frame = d + kVxlanHeaderBytes;
  const size_t frameBytes = dl - kVxlanHeaderBytes;
  const bool tagged = IsTagged(frame);
  if (tagged && !cfg.allowVlan) return RxVerdict::kVlanTagged;
  if (frameBytes > kEthHeaderBytes + cfg.mtuBytes + (tagged ? kVlanTagBytes : 0)) return RxVerdict::kOversize;
  const uint64_t src = MacAt(frame + 6);
  if (src == cfg.ownMac) return RxVerdict::kOwnSourceMac;
  if (src == 0 || (frame[6] & 0x01) != 0) return RxVerdict::kBadSourceMac;  // zero, multicast, broadcast
  out->frame = frame;
  out->frameBytes = frameBytes;
  out->srcMac = src;
  return RxVerdict::kOk;
}

}  // namespace offload
}  // namespace vxland
