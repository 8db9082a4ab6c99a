#include "bridge.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <string>

#include "errors.h"

namespace vxland {
namespace {

std::string IfnameArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be a string");
  std::string name = info[i].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, std::string(what) + " must be an interface name of 1.." + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  return name;
}

// bridgeAddPort(bridge, dev): see bridge.h.
Napi::Value BridgeAddPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string bridge = IfnameArg(info, 0, "bridge");
  const std::string dev = IfnameArg(info, 1, "dev");
  const std::string context = dev + " -> " + bridge;

  const unsigned int ifindex = ::if_nametoindex(dev.c_str());
  if (ifindex == 0) ThrowSysError(env, errno, "if_nametoindex", dev);

  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSysError(env, errno, "socket(AF_INET)", context);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, bridge.data(), bridge.size());
  ifr.ifr_ifindex = static_cast<int>(ifindex);
  const int rc = ::ioctl(fd, SIOCBRADDIF, &ifr);
  const int err = errno;
  ::close(fd);
  if (rc < 0) ThrowSysError(env, err, "ioctl(SIOCBRADDIF)", context);
  return env.Undefined();
}

}  // namespace

void InitBridge(Napi::Env env, Napi::Object exports) {
  exports.Set("bridgeAddPort", Napi::Function::New(env, BridgeAddPort, "bridgeAddPort"));
}

}  // namespace vxland
