#include "errors.h"

#include <string.h>

namespace vxland {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

Napi::Error SysError(Napi::Env env, int err, const std::string& syscall, const std::string& context) {
  const char* desc = strerrordesc_np(err);
  const std::string name = ErrnoName(err);
  std::string message = syscall + " failed: " + (desc != nullptr ? desc : "Unknown error") + " (" + name + ")";
  if (!context.empty()) message += " [" + context + "]";
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("code", Napi::String::New(env, name));
  obj.Set("errno", Napi::Number::New(env, err));
  obj.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowSysError(Napi::Env env, int err, const std::string& syscall, const std::string& context) {
  throw SysError(env, err, syscall, context);
}

}  // namespace vxland
