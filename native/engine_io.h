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

#include "drop_reasons.h"
#include "engine_fdb.h"
#include "limits.h"
#include "net_events.h"

namespace vxland {

/** Counter indexes; kDropBase + DropReason (native/drop_reasons.h) are drops. */
enum EngineCounter : int {
  kRxPackets = 0,
  kRxBytes,
  kTxPackets,
  kTxBytes,
  kDropBase,
  kRxDatagrams = kDropBase + kDropReasonCount,  // outer datagrams received (after GRO split)
  kTxDatagrams,                   // outer datagrams sent
  kRxRecvCalls,                   // recvmmsg calls that returned data
  kRxGroDatagrams,                // receives that carried more than one datagram (UDP_GRO)
  kRxTapWrites,                   // writes to the TAP
  kRxCoalescedWrites,             // TAP writes carrying several TCP segments (TSO) or UDP datagrams (USO)
  kTxTapReads,                    // frames read from the TAP
  kTxTsoFrames,                   // TAP super-frames split into segments
  kTxSendCalls,                   // sendmmsg calls
  kTxGsoMessages,                 // messages sent with UDP_SEGMENT
  kTxWorkerSplits,                // tx worker handed to its own thread (load)
  kTxWorkerJoins,                 // tx worker handed back to the rx thread
  kRxBusyPolls,                   // busy polls after an isolated packet (engine_sched.h)
  kRxBusyPollHits,                // those that saw an fd ready before their end
  kCounterCount,
};
/** Names in index order, exported to JS; a drop counter is "drop:" and
 *  its reason's name. */
extern const char* const kCounterNames[kCounterCount];

/** Per-network counter indexes (one set per network slot); kNetDropBase +
 *  DropReason are the network's drops, kNetEventBase + NetEvent
 *  (native/net_events.h) its other events. */
enum NetCounter : int {
  kNetRxPackets = 0,
  kNetRxBytes,
  kNetTxPackets,
  kNetTxBytes,
  kNetDropBase,
  kNetEventBase = kNetDropBase + kDropReasonCount,
  kNetCounterCount = kNetEventBase + kNetEventCount,
};

/** Per-thread counter deltas, added to the shared atomics once per batch:
 *  the host's (diagnostics, totals, and the drops that happen before a
 *  datagram's network is known) and each network slot's. */
struct LocalCounters {
  uint64_t v[kCounterCount] = {};
  LocalCounters() : net_(new uint64_t[kMaxNetworks * kNetCounterCount]()), isDirty_(new bool[kMaxNetworks]()) {
    dirty_.reserve(kMaxNetworks);
  }
  /** A host-level drop. */
  void Drop(int reason, uint64_t n = 1) { v[kDropBase + reason] += n; }
  /** Network slot's counters (NetCounter indexes). */
  uint64_t* Net(uint32_t slot) {
    if (!isDirty_[slot]) {
      isDirty_[slot] = true;
      dirty_.push_back(slot);
    }
    return net_.get() + static_cast<size_t>(slot) * kNetCounterCount;
  }
  void NetDrop(uint32_t slot, int reason, uint64_t n = 1) { Net(slot)[kNetDropBase + reason] += n; }
  /** Calls fn(slot, counters) for every slot counted in since the last call
   *  and zeroes them. */
  template <typename Fn>
  void DrainNets(Fn fn) {
    for (uint32_t slot : dirty_) {
      uint64_t* c = net_.get() + static_cast<size_t>(slot) * kNetCounterCount;
      fn(slot, c);
      for (int i = 0; i < kNetCounterCount; i++) c[i] = 0;
      isDirty_[slot] = false;
    }
    dirty_.clear();
  }

 private:
  std::unique_ptr<uint64_t[]> net_;
  std::unique_ptr<bool[]> isDirty_;
  std::vector<uint32_t> dirty_;
};

/** VtepTally's network key: a network slot + 1, or kHostNet for counts
 *  before a network was known (host-level drops, ICMP errors). */
constexpr uint32_t kHostNet = 0;

/** What one packet thread counted for one VTEP since its last report. */
struct VtepCounts {
  uint64_t rxPackets = 0;
  uint64_t rxBytes = 0;   // inner frame bytes, as the totals count them
  uint64_t txPackets = 0;
  uint64_t txBytes = 0;
  uint64_t drops = 0;     // datagrams from it dropped, sends to it that failed
  int64_t lastRxMs = 0;   // CLOCK_MONOTONIC ms of the last datagram from it; 0 = none

