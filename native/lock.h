// Advisory file locks (flock(2)), for "one daemon per state file".
//
// JS surface added by InitLock:
//   flockExclusive(fd) -> boolean
//     flock(fd, LOCK_EX | LOCK_NB): true once this open file holds the lock,
//     false when another open file (any process) holds it. Never blocks.
//     The lock lasts until the fd is closed or the process dies (kill -9
//     included: the kernel releases it). Throws an Error with
//     code/errno/syscall (errors.h) on any other failure (EBADF, ENOLCK, ...).
#pragma once

#include <napi.h>

namespace vxland {

void InitLock(Napi::Env env, Napi::Object exports);

}  // namespace vxland
