#include "engine_io.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace vxland {

const char* const kCounterNames[kCounterCount] = {
    "rxPackets", "rxBytes", "txPackets", "txBytes",
#define VXLAND_X(name, text, doc) "drop:" text,
    VXLAND_DROP_REASONS(VXLAND_X)
#undef VXLAND_X
    "rxDatagrams", "txDatagrams", "rxRecvCalls", "rxGroDatagrams", "rxTapWrites", "rxCoalescedWrites",
    "txTapReads", "txTsoFrames", "txSendCalls", "txGsoMessages", "txWorkerSplits", "txWorkerJoins",
    "rxBusyPolls", "rxBusyPollHits",
};

namespace {

constexpr size_t kArenaBytes = 4 * 1024 * 1024;
/** Datagrams (and so messages) queued per flush at most. */
constexpr size_t kMaxDatagrams = 2048;
/** UDP_MAX_SEGMENTS of older kernels (64; newer ones allow 128). */
constexpr uint32_t kMaxGsoSegments = 64;
/** A GSO message is one UDP datagram before segmentation: its payload must fit
 *  an IPv4 datagram (65535 - 20 - 8). */
constexpr uint32_t kMaxGsoBytes = 65507;
/** sendmmsg takes at most UIO_MAXIOV messages per call. */
constexpr size_t kMaxMsgsPerCall = 1024;
constexpr int kSendWaitMs = 10;
constexpr int kSendWaitRounds = 10;
constexpr size_t kCmsgBytes = CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(int));  // UDP_SEGMENT, IP_TOS
constexpr size_t kRxCmsgBytes = 2 * CMSG_SPACE(sizeof(int));                          // UDP_GRO, IP_TOS
/** Control room for one error-queue entry: the extended error and the
 *  offender's address (SO_EE_OFFENDER), IPv6 at most. */
constexpr size_t kErrCmsgBytes = CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6));

void SetBuffer(int fd, int forceOpt, int opt, int bytes) {
  // SO_*BUFFORCE ignores rmem_max/wmem_max (needs CAP_NET_ADMIN); otherwise
  // the kernel clamps the plain option, which still works, just smaller.
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &bytes, sizeof(bytes)) == 0) return;
  (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

}  // namespace

int AcceptZeroUdp6Checksums(int fd) {
  int one = 1;
  return setsockopt(fd, SOL_UDP, UDP_NO_CHECK6_RX, &one, sizeof(one)) == 0 ? 0 : errno;
}

int OpenUdpSocket(const Vtep& local, int bufferBytes, UdpSocket* out, std::string* syscall) {
  const int family = local.addr.sa.sa_family;
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *syscall = "socket";
    return errno;
  }
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    *syscall = what;
    return err;
  };
  int one = 1;
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
    return fail("setsockopt(IPV6_V6ONLY)");
  }
  if (family == AF_INET) {
    // The kernel vxlan driver sends with DF clear unless configured with
    // `df set`/`df inherit` (vxlan_core.c: df defaults to 0), so we do too.
    // We never fragment an inner frame ourselves: frames over the MTU are
    // dropped (RFC 7348 §4.3), so with a correctly sized underlay no outer
    // datagram needs fragmenting either.
    int pmtu = IP_PMTUDISC_DONT;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0) return fail("setsockopt(IP_MTU_DISCOVER)");
  }
  // An unconnected UDP socket hears no ICMP errors unless asked: with
  // IP_RECVERR / IPV6_RECVERR each one (port or host unreachable) is queued
  // on the error queue with the destination it was about (ReceiveErrors).
  if (family == AF_INET && setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one)) < 0) {
    return fail("setsockopt(IP_RECVERR)");
  }
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one)) < 0) {
    return fail("setsockopt(IPV6_RECVERR)");
  }
  if (family == AF_INET6 && AcceptZeroUdp6Checksums(fd) != 0) return fail("setsockopt(UDP_NO_CHECK6_RX)");
  // The outer TOS of each datagram (its ECN field) for RFC 6040 decapsulation.
  if (family == AF_INET && setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one)) < 0) return fail("setsockopt(IP_RECVTOS)");
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof(one)) < 0) {
    return fail("setsockopt(IPV6_RECVTCLASS)");
  }
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, bufferBytes);
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, bufferBytes);
  if (::bind(fd, &local.addr.sa, local.len) < 0) return fail("bind");
  out->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  int zero = 0;
  // Setting a zero segment size succeeds exactly where UDP_SEGMENT exists.
  out->gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
  socklen_t len = sizeof(int);
  (void)getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &out->rcvbufBytes, &len);
  len = sizeof(int);
  (void)getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &out->sndbufBytes, &len);
  Vtep bound;
  bound.len = sizeof(bound.addr);
  if (getsockname(fd, &bound.addr.sa, &bound.len) < 0) return fail("getsockname");
  out->port = ntohs(family == AF_INET ? bound.addr.in4.sin_port : bound.addr.in6.sin6_port);
  out->fd = fd;
  return 0;
}

