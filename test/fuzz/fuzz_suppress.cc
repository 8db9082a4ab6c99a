// libFuzzer harness: ARP/ND suppression (native/core_suppress.h
// SuppressReply), as Engine::Forward and the dgram path's PacketCore call it
// on a frame read from the TAP, against a neighbour table that knows the
// frame's ARP target and/or NS target (or nothing).
//
// Input layout (missing bytes read as 0):
//   [0]    bit 0: the table knows the ARP target IPv4 (frame bytes 38..42);
//          bit 1: it knows the NS target (frame bytes 62..78);
//          bit 2: repair the ICMPv6 checksum of an IPv6 frame (so that the
//          fuzzer gets past it)
//   [1..3) capacity beyond the frame's length (u16 LE; 0xffff: exactly the
//          frame's length)
//   rest   the frame (Ethernet, no FCS)
//
// Checked beyond ASan/UBSan: a frame not answered is unchanged; an answer
// is given only for a target the table knows, never for a gratuitous ARP,
// a probe, DAD or a tagged frame, and fits the capacity; an ARP answer is
// the reply the owner would send (op 2, addresses swapped, the table's MAC
// as sender, to the requester); an ND answer is an NA (hop limit 255, from
// the target to the solicitor, S and O set, the target and a TLLA option
// with the table's MAC) whose ICMPv6 checksum verifies (independent RFC
// 1071 code).
#include "../../native/core_suppress.h"
#include "fuzz_common.h"

using vxland::core::kArpReplied;
using vxland::core::kNdReplied;
using vxland::core::kNotSuppressed;
using vxland::core::NeighbourTable;
using vxland::core::NeighIp;
using vxland::core::SuppressReply;
using fuzz::Get16;
using fuzz::Get32;
using fuzz::Put16;

