// JS errors for failed system calls. Every error carries
//   code    — the errno name, e.g. 'ENODEV'
//   errno   — the positive errno number
//   syscall — what failed, e.g. 'ioctl(TUNSETIFF)'
// and a message "<syscall> failed: <description> (<ENAME>)[ [<context>]]",
// e.g. "ioctl(TUNSETIFF) failed: No such device (ENODEV) [vxl0]".
#pragma once

#include <napi.h>

#include <string>

namespace vxland {

/** The errno name ("ENODEV"), or "E<number>" when unknown. */
std::string ErrnoName(int err);

/** Builds (does not throw) the error object described above. context may be
 *  empty (then no " [...]" suffix). */
Napi::Error SysError(Napi::Env env, int err, const std::string& syscall, const std::string& context);

/** Throws SysError(...) as a C++ Napi::Error (NAPI_CPP_EXCEPTIONS), which
 *  node-addon-api turns into a JS exception at the binding boundary. */
[[noreturn]] void ThrowSysError(Napi::Env env, int err, const std::string& syscall, const std::string& context);

}  // namespace vxland