int SetEnvelope(int fd, int family, int ttl, int tos, bool df, std::string* syscall) {
  if (family == AF_INET) {
    if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0) {
      *syscall = "setsockopt(IP_TTL)";
      return errno;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) < 0) {
      *syscall = "setsockopt(IP_TOS)";
      return errno;
    }
    int pmtu = df ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0) {
      *syscall = "setsockopt(IP_MTU_DISCOVER)";
      return errno;
    }
    return 0;
  }
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) < 0) {
    *syscall = "setsockopt(IPV6_UNICAST_HOPS)";
    return errno;
  }
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos)) < 0) {
    *syscall = "setsockopt(IPV6_TCLASS)";
    return errno;
  }
  return 0;
}

// ---- VtepTally ----

VtepTally::VtepTally()
    : slots_(new Slot[kSlots]), overflow_(new VtepCounts[kNetKeys]), overflowUsed_(new bool[kNetKeys]()) {
  overflowNets_.reserve(kNetKeys);
}

VtepCounts* VtepTally::At(const Vtep& v, uint32_t net) {
  uint8_t key[16];
  IpKey(v, key);
  if (last_ != nullptr && last_->net == net && memcmp(last_->key, key, 16) == 0) return &last_->counts;
  uint64_t a, b;
  memcpy(&a, key, 8);
  memcpy(&b, key + 8, 8);
  uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full) ^ (static_cast<uint64_t>(net) * 0x165667b19e3779f9ull);
  size_t i = static_cast<size_t>(h >> 32) & (kSlots - 1);
  for (size_t probe = 0; probe < kSlots; probe++, i = (i + 1) & (kSlots - 1)) {
    Slot& s = slots_[i];
    if (s.full) {
      if (s.net == net && memcmp(s.key, key, 16) == 0) {
        last_ = &s;
        return &s.counts;
      }
      continue;
    }
    if (used_ == kMaxVteps) break;
    s.full = true;
    s.net = net;
    memcpy(s.key, key, 16);
    s.vtep = v;
    order_[used_++] = static_cast<uint16_t>(i);
    last_ = &s;
    return &s.counts;
  }
  return Overflow(net);
}

static_assert((VtepTally::kMaxVteps * 2 & (VtepTally::kMaxVteps * 2 - 1)) == 0, "slot count is a power of two");
static_assert(VtepTally::kMaxVteps * 2 <= 65536, "slot indices fit order_'s uint16_t");

// ---- UdpSender ----

UdpSender::UdpSender(int fd, bool gso, int wakeFd, LocalCounters* ctr, VtepTally* tally, std::function<void(int)> onGsoLost)
    : UdpSender(std::vector<int>{fd}, gso, wakeFd, ctr, tally, std::move(onGsoLost)) {}

UdpSender::UdpSender(std::vector<int> fds, bool gso, int wakeFd, LocalCounters* ctr, VtepTally* tally, std::function<void(int)> onGsoLost)
    : fds_(std::move(fds)),
      gso_(gso),
      wakeFd_(wakeFd),
      ctr_(ctr),
      tally_(tally),
      onGsoLost_(std::move(onGsoLost)),
      arena_(new uint8_t[kArenaBytes]),
      cmsg_(new uint8_t[kMaxDatagrams * kCmsgBytes]) {
  msgs_.reserve(kMaxDatagrams);
  scratch_.reserve(kMaxDatagrams);
  segs_.resize(kMaxDatagrams);
  iov_.resize(kMaxDatagrams * 2);
  mm_.resize(kMaxDatagrams);
  memset(cmsg_.get(), 0, kMaxDatagrams * kCmsgBytes);
}

