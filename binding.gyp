# Builds build/Release/tllm.node (npm runs `node-gyp rebuild` on install because this file exists).
# x64: kernels are compiled twice, a portable scalar copy and an AVX2+FMA+F16C copy (its own static
# library so only those files get -mavx2); the addon picks one at load from cpuid.
# Other architectures: scalar only.
{
  "variables": { "tllm_opt": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden"] },
  "targets": [
    {
      "target_name": "tllm_avx2",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["native/kernels_avx2.cc"],
          "cflags_cc": ["-std=c++17", "<@(tllm_opt)", "-mavx2", "-mfma", "-mf16c"],
        }, {
          "sources": ["native/kernels_none.cc"],
          "cflags_cc": ["-std=c++17", "<@(tllm_opt)"],
        }],
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
    },
    {
      "target_name": "tllm",
      "dependencies": ["tllm_avx2"],
      "sources": [
        "native/addon.cc",
        "native/addon_ops.cc",
        "native/graph.cc",
        "native/graph_load.cc",
        "native/pool.cc",
        "native/cpu.cc",
        "native/kernels_scalar.cc",
        "native/sampling.cc",
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "<@(tllm_opt)"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["target_arch=='x64'", { "defines": ["TLLM_HAVE_AVX2_BUILD=1"] }],
      ],
    },
  ],
}