  void Add(const VtepCounts& o) {
    rxPackets += o.rxPackets;
    rxBytes += o.rxBytes;
    txPackets += o.txPackets;
    txBytes += o.txBytes;
    drops += o.drops;
    if (o.lastRxMs > lastRxMs) lastRxMs = o.lastRxMs;
  }
};

/** Per-VTEP counts per network in a fixed open-addressed table (no
 *  allocation while counting): a packet thread's since it last merged them,
 *  or the engine's since JS last took them. Addresses are taken from the
 *  network, so the table is bounded, in total over all networks (as JS's
 *  VtepBudget): past kMaxVteps distinct (network, address) pairs the rest
 *  are summed in the network's overflow, which is reported without an
 *  address (JS counts it under 'other'). */
class VtepTally {
 public:
  /** As many as JS gives counters of their own (one limit, native/limits.h),
   *  so that no peer's counts end up in 'other'. */
  static constexpr size_t kMaxVteps = static_cast<size_t>(kMaxTrackedVteps);
  VtepTally();
  /** The counts of v's IP (port ignored) in network key net (slot + 1, or kHostNet). */
  VtepCounts* At(const Vtep& v, uint32_t net);
  bool Empty() const { return used_ == 0 && overflowNets_.empty(); }
  /** Adds all of other's counts into this table and empties other. */
  void MergeFrom(VtepTally& other) {
    other.Drain([this](uint32_t net, const Vtep* v, const VtepCounts& c) {
      if (v != nullptr) At(*v, net)->Add(c);
      else Overflow(net)->Add(c);
    });
  }
  size_t Size() const { return used_ + overflowNets_.size(); }
  /** Calls fn(net, vtep, counts) for every (network, address), then
   *  fn(net, nullptr, overflow) for every network whose overflow saw
   *  anything, and empties the table. */
  template <typename Fn>
  void Drain(Fn fn) {
    for (size_t i = 0; i < used_; i++) {
      Slot& s = slots_[order_[i]];
      fn(s.net, &s.vtep, s.counts);
      s.full = false;
      s.counts = VtepCounts();
    }
    used_ = 0;
    last_ = nullptr;
    for (uint32_t net : overflowNets_) {
      fn(net, nullptr, overflow_[net]);
      overflow_[net] = VtepCounts();
      overflowUsed_[net] = false;
    }
    overflowNets_.clear();
  }

 private:
  static constexpr size_t kSlots = 2 * kMaxVteps;  // load factor <= 1/2
  static constexpr size_t kNetKeys = kMaxNetworks + 1;
  struct Slot {
    bool full = false;
    uint32_t net = 0;
    uint8_t key[16];
    Vtep vtep;
    VtepCounts counts;
  };
  VtepCounts* Overflow(uint32_t net) {
    if (!overflowUsed_[net]) {
      overflowUsed_[net] = true;
      overflowNets_.push_back(net);
    }
    return &overflow_[net];
  }
  std::unique_ptr<Slot[]> slots_;
  uint16_t order_[kMaxVteps];
  size_t used_ = 0;
  std::unique_ptr<VtepCounts[]> overflow_;  // by network key
  std::unique_ptr<bool[]> overflowUsed_;
  std::vector<uint32_t> overflowNets_;
  Slot* last_ = nullptr;  // the last address looked up: runs come from one VTEP
};

struct UdpSocket {
  int fd = -1;
  bool gro = false;       // UDP_GRO accepted
  bool gso = false;       // UDP_SEGMENT accepted
  int rcvbufBytes = 0;    // as the kernel reports it
  int sndbufBytes = 0;
  uint16_t port = 0;      // bound port
};

/** UDP_NO_CHECK6_RX on an IPv6 UDP socket: datagrams with a zero UDP
 *  checksum are accepted (RFC 6935/6936; the kernel vxlan's udp6zerocsumrx),
 *  where the host's UDP layer would otherwise drop them (Udp6InCsumErrors).
 *  Datagrams with a checksum are still verified. 0 or the errno. */
int AcceptZeroUdp6Checksums(int fd);

/** Opens, configures and binds the socket. On failure returns the errno and
 *  sets *syscall; nothing is left open. */
int OpenUdpSocket(const Vtep& local, int bufferBytes, UdpSocket* out, std::string* syscall);

/** The outer header's fixed fields on UDP socket fd: TTL / hop limit, the
 *  socket's TOS / traffic class (the native engine passes 0: it sets the TOS
 *  per datagram, UdpSender::SetTos), and (IPv4) DF set or clear (the
 *  kernel's vxlan clears it). Returns 0 or the errno, *syscall set. */
int SetEnvelope(int fd, int family, int ttl, int tos, bool df, std::string* syscall);

/** Collects datagrams and sends them with sendmmsg. A datagram is one or
 *  two pieces of memory (VXLAN + inner headers, then a payload slice) that
 *  must stay valid until Flush(): TSO segments point into the TAP read they
 *  came from instead of being copied. Headers and TAP reads live in the
 *  sender's arena (Tail/Commit). */
class UdpSender {
 public:
  /** onGsoLost runs (once) when a GSO send failed with EIO and GSO was
   *  turned off for good. wakeFd is polled while waiting for buffer space so
   *  stop() is never delayed by more than one wait. tally (may be null) gets
   *  per-destination tx counts. */
  UdpSender(int fd, bool gso, int wakeFd, LocalCounters* ctr, VtepTally* tally, std::function<void(int err)> onGsoLost);
  /** Sends from fds (one per outer source port, SetSocket picks); at least one. */
  UdpSender(std::vector<int> fds, bool gso, int wakeFd, LocalCounters* ctr, VtepTally* tally, std::function<void(int err)> onGsoLost);