uint8_t* UdpSender::Tail(size_t bytes, size_t datagrams) {
  if (end_ + bytes > kArenaBytes || datagrams_ + datagrams > kMaxDatagrams) Flush();
  if (bytes > kArenaBytes) return nullptr;
  return arena_.get() + end_;
}

void UdpSender::Commit(const uint8_t* end) {
  const size_t off = static_cast<size_t>(end - arena_.get());
  if (off > end_ && off <= kArenaBytes) end_ = off;
}

void UdpSender::MakeRoom(const uint8_t* keepEnd) {
  if (datagrams_ < kMaxDatagrams) return;
  Flush();
  Commit(keepEnd);
}

void UdpSender::Add(const Vtep& dest, const uint8_t* head, size_t headBytes, const uint8_t* body, size_t bodyBytes) {
  if (datagrams_ == kMaxDatagrams) return ctr_->NetDrop(net_, kTxQueueFull);  // the caller asked Tail() for too few
  const uint32_t bytes = static_cast<uint32_t>(headBytes + bodyBytes);
  Seg& seg = segs_[datagrams_];
  seg.iovFirst = static_cast<uint32_t>(iovUsed_);
  seg.iovCount = bodyBytes > 0 ? 2 : 1;
  seg.bytes = bytes;
  iov_[iovUsed_++] = {const_cast<uint8_t*>(head), headBytes};
  if (bodyBytes > 0) iov_[iovUsed_++] = {const_cast<uint8_t*>(body), bodyBytes};
  const uint32_t index = static_cast<uint32_t>(datagrams_++);
  if (gso_ && !msgs_.empty()) {
    // The previous message's segments are the last ones queued, so its iovecs
    // run on into this datagram's.
    Msg& last = msgs_.back();
    if (last.total == last.segs * last.segBytes && bytes <= last.segBytes && last.segs < kMaxGsoSegments &&
        last.total + bytes <= kMaxGsoBytes && last.net == net_ && last.sock == sock_ && last.tos == tos_ && memcmp(&last.dest.addr, &dest.addr, dest.len) == 0 &&
        last.dest.len == dest.len) {
      last.total += bytes;
      last.segs++;
      return;
    }
  }
  msgs_.push_back(Msg{dest, net_, sock_, tos_, index, bytes, bytes, 1});
}

void UdpSender::Expand(size_t from) {
  scratch_.clear();
  for (size_t i = from; i < msgs_.size(); i++) {
    const Msg& m = msgs_[i];
    for (uint32_t s = 0; s < m.segs; s++) {
      const uint32_t len = segs_[m.segFirst + s].bytes;
      scratch_.push_back(Msg{m.dest, m.net, m.sock, m.tos, m.segFirst + s, len, len, 1});
    }
  }
  msgs_.resize(from);
  msgs_.insert(msgs_.end(), scratch_.begin(), scratch_.end());
}

bool UdpSender::WaitWritable(int fd) {
  struct pollfd p[2] = {{fd, POLLOUT, 0}, {wakeFd_, POLLIN, 0}};
  int r = ::poll(p, 2, kSendWaitMs);
  return r > 0 && (p[1].revents & POLLIN) == 0;
}

void UdpSender::GroupBySocket() {
  // One sendmmsg call sends from one socket: messages are put in runs of one
  // socket, keeping their order within each (so within each flow).
  bool mixed = false;
  for (size_t k = 1; k < msgs_.size() && !mixed; k++) mixed = msgs_[k].sock != msgs_[0].sock;
  if (!mixed) return;
  scratch_.clear();
  for (uint32_t s = 0; s < fds_.size(); s++) {
    for (const Msg& m : msgs_) {
      if (m.sock == s) scratch_.push_back(m);
    }
  }
  msgs_.swap(scratch_);
}

