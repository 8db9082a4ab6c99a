// Path MTU feedback, written once: a frame read from the TAP that is too big
// for the tunnel (TxFrameDrop said kTxOversize) and that no router may
// fragment (IPv4 with DF, or any IPv6) is dropped and counted as before,
// and, within a per-network budget, answered with the ICMP error a router
// would send: IPv4 "fragmentation needed" (type 3 code 4, RFC 1191) or IPv6
// "packet too big" (type 2, RFC 4443), carrying the tunnel MTU, so that the
// sender's path-MTU discovery adapts. Both data paths call PmtuReply after
// TxFrameDrop: the native engine's tx worker directly, the dgram path
// through PacketCore.classifyTx. After the kernel's bridged-tunnel reply
// (net/ipv4/ip_tunnel_core.c iptunnel_pmtud_build_icmp{,v6}): the frame's
// Ethernet and IP addresses swapped (the reply seems to come from the
// destination the sender addressed: its gateway's MAC, its peer's IP), the
// hop limit the original's, IPv4 with DF and TOS 0, the original quoted up
// to 576 (IPv4, RFC 1812 §4.3.2.3) or 1280 (IPv6) bytes in all; no reply
// when the tunnel MTU is below 576 / 1280, for fragments, for ICMP errors,
// for group or unspecified addresses, for VLAN-tagged frames and GSO
// super-frames. No N-API, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace vxland {
namespace core {

/** A network's budget of too-big replies: a token bucket of
 *  kIcmpTooBigBurst tokens refilled at kIcmpTooBigPerS (native/limits.h).
 *  Shared by every snapshot of the network; thread-safe. */
class IcmpBudget {
 public:
  /** Takes a token at nowMs; false when none is left. */
  bool Take(int64_t nowMs);

 private:
  std::mutex mu_;
  double tokens_ = -1;  // < 0: not yet started (a full bucket)
  int64_t lastMs_ = 0;
};

/** PmtuReply's verdicts. */
enum PmtuVerdict : int {
  kNoPmtuReply = 0,  // count the drop only
  kPmtuReplied,      // frame[0, *replyBytes) is now the ICMP error for the TAP
};

/** Looks at frame[0, flen) read from a TAP of MTU mtuBytes, an untagged
 *  frame already judged oversize (flen > 14 + mtuBytes, no GSO). A frame
 *  that qualifies (see above) is rewritten in place into the ICMP error,
 *  when budget has a token at nowMs; the reply is never longer than the
 *  frame (576 <= MTU < the frame's IP length for IPv4, 1280 for IPv6). */
PmtuVerdict PmtuReply(IcmpBudget& budget, size_t mtuBytes, uint8_t* frame, size_t flen, int64_t nowMs, size_t* replyBytes);

}  // namespace core
}  // namespace vxland
