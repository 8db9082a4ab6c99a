// TAP device syscalls (thin layer; validation and policy live in src/io/tap.ts).
//
// JS surface added by InitTap (all synchronous; failures throw an Error with
// code/errno/syscall, see errors.h, except tapWrite which never throws):
//   tapOpen(name[, { vnetHdr: boolean }])    -> { fd, name }
//   tapSetMtu(ifname, mtuBytes)              -> undefined
//   tapSetUp(ifname)                         -> undefined
//   tapGetMac(ifname)                        -> Buffer (6 bytes)
//   tapSetMac(ifname, mac: Buffer(6))        -> undefined
//   tapAddIPv4(ifname, address, prefixLen)   -> undefined
//   tapAddIPv6(ifname, address, prefixLen)   -> undefined
//   tapWrite(fd, buffer, offset, length)     -> 0 | positive errno
//   tapClose(fd)                             -> undefined
#pragma once

#include <napi.h>

namespace vxland {

void InitTap(Napi::Env env, Napi::Object exports);

}  // namespace vxland
