// systemd notification (sd_notify protocol) without libsystemd.
//
// JS surface added by InitNotify:
//   sdNotify(socketPath, message) -> undefined
//     Sends `message` as one datagram on a fresh AF_UNIX SOCK_DGRAM socket to
//     socketPath (NOTIFY_SOCKET's value; a leading '@' means the abstract
//     namespace). Blocks for at most 1 s if the receiver's queue is full.
//     Throws an Error with code/errno/syscall (errors.h) on failure
//     (ENAMETOOLONG for a path longer than sun_path).
#pragma once

#include <napi.h>

namespace vxland {

void InitNotify(Napi::Env env, Napi::Object exports);

}  // namespace vxland
