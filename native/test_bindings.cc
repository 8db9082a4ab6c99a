// Bindings that only tests load (build/Release/vxland_test.node, never
// loaded by src/): what a test needs to stand in for the kernel around the
// production engine.
//
//   seqpacketPair() -> [engineEnd, peerEnd]
//       socketpair(AF_UNIX, SOCK_SEQPACKET), both ends non-blocking and
//       close-on-exec: one message per frame, as a TAP reads and writes.
//       engineEnd goes to NativeEngine.openWith({ tapFd }) (src/io/engine.ts);
//       the test reads and writes peerEnd (fs.readSync/writeSync) and
//       closes it. Throws an Error with code/errno/syscall (errors.h).

#include <napi.h>
#include <sys/socket.h>

#include <cerrno>

#include "errors.h"

namespace {

Napi::Value SeqpacketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    vxland::ThrowSysError(env, errno, "socketpair", "");
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("seqpacketPair", Napi::Function::New(env, SeqpacketPair, "seqpacketPair"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vxland_test, Init)
