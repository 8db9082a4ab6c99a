#include "lock.h"

#include <errno.h>
#include <sys/file.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace vxland {
namespace {

Napi::Value FlockExclusive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "flockExclusive(fd: number)");
  const int fd = info[0].As<Napi::Number>().Int32Value();
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  ThrowSysError(env, errno, "flock(LOCK_EX|LOCK_NB)", "fd " + std::to_string(fd));
}

}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("flockExclusive", Napi::Function::New(env, FlockExclusive, "flockExclusive"));
}

}  // namespace vxland
