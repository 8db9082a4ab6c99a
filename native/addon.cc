// Module entry point: wiring only. Behaviour lives in the per-concern files.
#include "addon.h"
#include "bridge.h"
#include "core_binding.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vxland::InitTap(env, exports);
  vxland::InitPoller(env, exports);
  vxland::InitNotify(env, exports);
  vxland::InitLock(env, exports);
  vxland::InitEngine(env, exports);
  vxland::core::InitCore(env, exports);
  vxland::InitPacket(env, exports);
  vxland::InitBridge(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(vxland, Init)
