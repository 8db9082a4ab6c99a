#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace vxland {
namespace {

constexpr time_t kSendTimeoutSeconds = 1;

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "sdNotify(socketPath: string, message: string)");
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string message = info[1].As<Napi::String>().Utf8Value();

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.empty()) ThrowSysError(env, EINVAL, "sendto(NOTIFY_SOCKET)", "empty path");
  if (path.size() > sizeof(addr.sun_path)) ThrowSysError(env, ENAMETOOLONG, "sendto(NOTIFY_SOCKET)", path);
  memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addrLen = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());

  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSysError(env, errno, "socket(AF_UNIX)", path);
  struct timeval timeout = {kSendTimeoutSeconds, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  ssize_t n;
  do {
    n = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr),
                 addrLen);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  if (err != 0) ThrowSysError(env, err, "sendto(NOTIFY_SOCKET)", path);
  return env.Undefined();
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}

}  // namespace vxland