void UdpSender::Flush() {
  GroupBySocket();
  size_t i = 0;
  int waits = 0;
  bool built = false;
  bool retried = false;  // message i failed once already
  while (i < msgs_.size()) {
    const size_t total = msgs_.size();
    if (!built) {
      for (size_t k = i; k < total; k++) {
        Msg& m = msgs_[k];
        const Seg& first = segs_[m.segFirst];
        const Seg& last = segs_[m.segFirst + m.segs - 1];
        struct msghdr& h = mm_[k].msg_hdr;
        memset(&h, 0, sizeof(h));
        h.msg_name = &m.dest.addr;
        h.msg_namelen = m.dest.len;
        h.msg_iov = &iov_[first.iovFirst];
        h.msg_iovlen = last.iovFirst + last.iovCount - first.iovFirst;
        if (m.segs > 1 || m.tos != 0) {
          uint8_t* c = cmsg_.get() + k * kCmsgBytes;
          h.msg_control = c;
          h.msg_controllen = kCmsgBytes;
          struct cmsghdr* cm = CMSG_FIRSTHDR(&h);
          size_t used = 0;
          if (m.segs > 1) {
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = static_cast<uint16_t>(m.segBytes);
            memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
            used += CMSG_SPACE(sizeof(uint16_t));
            cm = reinterpret_cast<struct cmsghdr*>(c + used);
          }
          if (m.tos != 0) {
            const bool v4 = m.dest.addr.sa.sa_family == AF_INET;
            cm->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
            cm->cmsg_type = v4 ? IP_TOS : IPV6_TCLASS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            const int tos = m.tos;
            memcpy(CMSG_DATA(cm), &tos, sizeof(tos));
            used += CMSG_SPACE(sizeof(int));
          }
          h.msg_controllen = used;
        }
      }
      built = true;
    }
    const uint32_t sock = msgs_[i].sock;
    size_t batch = 1;
    while (i + batch < total && batch < kMaxMsgsPerCall && msgs_[i + batch].sock == sock) batch++;
    ctr_->v[kTxSendCalls]++;
    const int fd = fds_[sock];
    int r = ::sendmmsg(fd, &mm_[i], static_cast<unsigned>(batch), MSG_DONTWAIT);
    if (r > 0) {
      for (int k = 0; k < r; k++) {
        const Msg& m = msgs_[i + k];
        const uint64_t inner = m.total - m.segs * 8u;  // inner frame bytes, as the dgram path counts
        ctr_->v[kTxPackets] += m.segs;
        ctr_->v[kTxDatagrams] += m.segs;
        ctr_->v[kTxBytes] += inner;
        uint64_t* nc = ctr_->Net(m.net);
        nc[kNetTxPackets] += m.segs;
        nc[kNetTxBytes] += inner;
        if (m.segs > 1) ctr_->v[kTxGsoMessages]++;
        if (tally_ != nullptr) {
          VtepCounts* vc = tally_->At(m.dest, m.net + 1);
          vc->txPackets += m.segs;
          vc->txBytes += inner;
        }
      }
      i += static_cast<size_t>(r);
      waits = 0;
      retried = false;
      continue;
    }
    const int err = r < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == ENOBUFS) {
      if (waits++ < kSendWaitRounds && WaitWritable(fd)) continue;
      // This socket stays full: the rest of its run is dropped; the other
      // sockets' runs still go.
      size_t k = i;
      for (; k < total && msgs_[k].sock == sock; k++) {
        ctr_->NetDrop(msgs_[k].net, kTxQueueFull, msgs_[k].segs);
        if (tally_ != nullptr) tally_->At(msgs_[k].dest, msgs_[k].net + 1)->drops += msgs_[k].segs;
      }
      i = k;
      waits = 0;
      retried = false;
      continue;
    }
    if (err == EIO && msgs_[i].segs > 1 && gso_) {
      // A device on the route cannot do UDP segmentation (or checksum offload
      // it needs): send the rest, and everything from now on, one by one.
      gso_ = false;
      onGsoLost_(err);
      Expand(i);
      built = false;
      continue;
    }
    if (!retried) {
      // With IP_RECVERR a pending ICMP error (about any VTEP) fails the next
      // send once, whatever its destination; the error itself is counted
      // from the error queue. Only a second failure is this datagram's own.
      retried = true;
      continue;
    }
    ctr_->NetDrop(msgs_[i].net, kTxSendError, msgs_[i].segs);
    if (tally_ != nullptr) tally_->At(msgs_[i].dest, msgs_[i].net + 1)->drops += msgs_[i].segs;
    i++;
    retried = false;
  }
  msgs_.clear();
  end_ = 0;
  datagrams_ = 0;
  iovUsed_ = 0;
}

