// The limits both data paths share: the one list. Each X(Name, value,
// "doc") entry becomes a C++ constexpr kName and, through
// scripts/gen-tables.mjs, a TS constant in src/tables/limits.generated.ts; the
// addon exports them (engineLimits) so the daemon can refuse an addon built
// from another list. Values are plain integer literals (the generator reads
// them); units are in the names. Keep each entry on one line.
#pragma once

#include <cstdint>

#define VXLAND_LIMITS(X) \
  X(MtuMinBytes, 68, "Smallest TAP MTU (IPv4's minimum, RFC 791).") \
  X(MtuMaxBytes, 65481, "Largest TAP MTU: a full-size VLAN-tagged frame (MTU + 18) behind a VXLAN header (8) must fit one UDP datagram over IPv4 (65507 payload bytes). The kernel would allow a TAP up to 65521.") \
  X(VniMax, 16777215, "Largest VNI (24 bits).") \
  X(DgramSocketBufferBytes, 4194304, "Receive and send buffer the dgram path asks for.") \
  X(EngineSocketBufferBytes, 8388608, "Receive and send buffer the native engine asks for (it batches with GRO/GSO, so it can have more in flight).") \
  X(MaxTrackedVteps, 4096, "Most VTEPs with per-VTEP counters of their own; the rest count under other.") \
  X(MaxForeignVniSenders, 64, "Most (sender, VNI) pairs remembered for foreign-VNI diagnosis.") \
  X(MaxRefusedSenders, 64, "Most senders refused by the source policy that are remembered.") \
  X(LearnReportIntervalMs, 1000, "A source MAC not in the table is offered for learning (and counted under learn refused when refused) at most this often.") \
  X(LearnReportMaxMacs, 65536, "Most source MACs whose last offer is remembered for LearnReportIntervalMs; past it the memory starts over.") \
  X(SrcPortSockets, 64, "Send sockets (outer UDP source ports) each data path binds over the --srcport range; a flow's hash picks one (native/core_srcport.h). 64: 8 flows land on 6 or more distinct ports but 0.35 % of the time (16: 15 %).") \
  X(SrcPortBindAttempts, 64, "Ports a send socket tries, walking on through the --srcport range, before its slot shares another socket.") \
  X(IcmpTooBigPerS, 10, "ICMP fragmentation-needed / packet-too-big replies a network writes into its TAP per second at most (a token bucket, native/core_pmtu.h); oversize frames past it are only counted.") \
  X(IcmpTooBigBurst, 10, "Replies the token bucket of IcmpTooBigPerS holds when full.")

namespace vxland {

#define VXLAND_X(name, value, doc) inline constexpr int64_t k##name = value;
VXLAND_LIMITS(VXLAND_X)
#undef VXLAND_X

}  // namespace vxland
