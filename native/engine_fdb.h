// The engine's MIRROR of the forwarding table (src/fdb/fdb.ts is the table:
// its rules — learning, moving, ageing, static pinning, limits — are applied
// there and only there). The mirror holds what the packet threads need:
// (vni, mac) -> {VTEP socket address, pinned} and the flood list per VNI,
// written from the JS thread, read by the rx/tx threads. One mutex; the
// threads hold it for a lookup only (no syscall, no allocation under it).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vxland {

/** Networks one packet core context serves at once at most (core::Context
 *  slots): a network's slot indexes its counters in the engine. */
constexpr uint32_t kMaxNetworks = 1024;

/** An outer IPv4/IPv6 address plus UDP port. */
struct Vtep {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addr;
  socklen_t len = 0;

  bool SameIp(const Vtep& o) const;
  /** The IP literal (no port). */
  std::string IpString() const;
};

/** The IP of v as 16 bytes (IPv4 as IPv4-mapped IPv6). */
void IpKey(const Vtep& v, uint8_t out[16]);

/** Parses an IP literal of `family` (AF_INET/AF_INET6) with `port`. IPv4
 *  literals are accepted on an AF_INET6 engine as IPv4-mapped addresses. */
bool ParseVtep(const std::string& ip, int family, uint16_t port, Vtep* out);
bool ParseVtep(const char* ip, int family, uint16_t port, Vtep* out);

/** Lookup result for the rx learning check. */
enum class MirrorMatch {
  Missing,        // not in the mirror: report for learning
  SameVtep,       // learned here already
  OtherVtep,      // learned elsewhere: report (the table decides: move)
  PinnedSame,     // static at this VTEP
  PinnedOther,    // static at another VTEP: drop (RxStaticMacConflict)
};

class FdbMirror {
 public:
  void Set(uint32_t vni, uint64_t mac, const Vtep& vtep, bool pinned);
  bool Delete(uint32_t vni, uint64_t mac);
  void SetFloodList(uint32_t vni, std::vector<Vtep> vteps);
  /** Forgets every entry and the flood list of vni (its network is gone). */
  void RemoveVni(uint32_t vni);

  /** tx: the unicast VTEP of (vni, mac), false when unknown (flood). When
   *  usedDue is non-null and usedIntervalMs have passed since the entry's
   *  last "used" report, *usedDue is set and the report time updated (the
   *  caller reports the entry to JS: the table's USED time). */
  bool Lookup(uint32_t vni, uint64_t mac, Vtep* out, int64_t nowMs, int64_t usedIntervalMs, bool* usedDue);
  /** tx: the flood list of vni, whole (no bound on its length), or null when
   *  it has none. Shared, not copied: SetFloodList replaces it, so the caller
   *  may use it after the lock is released. usedDue as for Lookup, about the
   *  flood list as a whole. */
  std::shared_ptr<const std::vector<Vtep>> FloodList(uint32_t vni, int64_t nowMs, int64_t usedIntervalMs, bool* usedDue);
  /** rx: how the source (vni, mac) seen from `from` compares with the mirror.
   *  For a learned entry at the same VTEP, *refreshDue is set when
   *  refreshIntervalMs have passed since the last refresh report (and the
   *  report time is updated), so active entries do not age out in the table. */
  MirrorMatch Check(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs, int64_t refreshIntervalMs,
                    bool* refreshDue);

 private:
  struct Key {
    uint32_t vni;
    uint64_t mac;
    bool operator==(const Key& o) const { return vni == o.vni && mac == o.mac; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.mac ^ (static_cast<uint64_t>(k.vni) << 48)); }
  };
  struct Entry {
    Vtep vtep;
    bool pinned;
    int64_t reportedMs;      // rx: last learning refresh report, CLOCK_MONOTONIC ms
    int64_t usedReportedMs;  // tx: last "used" report, CLOCK_MONOTONIC ms (0 = never)
  };
  struct Flood {
    std::shared_ptr<const std::vector<Vtep>> vteps;
    int64_t usedReportedMs = 0;  // tx: last "used" report, CLOCK_MONOTONIC ms
  };
  mutable std::mutex mu_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
  std::unordered_map<uint32_t, Flood> flood_;
};

}  // namespace vxland