// ---- UdpReceiver ----

UdpReceiver::UdpReceiver(int fd, bool gro)
    : fd_(fd), bufs_(new uint8_t[kBufBytes * kMsgs]), cmsg_(new uint8_t[kRxCmsgBytes * kMsgs]) {
  (void)gro;
  mm_.resize(kMsgs);
  iov_.resize(kMsgs);
  names_.resize(kMsgs);
}

int UdpReceiver::Receive() {
  for (int i = 0; i < kMsgs; i++) {
    iov_[i].iov_base = Data(i);
    iov_[i].iov_len = kBufBytes;
    struct msghdr& h = mm_[i].msg_hdr;
    h.msg_name = &names_[i];
    h.msg_namelen = sizeof(names_[i]);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_control = cmsg_.get() + i * kRxCmsgBytes;
    h.msg_controllen = kRxCmsgBytes;
    h.msg_flags = 0;
  }
  for (;;) {
    int r = ::recvmmsg(fd_, mm_.data(), kMsgs, MSG_DONTWAIT, nullptr);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    return -errno;
  }
}

size_t UdpReceiver::SegBytes(int i) const {
  const struct msghdr& h = mm_[i].msg_hdr;
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(const_cast<struct msghdr*>(&h)); cm != nullptr;
       cm = CMSG_NXTHDR(const_cast<struct msghdr*>(&h), cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int seg;
      memcpy(&seg, CMSG_DATA(cm), sizeof(seg));
      if (seg > 0) return static_cast<size_t>(seg);
    }
  }
  return Len(i);
}

int UdpReceiver::ReceiveSendErrors(int fd, Vtep* dests, int max) {
  int n = 0;
  // Bounded: EINTR and entries that are no send error also use up attempts.
  for (int attempt = 0; attempt < 2 * max && n < max; attempt++) {
    uint8_t payload[1];  // the offending datagram is not needed (MSG_TRUNC)
    alignas(struct cmsghdr) uint8_t control[kErrCmsgBytes];
    struct sockaddr_in6 name;
    struct iovec iov = {payload, sizeof(payload)};
    struct msghdr h;
    memset(&h, 0, sizeof(h));
    h.msg_name = &name;
    h.msg_namelen = sizeof(name);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof(control);
    if (::recvmsg(fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: the queue is empty
    }
    bool sendError = false;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(&h, cm)) {
      if ((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
          (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)) {
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
        sendError = ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6 ||
                    ee.ee_origin == SO_EE_ORIGIN_LOCAL;
      }
    }
    if (!sendError) continue;
    // msg_name is the destination of the datagram the error is about.
    Vtep& v = dests[n++];
    memset(&v.addr, 0, sizeof(v.addr));
    v.len = h.msg_namelen < sizeof(v.addr) ? h.msg_namelen : sizeof(v.addr);
    memcpy(&v.addr, &name, v.len);
  }
  return n;
}

int UdpReceiver::Tos(int i) const {
  const struct msghdr& h = mm_[i].msg_hdr;
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(const_cast<struct msghdr*>(&h)); cm != nullptr;
       cm = CMSG_NXTHDR(const_cast<struct msghdr*>(&h), cm)) {
    // IPv4 hands over one byte, IPv6 an int.
    if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS) return *CMSG_DATA(cm);
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_TCLASS) {
      int tclass;
      memcpy(&tclass, CMSG_DATA(cm), sizeof(tclass));
      return tclass & 0xff;
    }
  }
  return -1;
}

void UdpReceiver::From(int i, Vtep* out) const {
  const struct msghdr& h = mm_[i].msg_hdr;
  memset(&out->addr, 0, sizeof(out->addr));
  memcpy(&out->addr, h.msg_name, h.msg_namelen < sizeof(out->addr) ? h.msg_namelen : sizeof(out->addr));
  out->len = h.msg_namelen;
}

}  // namespace vxland
