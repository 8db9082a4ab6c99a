#include "engine_fdb.h"

#include <arpa/inet.h>
#include <string.h>

namespace vxland {

void IpKey(const Vtep& v, uint8_t out[16]) {
  if (v.addr.sa.sa_family == AF_INET) {
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, &v.addr.in4.sin_addr, 4);
    return;
  }
  memcpy(out, &v.addr.in6.sin6_addr, 16);
}

bool Vtep::SameIp(const Vtep& o) const {
  if (addr.sa.sa_family != o.addr.sa.sa_family) return false;
  if (addr.sa.sa_family == AF_INET) return addr.in4.sin_addr.s_addr == o.addr.in4.sin_addr.s_addr;
  return memcmp(&addr.in6.sin6_addr, &o.addr.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

std::string Vtep::IpString() const {
  char text[INET6_ADDRSTRLEN] = {0};
  if (addr.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &addr.in4.sin_addr, text, sizeof(text));
    return text;
  }
  const struct in6_addr& a = addr.in6.sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    inet_ntop(AF_INET, &a.s6_addr[12], text, sizeof(text));
    return text;
  }
  inet_ntop(AF_INET6, &a, text, sizeof(text));
  return text;
}

bool ParseVtep(const std::string& ip, int family, uint16_t port, Vtep* out) { return ParseVtep(ip.c_str(), family, port, out); }

bool ParseVtep(const char* ip, int family, uint16_t port, Vtep* out) {
  memset(&out->addr, 0, sizeof(out->addr));
  if (family == AF_INET) {
    out->addr.in4.sin_family = AF_INET;
    out->addr.in4.sin_port = htons(port);
    out->len = sizeof(struct sockaddr_in);
    return inet_pton(AF_INET, ip, &out->addr.in4.sin_addr) == 1;
  }
  out->addr.in6.sin6_family = AF_INET6;
  out->addr.in6.sin6_port = htons(port);
  out->len = sizeof(struct sockaddr_in6);
  if (inet_pton(AF_INET6, ip, &out->addr.in6.sin6_addr) == 1) return true;
  struct in_addr v4;
  if (inet_pton(AF_INET, ip, &v4) != 1) return false;
  out->addr.in6.sin6_addr.s6_addr[10] = 0xff;
  out->addr.in6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&out->addr.in6.sin6_addr.s6_addr[12], &v4, 4);
  return true;
}

void FdbMirror::Set(uint32_t vni, uint64_t mac, const Vtep& vtep, bool pinned) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_[Key{vni, mac}] = Entry{vtep, pinned, 0, 0};
}

bool FdbMirror::Delete(uint32_t vni, uint64_t mac) {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.erase(Key{vni, mac}) > 0;
}

void FdbMirror::SetFloodList(uint32_t vni, std::vector<Vtep> vteps) {
  std::shared_ptr<const std::vector<Vtep>> list = std::make_shared<const std::vector<Vtep>>(std::move(vteps));
  {
    std::lock_guard<std::mutex> lock(mu_);
    flood_[vni].vteps.swap(list);
  }
  // The old list is freed here, off the lock, unless a tx thread still holds it.
}

/** Sets *due (when asked) once per intervalMs of use. */
static void MarkUsed(int64_t* reportedMs, int64_t nowMs, int64_t intervalMs, bool* due) {
  if (due == nullptr) return;
  *due = nowMs - *reportedMs >= intervalMs;
  if (*due) *reportedMs = nowMs;
}

void FdbMirror::RemoveVni(uint32_t vni) {
  std::shared_ptr<const std::vector<Vtep>> list;  // freed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first.vni == vni) it = entries_.erase(it);
    else ++it;
  }
  auto f = flood_.find(vni);
  if (f != flood_.end()) {
    list = std::move(f->second.vteps);
    flood_.erase(f);
  }
}

bool FdbMirror::Lookup(uint32_t vni, uint64_t mac, Vtep* out, int64_t nowMs, int64_t usedIntervalMs, bool* usedDue) {
  if (usedDue != nullptr) *usedDue = false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key{vni, mac});
  if (it == entries_.end()) return false;
  *out = it->second.vtep;
  MarkUsed(&it->second.usedReportedMs, nowMs, usedIntervalMs, usedDue);
  return true;
}

std::shared_ptr<const std::vector<Vtep>> FdbMirror::FloodList(uint32_t vni, int64_t nowMs, int64_t usedIntervalMs,
                                                             bool* usedDue) {
  if (usedDue != nullptr) *usedDue = false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = flood_.find(vni);
  if (it == flood_.end()) return nullptr;
  MarkUsed(&it->second.usedReportedMs, nowMs, usedIntervalMs, usedDue);
  return it->second.vteps;
}

MirrorMatch FdbMirror::Check(uint32_t vni, uint64_t mac, const Vtep& from, int64_t nowMs, int64_t refreshIntervalMs,
                             bool* refreshDue) {
  *refreshDue = false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key{vni, mac});
  if (it == entries_.end()) return MirrorMatch::Missing;
  Entry& e = it->second;
  const bool same = e.vtep.SameIp(from);
  if (e.pinned) return same ? MirrorMatch::PinnedSame : MirrorMatch::PinnedOther;
  if (!same) return MirrorMatch::OtherVtep;
  if (nowMs - e.reportedMs >= refreshIntervalMs) {
    e.reportedMs = nowMs;
    *refreshDue = true;
  }
  return MirrorMatch::SameVtep;
}

}  // namespace vxland
