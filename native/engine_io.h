// The engine's system calls: the UDP socket (buffers, UDP_GRO, GSO probe),
// batched UDP sending (sendmmsg, runs of equal-size datagrams to one VTEP
// sent as one UDP_SEGMENT message) and batched receiving (recvmmsg with
// UDP_GRO super-datagrams). Buffers are allocated once per engine.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine_fdb.h"

namespace vxland {

/** Counter indexes; kDropBase + DropReason (src/datapath/drops.ts) are drops. */
enum EngineCounter : int {
  kRxPackets = 0,
  kRxBytes,
  kTxPackets,
  kTxBytes,
  kDropBase,
  kRxDatagrams = kDropBase + 17,  // outer datagrams received (after GRO split)
  kTxDatagrams,                   // outer datagrams sent
  kRxRecvCalls,                   // recvmmsg calls that returned data
  kRxGroDatagrams,                // receives that carried more than one datagram (UDP_GRO)
  kRxTapWrites,                   // writes to the TAP
  kRxCoalescedWrites,             // TAP writes carrying several TCP segments (TSO)
  kTxTapReads,                    // frames read from the TAP
  kTxTsoFrames,                   // TAP super-frames split into segments
  kTxSendCalls,                   // sendmmsg calls
  kTxGsoMessages,                 // messages sent with UDP_SEGMENT
  kCounterCount,
};
/** Names in index order, exported to JS (the drop names live in drops.ts). */
extern const char* const kCounterNames[kCounterCount];
constexpr int kDropReasonCount = 17;

/** The DropReason numbers of src/datapath/drops.ts (same values). */
enum DropReason : int {
  kRxTruncated = 0,
  kRxNoIFlag = 1,
  kRxWrongVni = 2,
  kRxBadSourceMac = 3,
  kRxOwnSourceMac = 4,
  kRxOversize = 5,
  kRxStaticMacConflict = 6,
  kRxTapBusy = 7,
  kRxTapError = 8,
  kTxRunt = 9,
  kTxOversize = 10,
  kTxNoDestination = 11,
  kTxQueueFull = 12,
  kTxSendError = 13,
};

/** Per-thread counter deltas, added to the shared atomics once per batch. */
struct LocalCounters {
  uint64_t v[kCounterCount] = {};
  void Drop(int reason, uint64_t n = 1) { v[kDropBase + reason] += n; }
};

struct UdpSocket {
  int fd = -1;
  bool gro = false;       // UDP_GRO accepted
  bool gso = false;       // UDP_SEGMENT accepted
  int rcvbufBytes = 0;    // as the kernel reports it
  int sndbufBytes = 0;
  uint16_t port = 0;      // bound port
};

/** Opens, configures and binds the socket. On failure returns the errno and
 *  sets *syscall; nothing is left open. */
int OpenUdpSocket(const Vtep& local, int bufferBytes, UdpSocket* out, std::string* syscall);

/** Collects datagrams in one arena and sends them with sendmmsg. */
class UdpSender {
 public:
  /** onGsoLost runs (once) when a GSO send failed with EIO and GSO was
   *  turned off for good. wakeFd is polled while waiting for buffer space so
   *  stop() is never delayed by more than one wait. */
  UdpSender(int fd, bool gso, int wakeFd, LocalCounters* ctr, std::function<void(int err)> onGsoLost);

  /** Room for `bytes` and `datagrams` more datagrams at the arena's end,
   *  flushing first if needed; nullptr if bytes exceeds the arena. */
  uint8_t* Tail(size_t bytes, size_t datagrams);
  /** Offset of p (a pointer into the arena). */
  size_t OffsetOf(const uint8_t* p) const { return static_cast<size_t>(p - arena_.get()); }
  /** Queues arena[off, off + bytes) (VXLAN header + inner frame) for dest.
   *  Joins the previous message into one UDP_SEGMENT run when possible. */
  void Add(const Vtep& dest, size_t off, size_t bytes);
  /** Sends everything queued; errors become counters. */
  void Flush();
  bool gso() const { return gso_; }

 private:
  struct Msg {
    Vtep dest;
    uint32_t off;
    uint32_t total;     // bytes of all segments
    uint32_t segBytes;  // bytes of each segment but the last
    uint32_t segs;
  };
  void Expand(size_t from);
  bool WaitWritable();

  int fd_;
  bool gso_;
  int wakeFd_;
  LocalCounters* ctr_;
  std::function<void(int)> onGsoLost_;
  std::unique_ptr<uint8_t[]> arena_;
  size_t end_ = 0;
  std::vector<Msg> msgs_;
  std::vector<Msg> scratch_;
  std::vector<struct mmsghdr> mm_;
  std::vector<struct iovec> iov_;
  std::unique_ptr<uint8_t[]> cmsg_;
  size_t datagrams_ = 0;
};

/** recvmmsg into fixed buffers big enough for a UDP_GRO super-datagram. */
class UdpReceiver {
 public:
  UdpReceiver(int fd, bool gro);
  /** One recvmmsg (non-blocking): the number of messages, 0 when none, or
   *  -errno for an error other than EAGAIN/EINTR. */
  int Receive();
  uint8_t* Data(int i) { return bufs_.get() + static_cast<size_t>(i) * kBufBytes; }
  size_t Len(int i) const { return mm_[i].msg_len; }
  bool Truncated(int i) const { return (mm_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
  /** Bytes of each datagram in message i (the UDP_GRO segment size), or Len(i). */
  size_t SegBytes(int i) const;
  void From(int i, Vtep* out) const;

  static constexpr size_t kBufBytes = 65536;
  static constexpr int kMsgs = 32;

 private:
  int fd_;
  std::unique_ptr<uint8_t[]> bufs_;
  std::vector<struct mmsghdr> mm_;
  std::vector<struct iovec> iov_;
  std::vector<struct sockaddr_in6> names_;
  std::unique_ptr<uint8_t[]> cmsg_;
};

}  // namespace vxland