  /** Room for `bytes` and `datagrams` more datagrams at the arena's end,
   *  flushing first if needed; nullptr if bytes exceeds the arena. */
  uint8_t* Tail(size_t bytes, size_t datagrams);
  /** Marks the arena used up to `end` (a pointer from the last Tail() region). */
  void Commit(const uint8_t* end);
  /** The network slot the datagrams Add()ed from now on are counted in. */
  void SetNet(uint32_t slot) { net_ = slot; }
  /** The send socket (core::FlowSlot of the frame, taken modulo the
   *  sockets there are) the datagrams Add()ed from now on leave from. */
  void SetSocket(uint32_t slot) { sock_ = static_cast<uint32_t>(slot % fds_.size()); }
  /** The outer TOS / traffic class of the datagrams Add()ed from now on
   *  (core::OuterTos); a UDP_SEGMENT run never mixes two. */
  void SetTos(uint8_t tos) { tos_ = tos; }
  /** Queues one datagram of head[0, headBytes) + body[0, bodyBytes) for
   *  dest (body may be null). Joins the previous message into one
   *  UDP_SEGMENT run when possible. */
  void Add(const Vtep& dest, const uint8_t* head, size_t headBytes, const uint8_t* body = nullptr, size_t bodyBytes = 0);
  /** For a run of datagrams out of one arena region (a frame flooded to
   *  many VTEPs): when no datagram fits any more, sends the batch and keeps
   *  the arena up to keepEnd, which the datagrams still to come point into. */
  void MakeRoom(const uint8_t* keepEnd);
  /** Sends everything queued; errors become counters. */
  void Flush();
  bool gso() const { return gso_; }
  bool Empty() const { return msgs_.empty(); }

 private:
  struct Msg {
    Vtep dest;
    uint32_t net;       // network slot
    uint32_t sock;      // index into fds_
    uint8_t tos;        // outer TOS; 0 goes without a cmsg (the socket's default)
    uint32_t segFirst;  // index into segs_
    uint32_t total;     // bytes of all segments
    uint32_t segBytes;  // bytes of each segment but the last
    uint32_t segs;
  };
  struct Seg {
    uint32_t iovFirst;
    uint32_t iovCount;
    uint32_t bytes;
  };
  void Expand(size_t from);
  bool WaitWritable(int fd);
  void GroupBySocket();

  std::vector<int> fds_;
  bool gso_;
  int wakeFd_;
  LocalCounters* ctr_;
  VtepTally* tally_;
  std::function<void(int)> onGsoLost_;
  std::unique_ptr<uint8_t[]> arena_;
  size_t end_ = 0;
  std::vector<Msg> msgs_;
  std::vector<Msg> scratch_;
  std::vector<Seg> segs_;
  std::vector<struct iovec> iov_;
  size_t iovUsed_ = 0;
  std::vector<struct mmsghdr> mm_;
  std::unique_ptr<uint8_t[]> cmsg_;
  size_t datagrams_ = 0;
  uint32_t net_ = 0;
  uint32_t sock_ = 0;
  uint8_t tos_ = 0;
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
  /** The outer TOS / traffic class of message i (IP_RECVTOS /
   *  IPV6_RECVTCLASS), -1 when the kernel gave none. */
  int Tos(int i) const;
  /** Drains up to max entries of the socket's error queue (IP_RECVERR /
   *  IPV6_RECVERR: ICMP errors and local send errors about datagrams already
   *  sent): dests[i] gets the destination each one was about. Returns how
   *  many (0 when the queue is empty). Poll reports POLLERR until drained. */
  int ReceiveErrors(Vtep* dests, int max) { return ReceiveSendErrors(fd_, dests, max); }
  /** The same for any UDP socket with IP_RECVERR / IPV6_RECVERR (the send sockets). */
  static int ReceiveSendErrors(int fd, Vtep* dests, int max);

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
