// Offload arithmetic for the native engine: virtio_net_hdr handling, TSO/USO
// splitting of TCP and UDP super-frames read from the TAP, completion of
// partial checksums, and GRO-style coalescing of TCP segments (and, for a TAP
// with USO, UDP datagrams) written to the TAP.
// Pure functions on caller-owned memory: no syscalls, no allocation, no
// globals, so they can be unit-tested and fuzzed in isolation.
//
// Frames are Ethernet frames (no FCS), optionally with one 802.1Q/802.1ad
// tag. Only the little-endian virtio layout is supported (x86/arm64 hosts:
// TUN uses the host byte order unless TUNSETVNETLE/BE says otherwise).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

// struct virtio_net_hdr and its constants as in <linux/virtio_net.h>, which
// cannot be included from C++ (it has a member named `class`).
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(struct virtio_net_hdr) == 10, "virtio_net_hdr is 10 bytes");
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#define VIRTIO_NET_HDR_GSO_ECN 0x80

namespace vxland {
namespace offload {

/** Network-order (big-endian) reads and writes of header fields. */
inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

constexpr size_t kVnetHdrBytes = sizeof(struct virtio_net_hdr);  // 10
constexpr size_t kEthHeaderBytes = 14;
constexpr size_t kVlanTagBytes = 4;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;
constexpr size_t kIpv4MinHeaderBytes = 20;
constexpr size_t kIpv6HeaderBytes = 40;

/** Where an Ethernet frame's L3 header starts and its EtherType. */
struct L3Start {
  uint16_t etherType;
  size_t offset;  // first byte after the EtherType field
};
/** Reads frame[0, len) (len >= kEthHeaderBytes) through up to maxTags
 *  802.1Q/802.1ad tags. A tag the frame is too short to read through stops
 *  the walk: its EtherType (kEtherTypeVlan/QinQ) is returned, so a caller
 *  that wants IP refuses the frame. maxTags 0: the outer EtherType. */
L3Start FindL3(const uint8_t* frame, size_t len, int maxTags);
/** Largest IPv4 total length / IPv6 payload length: a coalesced frame never exceeds it. */
constexpr size_t kMaxIpLengthBytes = 65535;

/** Internet checksum accumulator over p[0, n) added to sum (see Fold). Odd n
 *  is only correct for the last chunk of a summed range. */
uint64_t Sum(const uint8_t* p, size_t n, uint64_t sum);
/** Folds an accumulator to 16 bits (not complemented), in memory byte order:
 *  store it with memcpy. */
uint16_t Fold(uint64_t sum);

/** Where the TCP (or other L4) header of a frame is. */
struct L4Info {
  size_t l3;        // offset of the IP header
  size_t l4;        // offset of the L4 header
  size_t hdrLen;    // l4 + TCP header length (TCP only)
  bool v6;
  uint8_t proto;    // IPPROTO_*
  size_t ipEnd;     // l3 + IP total length (IPv4) / 40 + payload length (IPv6)
};

/** Parses Ethernet (+1 tag) / IPv4 (no fragments) or IPv6 (no extension
 *  headers) / TCP; false when the frame is anything else or malformed. */
bool ParseTcp(const uint8_t* frame, size_t len, L4Info* out);

/** The pseudo-header sum (not folded) for an info.proto segment of l4Len bytes. */
uint64_t PseudoSum(const uint8_t* frame, const L4Info& info, size_t l4Len);

/** Completes a VIRTIO_NET_HDR_F_NEEDS_CSUM checksum of a non-GSO frame: sums
 *  frame[csumStart, len) (the field holds the pseudo-header sum, as the kernel
 *  leaves it) and stores the complement at csumStart + csumOffset. False when
 *  the offsets do not fit the frame. */
bool CompleteChecksum(uint8_t* frame, size_t len, size_t csumStart, size_t csumOffset);

/** TsoSplit results below zero. */
constexpr int kSplitMalformed = -1;   // not Ethernet/IP/TCP, or gso_type not TCP
constexpr int kSplitTooBig = -2;      // a segment would exceed maxFrameBytes
constexpr int kSplitNoRoom = -3;      // out/maxSegs too small

/** Splits a GSO TCP super-frame (hdr.gso_type TCPV4/TCPV6) into MSS-sized
 *  frames with their own IPv4/IPv6 + TCP headers and full checksums (the
 *  kernel's tcp_gso_segment rules: consecutive sequence numbers and IPv4 IDs,
 *  FIN/PSH only on the last segment, CWR only on the first), or a UDP one
 *  (UDP_L4, from a sender using UDP_SEGMENT) into gso_size-payload datagrams
 *  with their own lengths, checksums and consecutive IPv4 IDs
 *  (__udp_gso_segment's rules).
 *  Segment i is written at out + i * (prefixBytes + hdrLen + gso_size) +
 *  prefixBytes, so the segments are contiguous and each has prefixBytes of
 *  room in front (for the VXLAN header); segLens[i] receives its length.
 *  Returns the number of segments or a kSplit* error. */
int TsoSplit(const uint8_t* frame, size_t len, const struct virtio_net_hdr& hdr, size_t maxFrameBytes,
             uint8_t* out, size_t outCap, size_t prefixBytes, uint32_t* segLens, int maxSegs);

/** Where TsoSplitHeaders left things. */
struct TsoLayout {
  uint32_t hdrLen;  // bytes of Ethernet (+ tag) + IP + TCP headers of every segment
  uint32_t mss;     // payload bytes of every segment but the last
};

/** TsoSplit without copying the payload: writes only segment i's headers, at
 *  hdrOut + i * (prefixBytes + layout.hdrLen) + prefixBytes; its payload is
 *  frame[hdrLen + i * mss, hdrLen + i * mss + segLens[i] - hdrLen), left in
 *  place (the frame must outlive the segments). Checksums cover the headers
 *  and that payload. Same results and errors as TsoSplit. */
int TsoSplitHeaders(const uint8_t* frame, size_t len, const struct virtio_net_hdr& hdr, size_t maxFrameBytes,
                    uint8_t* hdrOut, size_t hdrCap, size_t prefixBytes, uint32_t* segLens, int maxSegs,
                    TsoLayout* layout);

/** True when the TCP or UDP checksum of a parsed frame verifies (a UDP
 *  checksum of zero, "none", does not). */
bool L4ChecksumValid(const uint8_t* frame, const L4Info& info);

// ---- GRO: coalescing received TCP segments (UDP datagrams) into one TSO (USO) write ----

/** One write the coalescer planned: frames first, next[first], ... (count of
 *  them) as one frame. count == 1: write frame `first` as is (hdr all zero).
 *  count > 1: frame `first` carries the patched headers and its own payload;
 *  the other frames contribute frame[hdrLen, len) each; hdr is the
 *  virtio_net_hdr to put in front. */
struct GroWrite {
  struct virtio_net_hdr hdr;
  uint32_t first;
  uint32_t count;
  uint32_t hdrLen;
  uint32_t bytes;  // total frame bytes of the write
};

/** Frames handed to the coalescer. data is mutable: the first frame of a
 *  coalesced write has its headers patched in place. */
struct GroFrame {
  uint8_t* data;
  uint32_t len;
};

/** Plans the TAP writes for frames[0, n) in one pass, keeping the order of
 *  frames within every flow. Coalesces consecutive, in-order, same-size TCP
 *  segments (ACK only, PSH allowed on the last; identical options, ack and
 *  window; incrementing IPv4 IDs; verified checksums) of one flow, up to
 *  maxSegs per write and kMaxIpLengthBytes. With udp (the TAP accepts
 *  TUN_F_USO4/6) also consecutive same-size UDP datagrams of one flow (the
 *  last may be shorter; checksummed and verified; same IP envelope,
 *  incrementing IPv4 IDs), up to 64 per write: the kernel segments them again
 *  byte for byte, or hands them to a socket with UDP_GRO as one. next must
 *  hold n entries; writes must hold n entries. Returns the number of writes. */
uint32_t GroPlan(GroFrame* frames, uint32_t n, uint32_t* next, GroWrite* writes, uint32_t maxSegs, bool udp);

/** The single writes GroPlan's caller uses when coalescing is off: frame i
 *  alone, header all zero. writes must hold n entries; returns n. */
uint32_t PlanSingles(const GroFrame* frames, uint32_t n, GroWrite* writes);

/** The iovecs of one planned write after its virtio_net_hdr: the first frame
 *  whole, then frame[hdrLen, len) of each following one. iov must hold
 *  w.count entries; returns w.count. *innerBytes = the frames' full lengths
 *  summed (what the counters count, headers of every segment included). */
uint32_t GroWriteIov(const GroFrame* frames, const uint32_t* next, const GroWrite& w, struct iovec* iov,
                     uint64_t* innerBytes);

// ---- rx: one received UDP message to inner frames ----

constexpr size_t kVxlanHeaderBytes = 8;
constexpr uint8_t kVxlanFlagI = 0x08;

/** The datagrams of one received message: with UDP_GRO the kernel hands over
 *  several equal-size datagrams (the last may be shorter) in one buffer. */
struct RxDatagrams {
  size_t len;    // bytes of the message
  size_t seg;    // bytes of every datagram but the last
  size_t count;  // datagrams; an empty message is one empty datagram
  size_t Offset(size_t i) const { return i * seg; }
  size_t Bytes(size_t i) const { return len - i * seg < seg ? len - i * seg : seg; }
};

/** Splits a message of len bytes whose UDP_GRO segment size is groSegBytes
 *  (0, or larger than len: one datagram). */
RxDatagrams SplitRxMessage(size_t len, size_t groSegBytes);

/** What the receive path needs to judge a datagram. */
struct RxConfig {
  uint32_t vni;
  size_t mtuBytes;  // TAP MTU: inner frames up to 14 + mtuBytes (+ 4 when tagged)
  uint64_t ownMac;  // 48-bit, first byte most significant
  bool allowVlan;
};

/** DecapVxlan's answer: kOk, or why the datagram is dropped (each maps to
 *  one DropReason of native/drop_reasons.h). */
enum class RxVerdict { kOk, kTruncated, kNoIFlag, kWrongVni, kVlanTagged, kOversize, kOwnSourceMac, kBadSourceMac };

/** A decapsulated datagram. vni is set from kNoIFlag on (for reporting a
 *  foreign VNI); the rest only for kOk. */
struct RxFrame {
  uint8_t* frame;     // inside the datagram: d + kVxlanHeaderBytes
  size_t frameBytes;
  uint32_t vni;
  uint64_t srcMac;    // 48-bit inner source MAC
};

/** Checks one VXLAN datagram d[0, dl) (RFC 7348 §5: reserved bits are
 *  ignored) and its inner Ethernet header, in the order the drop reasons are
 *  counted. The FDB checks (static conflicts) and learning are the caller's. */
RxVerdict DecapVxlan(uint8_t* d, size_t dl, const RxConfig& cfg, RxFrame* out);

/** A 48-bit MAC read from p[0, 6). */
uint64_t MacAt(const uint8_t* p);
/** True when the Ethernet frame at p (>= 14 bytes) carries an 802.1Q/802.1ad tag. */
bool IsTagged(const uint8_t* p);

}  // namespace offload
}  // namespace vxland
