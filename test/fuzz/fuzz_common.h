// Shared helpers of the libFuzzer harnesses (scripts/fuzz.sh builds them):
// a byte reader that derives structured inputs from the fuzzer's bytes, an
// independent RFC 1071 checksum (big-endian, byte by byte: deliberately not
// the engine's Sum/Fold), a minimal frame parser used only to fix up and to
// check, and the invariant check macro.
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

/** Where the headers of an Ethernet(+1 tag)/IPv4|IPv6/TCP frame are,
 *  computed independently of the engine (loose: no length checks beyond
 *  what is needed to stay in bounds). */
struct Hdrs {
  bool ok = false;
  bool v6 = false;
  size_t l3 = 0, l4 = 0, hdrLen = 0, ipEnd = 0;
};

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
  if (type == 0x0800) {
    if (len < l3 + 20) return h;
    h.l4 = l3 + (f[l3] & 0x0f) * 4u;
    if (h.l4 < l3 + 20 || f[l3 + 9] != 6) return h;
    h.ipEnd = l3 + Get16(f + l3 + 2);
  } else if (type == 0x86dd) {
    if (len < l3 + 40 || f[l3 + 6] != 6) return h;
    h.v6 = true;
    h.l4 = l3 + 40;
    h.ipEnd = h.l4 + Get16(f + l3 + 4);
  } else {
    return h;
  }
  if (len < h.l4 + 20) return h;
  h.hdrLen = h.l4 + (f[h.l4 + 12] >> 4) * 4u;
  if (h.hdrLen < h.l4 + 20 || h.hdrLen > len) return h;
  h.ok = true;
  return h;
}

/** TCP pseudo-header sum for tcpLen bytes. */
inline uint32_t Pseudo(const uint8_t* f, const Hdrs& h, size_t tcpLen) {
  uint32_t s = Sum16(h.v6 ? f + h.l3 + 8 : f + h.l3 + 12, h.v6 ? 32 : 8, 6 + static_cast<uint32_t>(tcpLen & 0xffff));
  return s + static_cast<uint32_t>(tcpLen >> 16);
}

inline bool TcpCsumOk(const uint8_t* f, const Hdrs& h, size_t tcpEnd) {
  const size_t tcpLen = tcpEnd - h.l4;
  return Sum16(f + h.l4, tcpLen, Pseudo(f, h, tcpLen)) == 0xffff;
}

inline bool Ipv4CsumOk(const uint8_t* f, const Hdrs& h) { return Sum16(f + h.l3, h.l4 - h.l3) == 0xffff; }

/** Makes a frame's length fields, IPv4 header checksum and TCP checksum
 *  consistent (what a real sender produces), so that the fuzzer gets past
 *  the coalescer's checksum verification. Leaves unparsable frames alone. */
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
  f[h.l4 + 16] = f[h.l4 + 17] = 0;
  const size_t tcpLen = len - h.l4;
  Put16(f + h.l4 + 16, static_cast<uint16_t>(~Sum16(f + h.l4, tcpLen, Pseudo(f, h, tcpLen))));
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
