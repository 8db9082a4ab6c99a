// Shared helpers of the libFuzzer harnesses (scripts/fuzz.sh builds them):
// a byte reader that derives structured inputs from the fuzzer's bytes, an
// independent RFC 1071 checksum (big-endian, byte by byte: deliberately not
// the engine's Sum/Fold), a minimal Ethernet/IP/TCP|UDP frame parser used
// only to fix up and to check, and the invariant check macro.
//
// Harnesses copy every frame into its own exact-size heap allocation so that
// AddressSanitizer sees any read or write past a frame's end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../native/engine_offload.h"

// A violated invariant is reported like a sanitizer finding: message, then
// abort() so libFuzzer saves the input as crash-<sha1>.
#define FUZZ_CHECK(cond, ...)                                                \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                           \
      fprintf(stderr, "\n");                                                  \
      abort();                                                                \
    }                                                                         \
  } while (0)

namespace fuzz {

/** Consumes the fuzzer's bytes front to back; reads past the end give 0. */
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint8_t U8() { return pos_ < n_ ? p_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }  // little-endian
  uint32_t U24() { return static_cast<uint32_t>(U8()) << 16 | static_cast<uint32_t>(U8()) << 8 | U8(); }
  size_t Left() const { return n_ - pos_; }
  /** Up to want bytes (fewer at the end). */
  std::vector<uint8_t> Bytes(size_t want) {
    if (want > Left()) want = Left();
    std::vector<uint8_t> v(p_ + pos_, p_ + pos_ + want);
    pos_ += want;
    return v;
  }
  std::vector<uint8_t> Rest() { return Bytes(Left()); }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

// Byte order as the engine reads and writes it (trivial, shared; the
// checks below use their own checksum and header arithmetic).
using vxland::offload::Get16;
using vxland::offload::Get32;
using vxland::offload::Put16;
using vxland::offload::Put32;

/** memcmp that accepts empty ranges (whose pointers may be null). */
inline bool Eq(const void* a, const void* b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

/** RFC 1071 sum of p[0, n) in network order, folded to 16 bits. */
inline uint32_t Sum16(const uint8_t* p, size_t n, uint32_t initial = 0) {
  uint64_t s = initial;
  size_t i = 0;
  for (; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i]) << 8 | p[i + 1];
  if (n & 1) s += static_cast<uint32_t>(p[n - 1]) << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint32_t>(s);
}

/** Where the headers of an Ethernet(+1 tag)/IPv4|IPv6/TCP or UDP frame
 *  are, computed independently of the engine (loose: no length checks beyond
 *  what is needed to stay in bounds; IP options, fragments and any version
 *  nibble are accepted). hdrLen: l4 + the TCP header length, or l4 + 8. */
struct Hdrs {
  bool ok = false;
  bool v6 = false;
  bool udp = false;  // proto 17 (else TCP, proto 6)
  size_t l3 = 0, l4 = 0, hdrLen = 0, ipEnd = 0;
};

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr size_t kUdpHdrBytes = 8;

inline Hdrs ParseLoose(const uint8_t* f, size_t len) {
  Hdrs h;
  if (len < 14) return h;
  size_t l3 = 14;
  uint16_t type = Get16(f + 12);
  if (type == 0x8100 || type == 0x88a8) {
    if (len < 18) return h;
    type = Get16(f + 16);
    l3 = 18;
  }
  h.l3 = l3;
  uint8_t proto;
  if (type == 0x0800) {
    if (len < l3 + 20) return h;
    h.l4 = l3 + (f[l3] & 0x0f) * 4u;
    proto = f[l3 + 9];
    if (h.l4 < l3 + 20 || (proto != kProtoTcp && proto != kProtoUdp)) return h;
    h.ipEnd = l3 + Get16(f + l3 + 2);
  } else if (type == 0x86dd) {
    if (len < l3 + 40) return h;
    proto = f[l3 + 6];
    if (proto != kProtoTcp && proto != kProtoUdp) return h;
    h.v6 = true;
    h.l4 = l3 + 40;
    h.ipEnd = h.l4 + Get16(f + l3 + 4);
  } else {
    return h;
  }
  h.udp = proto == kProtoUdp;
  if (h.udp) {
    if (len < h.l4 + kUdpHdrBytes) return h;
    h.hdrLen = h.l4 + kUdpHdrBytes;
    h.ok = true;
    return h;
  }
  if (len < h.l4 + 20) return h;
  h.hdrLen = h.l4 + (f[h.l4 + 12] >> 4) * 4u;
  if (h.hdrLen < h.l4 + 20 || h.hdrLen > len) return h;
  h.ok = true;
  return h;
}

/** Offset of the L4 checksum field within the L4 header: TCP 16, UDP 6. */
inline size_t CsumOffset(const Hdrs& h) { return h.udp ? 6 : 16; }

/** TCP or UDP (h.udp) pseudo-header sum for l4Len bytes. */
inline uint32_t Pseudo(const uint8_t* f, const Hdrs& h, size_t l4Len) {
  const uint32_t proto = h.udp ? kProtoUdp : kProtoTcp;
  uint32_t s = Sum16(h.v6 ? f + h.l3 + 8 : f + h.l3 + 12, h.v6 ? 32 : 8, proto + static_cast<uint32_t>(l4Len & 0xffff));
  return s + static_cast<uint32_t>(l4Len >> 16);
}

/** The TCP or UDP checksum over f[l4, l4End) verifies; a UDP checksum field
 *  of zero ("none") never does. */
inline bool L4CsumOk(const uint8_t* f, const Hdrs& h, size_t l4End) {
  const size_t l4Len = l4End - h.l4;
  if (h.udp && Get16(f + h.l4 + 6) == 0) return false;
  return Sum16(f + h.l4, l4Len, Pseudo(f, h, l4Len)) == 0xffff;
}

inline bool Ipv4CsumOk(const uint8_t* f, const Hdrs& h) { return Sum16(f + h.l3, h.l4 - h.l3) == 0xffff; }

/** Makes a frame's length fields (IP, and UDP's), IPv4 header checksum and
 *  TCP or UDP checksum consistent (what a real sender produces; a computed
 *  UDP checksum of 0 is sent as 0xffff), so that the fuzzer gets past the
 *  coalescer's checksum verification. Leaves unparsable frames alone. */
inline void FixUp(uint8_t* f, size_t len) {
  Hdrs h = ParseLoose(f, len);
  if (!h.ok) return;
  if (h.v6) {
    if (len - h.l4 > 0xffff) return;
    Put16(f + h.l3 + 4, static_cast<uint16_t>(len - h.l4));
  } else {
    if (len - h.l3 > 0xffff || h.l4 > len) return;
    Put16(f + h.l3 + 2, static_cast<uint16_t>(len - h.l3));
    f[h.l3 + 10] = f[h.l3 + 11] = 0;
    Put16(f + h.l3 + 10, static_cast<uint16_t>(~Sum16(f + h.l3, h.l4 - h.l3)));
  }
  h.ipEnd = len;
  const size_t l4Len = len - h.l4;
  if (h.udp) Put16(f + h.l4 + 4, static_cast<uint16_t>(l4Len));
  uint8_t* field = f + h.l4 + CsumOffset(h);
  field[0] = field[1] = 0;
  uint16_t c = static_cast<uint16_t>(~Sum16(f + h.l4, l4Len, Pseudo(f, h, l4Len)));
  if (h.udp && c == 0) c = 0xffff;
  Put16(field, c);
}

/** A frame in its own exact-size allocation (ASan catches any overrun). */
struct OwnedFrame {
  uint8_t* data = nullptr;
  size_t len = 0;
  explicit OwnedFrame(const std::vector<uint8_t>& v) : len(v.size()) {
    data = static_cast<uint8_t*>(malloc(len ? len : 1));
    if (len) memcpy(data, v.data(), len);
  }
  OwnedFrame(const OwnedFrame&) = delete;
  OwnedFrame& operator=(const OwnedFrame&) = delete;
  OwnedFrame(OwnedFrame&& o) noexcept : data(o.data), len(o.len) { o.data = nullptr; }
  ~OwnedFrame() { free(data); }
};

}  // namespace fuzz
