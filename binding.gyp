{
  "targets": [
    {
      "target_name": "vxland",
      "sources": [
        "native/addon.cc",
        "native/bridge.cc",
        "native/core_binding.cc", "native/core_ecn.cc", "native/core_policy.cc", "native/core_rx.cc", "native/core_srcport.cc", "native/core_suppress.cc",
        "native/core_pmtu.cc", "native/core_tx.cc",
        "native/engine_binding.cc", "native/engine_fdb.cc", "native/engine_io.cc", "native/engine_offload.cc",
        "native/engine_rx.cc", "native/engine_sched.cc", "native/engine_tx.cc",
        "native/errors.cc",
        "native/lock.cc",
        "native/notify.cc",
        "native/packet.cc",
        "native/poller.cc",
        "native/tap.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-flto=auto", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-flto=auto", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra"],
      "ldflags": ["-O3", "-flto=auto"]
    },
    {
      "target_name": "vxland_test",
      "sources": [
        "native/test_bindings.cc", "native/errors.cc",
        "native/core_ecn.cc", "native/core_policy.cc", "native/core_rx.cc", "native/core_srcport.cc", "native/core_suppress.cc", "native/core_pmtu.cc", "native/core_tx.cc", "native/engine_fdb.cc", "native/engine_offload.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-flto=auto", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-flto=auto", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra"],
      "ldflags": ["-O3", "-flto=auto"]
    }
  ]
}
