// Shared by graph.cc (the step) and graph_load.cc (building a graph from its JS spec): the bound
// weights, the model's shape and the step's scratch.
#pragma once
#include <string>
#include <vector>

#include "addon.h"

namespace tllm {
namespace graph {

struct WRef { const uint8_t* data; int type; int rows; int cols; };

struct LayerG {
  const float* attnNorm; const float* ffnNorm;
  WRef wq, wk, wv, wo, wGate, wUp, wDown;
  const float *bq, *bk, *bv, *bo, *qNorm, *kNorm;  // nullptr when absent
};

struct Graph {
  int H = 0, nh = 0, nkv = 0, hd = 0, I = 0, vocab = 0;
  float eps = 0, scale = 0;
  int window = 0;
  int neox = 0, ropeDim = 0;
  const float* invFreq = nullptr;
  float mscale = 1;
  bool ggml = false;
  RopeGgml rg{0.f, 1.f, nullptr};
  WRef embed{}, lmHead{};
  const float* finalNorm = nullptr;
  std::vector<LayerG> layers;
  Napi::ObjectReference spec;                      // keeps every typed array alive
  std::vector<Napi::Reference<Napi::ArrayBuffer>> buffers;  // distinct weight buffers (detach check)
  // scratch, [cap rows] each
  int cap = 0;
  std::vector<float> x, h, q, k, v, attn, o, gate, up, gu, act, sel;
  std::vector<double> rcos, rsin;  // [T, ropeDim/2] rope cos/sin of this step's positions (all layers)
  std::vector<SeqDesc> seqs;
};

/** createLlamaGraph(spec): a Graph from LlamaGraphSpec (src/backends/native/graph.ts); throws on bad fields. */
Napi::Value CreateLlamaGraph(const Napi::CallbackInfo& info);

}  // namespace graph
}  // namespace tllm
