#include "packet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "addon.h"
#include "errors.h"

namespace vxland {
namespace {

constexpr size_t kEthHeaderBytes = 14;
constexpr size_t kEthAddrBytes = 6;

Napi::Value PacketSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBuffer()) {
    throw Napi::TypeError::New(env, "packetSend(ifname: string, frame: Buffer)");
  }
  const std::string ifname = info[0].As<Napi::String>().Utf8Value();
  Napi::Buffer<uint8_t> frame = info[1].As<Napi::Buffer<uint8_t>>();
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) throw Napi::TypeError::New(env, "bad interface name");
  if (frame.Length() < kEthHeaderBytes) throw Napi::RangeError::New(env, "frame shorter than an Ethernet header");

  const unsigned index = if_nametoindex(ifname.c_str());
  if (index == 0) ThrowSysError(env, errno, "if_nametoindex", ifname);
  // Protocol 0: a send-only socket, it never queues received frames.
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSysError(env, errno, "socket(AF_PACKET)", ifname);

  struct sockaddr_ll to;
  memset(&to, 0, sizeof(to));
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(index);
  memcpy(&to.sll_protocol, frame.Data() + 2 * kEthAddrBytes, sizeof(to.sll_protocol));
  to.sll_halen = kEthAddrBytes;
  memcpy(to.sll_addr, frame.Data(), kEthAddrBytes);
  ssize_t n;
  do {
    n = ::sendto(fd, frame.Data(), frame.Length(), 0, reinterpret_cast<struct sockaddr*>(&to), sizeof(to));
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (n < 0) ThrowSysError(env, err, "sendto(AF_PACKET)", ifname);
  if (static_cast<size_t>(n) != frame.Length()) ThrowSysError(env, EIO, "sendto(AF_PACKET)", ifname);
  return env.Undefined();
}

}  // namespace

void InitPacket(Napi::Env env, Napi::Object exports) {
  exports.Set("packetSend", Napi::Function::New(env, PacketSend, "packetSend"));
}

}  // namespace vxland
