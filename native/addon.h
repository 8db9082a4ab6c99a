// One Init* function per concern file. Each adds its functions/classes to
// `exports` and returns nothing; addon.cc calls them in order. A new concern
// (e.g. native/engine_*.cc) declares its InitXxx here and is called from
// addon.cc's Init.
#pragma once

#include <napi.h>

namespace vxland {

void InitTap(Napi::Env env, Napi::Object exports);
void InitPoller(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
void InitLock(Napi::Env env, Napi::Object exports);
void InitEngine(Napi::Env env, Napi::Object exports);
void InitPacket(Napi::Env env, Napi::Object exports);

}  // namespace vxland
