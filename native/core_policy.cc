#include "core_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>

namespace vxland {
namespace core {

bool SourcePolicy::Accepts(const Key& k) const {
  if (mode == kAny) return true;
  if (std::binary_search(named.begin(), named.end(), k)) return true;
  if (mode != kCidrs) return false;
  for (const Range& r : ranges) {
    const unsigned whole = r.bits / 8;
    if (memcmp(r.prefix.data(), k.data(), whole) != 0) continue;
    const unsigned rest = r.bits % 8;
    if (rest == 0) return true;
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    if ((r.prefix[whole] & mask) == (k[whole] & mask)) return true;
  }
  return false;
}

std::string BuildSourcePolicy(const std::string& mode, const std::vector<std::string>& named,
                              const std::vector<std::string>& cidrs, int family, SourcePolicy* out, bool* rangeError) {
  *rangeError = false;
  if (mode == "peers") {
    out->mode = SourcePolicy::kNamed;
  } else if (mode == "any") {
    out->mode = SourcePolicy::kAny;
  } else if (mode == "cidrs") {
    out->mode = SourcePolicy::kCidrs;
  } else {
    return "setSourcePolicy: mode must be peers, any or cidrs";
  }
  // 1: parsed; 0: an address of the other family; -1: no IP literal.
  auto parse = [&](const std::string& ip, SourcePolicy::Key* key) {
    Vtep v;
    struct in6_addr probe;
    if (!ParseVtep(ip, family, 0, &v)) return inet_pton(AF_INET6, ip.c_str(), &probe) == 1 ? 0 : -1;
    IpKey(v, key->data());
    return 1;
  };
  out->named.clear();
  out->ranges.clear();
  for (const std::string& ip : named) {
    SourcePolicy::Key k;
    const int r = parse(ip, &k);
    if (r < 0) return "not an IP literal: " + ip;
    if (r > 0) out->named.push_back(k);
  }
  std::sort(out->named.begin(), out->named.end());
  for (const std::string& text : cidrs) {
    const size_t slash = text.find('/');
    if (slash == std::string::npos) return "not a CIDR: " + text;
    const unsigned bits = static_cast<unsigned>(strtoul(text.c_str() + slash + 1, nullptr, 10));
    const std::string ip = text.substr(0, slash);
    SourcePolicy::Range range;
    const int r = parse(ip, &range.prefix);
    if (r < 0) return "not an IP literal: " + ip;
    if (r == 0) continue;
    range.bits = ip.find(':') == std::string::npos ? bits + 96 : bits;
    if (range.bits > 128) {
      *rangeError = true;
      return "CIDR prefix length out of range: " + text;
    }
    out->ranges.push_back(range);
  }
  return "";
}

}  // namespace core
}  // namespace vxland