namespace {

constexpr uint32_t kVni = 42;
constexpr uint64_t kMac = 0x020000000077ull;
constexpr size_t kArpTpa = 38;
constexpr size_t kNsTarget = 62;

/** RFC 1071 over the ICMPv6 pseudo-header and message of the IPv6 frame f (payload length from its header). */
uint32_t Icmp6Sum(const uint8_t* f, size_t plen) {
  uint8_t tail[8] = {0, 0, static_cast<uint8_t>(plen >> 8), static_cast<uint8_t>(plen), 0, 0, 0, 58};
  return fuzz::Sum16(f + 54, plen, fuzz::Sum16(tail, 8, fuzz::Sum16(f + 22, 32)));
}

bool MacIs(const uint8_t* p, uint64_t mac) {
  for (int i = 5; i >= 0; i--, mac >>= 8) {
    if (p[i] != static_cast<uint8_t>(mac)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader r(data, size);
  const uint8_t opts = r.U8();
  const uint16_t extra = r.U16();
  std::vector<uint8_t> frame = r.Rest();
  const size_t len = frame.size();
  const bool v6 = len >= 54 && Get16(frame.data() + 12) == 0x86dd;
  if ((opts & 4) != 0 && v6) {
    const size_t plen = Get16(frame.data() + 18);
    if (plen >= 4 && 54 + plen <= len) {
      frame[56] = frame[57] = 0;
      Put16(frame.data() + 56, static_cast<uint16_t>(~Icmp6Sum(frame.data(), plen)));
    }
  }

  NeighbourTable table;
  NeighIp arpTarget{}, nsTarget{};
  if ((opts & 1) != 0 && len >= kArpTpa + 4) {
    arpTarget[10] = arpTarget[11] = 0xff;
    memcpy(arpTarget.data() + 12, frame.data() + kArpTpa, 4);
    table.Set(kVni, arpTarget, kMac);
  }
  if ((opts & 2) != 0 && len >= kNsTarget + 16) {
    memcpy(nsTarget.data(), frame.data() + kNsTarget, 16);
    table.Set(kVni, nsTarget, kMac);
  }

  // The frame in an allocation of exactly its capacity: ASan sees any write past it.
  const size_t capacity = extra == 0xffff ? len : len + extra;
  std::vector<uint8_t> buf(frame);
  buf.resize(capacity);
  uint8_t* heap = capacity == 0 ? nullptr : new uint8_t[capacity];
  if (heap != nullptr) memcpy(heap, buf.data(), capacity);
  size_t replyBytes = 0;
  const auto v = SuppressReply(table, kVni, heap, len, capacity, &replyBytes);
  const uint8_t* f = frame.data();

  if (v == kNotSuppressed) {
    FUZZ_CHECK(fuzz::Eq(heap, frame.data(), len), "a frame not answered was changed");
  } else {
    FUZZ_CHECK(replyBytes <= capacity, "answer of %zu bytes over the capacity %zu", replyBytes, capacity);
    FUZZ_CHECK(len >= 14 && Get16(f + 12) != 0x8100 && Get16(f + 12) != 0x88a8, "a tagged frame was answered");
  }
  if (v == kArpReplied) {
    FUZZ_CHECK(len >= 42 && Get16(f + 12) == 0x0806 && Get16(f + 20) == 1, "answered something that is no ARP request");
    FUZZ_CHECK((opts & 1) != 0, "answered an ARP target the table does not know");
    FUZZ_CHECK(memcmp(f + 28, f + 38, 4) != 0, "answered a gratuitous ARP");
    FUZZ_CHECK(Get32(f + 28) != 0, "answered an ARP probe");
    FUZZ_CHECK(replyBytes == len, "an ARP reply changed the frame's length");
    const uint8_t* a = heap;
    FUZZ_CHECK(Get16(a + 20) == 2 && MacIs(a + 22, kMac) && MacIs(a + 6, kMac), "the reply is not from the table's MAC");
    FUZZ_CHECK(memcmp(a + 28, f + 38, 4) == 0 && memcmp(a + 38, f + 28, 4) == 0, "the reply's addresses are not swapped");
    FUZZ_CHECK(memcmp(a, f + 22, 6) == 0 && memcmp(a + 32, f + 22, 6) == 0, "the reply is not to the requester");
  }
  if (v == kNdReplied) {
    FUZZ_CHECK(v6 && f[20] == 58 && f[54] == 135 && f[55] == 0 && f[21] == 255, "answered something that is no NS");
    FUZZ_CHECK((opts & 2) != 0, "answered an NS target the table does not know");
    static const uint8_t kZero[16] = {};
    FUZZ_CHECK(memcmp(f + 22, kZero, 16) != 0, "answered duplicate address detection");
    FUZZ_CHECK(f[kNsTarget] != 0xff, "answered a multicast target");
    FUZZ_CHECK(Icmp6Sum(f, Get16(f + 18)) == 0xffff, "answered an NS whose checksum is wrong");
    FUZZ_CHECK(replyBytes == 86, "an NA with TLLA is 86 bytes, got %zu", replyBytes);
    const uint8_t* a = heap;
    FUZZ_CHECK(Get16(a + 12) == 0x86dd && a[14] >> 4 == 6 && Get16(a + 18) == 32 && a[20] == 58 && a[21] == 255, "bad NA IPv6 header");
    FUZZ_CHECK(memcmp(a + 22, f + kNsTarget, 16) == 0 && memcmp(a + 38, f + 22, 16) == 0, "the NA is not from the target to the solicitor");
    FUZZ_CHECK(a[54] == 136 && a[55] == 0 && a[58] == 0x60 && memcmp(a + 62, f + kNsTarget, 16) == 0, "bad NA message");
    FUZZ_CHECK(a[78] == 2 && a[79] == 1 && MacIs(a + 80, kMac) && MacIs(a + 6, kMac), "bad TLLA option or source MAC");
    FUZZ_CHECK(Icmp6Sum(a, 32) == 0xffff, "the NA's ICMPv6 checksum does not verify");
  }
  delete[] heap;
  return 0;
}
