// Builds a Graph from its JS spec (LlamaGraphSpec in src/backends/native/graph.ts): every shape
// checked against the config, weight pointers taken once, the spec (and through it every typed
// array, the mapped file's buffer included) kept alive by a reference.
#include <math.h>

#include "graph.h"

namespace tllm {
namespace graph {
namespace {

const float* f32_field(const Napi::Object& o, const char* key, size_t need, bool optional) {
  Napi::Value v = o.Get(key);
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (a.ElementLength() < need)
    throw Napi::RangeError::New(o.Env(), std::string(key) + ": has " + std::to_string(a.ElementLength()) + " elements, needs " +
                                             std::to_string(need));
  return a.ElementLength() ? a.Data() : nullptr;
}

int int_field(const Napi::Object& o, const char* key, int lo, int hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != (double)(int64_t)d)
    throw Napi::RangeError::New(o.Env(), std::string(key) + "=" + std::to_string(d) + ": out of range");
  return (int)d;
}

double num_field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

// {data: Uint8Array, dtype, rows, cols} with rows x cols as expected
WRef weight_field(Graph& g, const Napi::Object& o, const char* key, int rows, int cols) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(key) + ": expected a weight tensor");
  Napi::Object w = v.As<Napi::Object>();
  const int type = int_field(w, "dtype", 0, 255), r = int_field(w, "rows", 1, 1 << 30), c = int_field(w, "cols", 1, 1 << 30);
  if (r != rows || c != cols)
    throw Napi::RangeError::New(env, std::string(key) + ": shape [" + std::to_string(r) + ", " + std::to_string(c) +
                                         "], expected [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  const TypeInfo t = type_info(type);
  if (t.blockSize == 0 || c % t.blockSize) throw Napi::TypeError::New(env, std::string(key) + ": unsupported dtype or cols");
  Napi::Value d = w.Get("data");
  if (!d.IsTypedArray() || d.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, std::string(key) + ".data: expected a Uint8Array");
  Napi::Uint8Array u = d.As<Napi::Uint8Array>();
  if (u.ByteLength() < (size_t)r * row_bytes(type, c)) throw Napi::RangeError::New(env, std::string(key) + ".data: too short");
  Napi::ArrayBuffer ab = u.ArrayBuffer();
  bool seen = false;
  for (auto& b : g.buffers) if (b.Value().Data() == ab.Data()) { seen = true; break; }
  if (!seen) g.buffers.push_back(Napi::Persistent(ab));
  return WRef{u.Data(), type, r, c};
}

void finalize_graph(Napi::Env, Graph* g) { delete g; }

}  // namespace

// createLlamaGraph(spec): see src/backends/native/graph.ts (LlamaGraphSpec) for the fields
namespace {

// the model's shape, rope and attention parameters
void load_shape(Graph* g, Napi::Env env, const Napi::Object& s) {
  g->H = int_field(s, "hidden", 1, 1 << 20);
  g->nh = int_field(s, "numHeads", 1, 65536);
  g->nkv = int_field(s, "numKvHeads", 1, 4096);
  g->hd = int_field(s, "headDim", 2, 2048);
  g->I = int_field(s, "intermediate", 1, 1 << 24);
  g->vocab = int_field(s, "vocab", 1, 1 << 30);
  g->eps = (float)num_field(s, "eps");
  g->window = int_field(s, "window", 0, 1 << 30);
  g->neox = int_field(s, "neox", 0, 1);
  g->ropeDim = int_field(s, "ropeDim", 0, g->hd);
  if (g->nh % g->nkv) throw Napi::RangeError::New(env, "numHeads: not a multiple of numKvHeads");
  if (g->ropeDim % 2) throw Napi::RangeError::New(env, "ropeDim: must be even");
  g->invFreq = f32_field(s, "invFreq", (size_t)g->ropeDim / 2, false);
  g->mscale = (float)num_field(s, "mscale");
  g->ggml = s.Get("thetaScale").IsNumber();
  if (g->ggml) {
    g->rg.thetaScale = (float)num_field(s, "thetaScale");
    g->rg.freqScale = (float)num_field(s, "freqScale");
    g->rg.freqFactors = f32_field(s, "freqFactors", (size_t)g->ropeDim / 2, true);
  }
  // llama.cpp's kq_scale = 1.0f / sqrtf(float(n_embd_head)) when `scale` is that value (as the attention binding)
  const double scale = num_field(s, "scale");
  const float g0 = 1.0f / sqrtf((float)g->hd);
  g->scale = fabs(scale - (double)g0) <= 1e-7 * (double)g0 ? g0 : (float)scale;
}

LayerG load_layer(Graph* g, const Napi::Object& l) {
  const int H = g->H, qd = g->nh * g->hd, kd = g->nkv * g->hd, I = g->I;
  LayerG L{};
  L.attnNorm = f32_field(l, "attnNorm", H, false);
  L.ffnNorm = f32_field(l, "ffnNorm", H, false);
  L.wq = weight_field(*g, l, "wq", qd, H);
  L.wk = weight_field(*g, l, "wk", kd, H);
  L.wv = weight_field(*g, l, "wv", kd, H);
  L.wo = weight_field(*g, l, "wo", H, qd);
  L.wGate = weight_field(*g, l, "wGate", I, H);
  L.wUp = weight_field(*g, l, "wUp", I, H);
  L.wDown = weight_field(*g, l, "wDown", H, I);
  L.bq = f32_field(l, "bq", qd, true);
  L.bk = f32_field(l, "bk", kd, true);
  L.bv = f32_field(l, "bv", kd, true);
  L.bo = f32_field(l, "bo", H, true);
  L.qNorm = f32_field(l, "qNorm", g->hd, true);
  L.kNorm = f32_field(l, "kNorm", g->hd, true);
  return L;
}

}  // namespace

Napi::Value CreateLlamaGraph(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "spec: expected an object");
  Napi::Object s = info[0].As<Napi::Object>();
  Graph* g = new Graph();
  try {
    load_shape(g, env, s);
    g->embed = weight_field(*g, s, "embed", g->vocab, g->H);
    g->lmHead = weight_field(*g, s, "lmHead", g->vocab, g->H);
    g->finalNorm = f32_field(s, "finalNorm", g->H, false);
    Napi::Value lv = s.Get("layers");
    if (!lv.IsArray()) throw Napi::TypeError::New(env, "layers: expected an array");
    Napi::Array la = lv.As<Napi::Array>();
    for (uint32_t i = 0; i < la.Length(); i++) {
      Napi::Value l = la.Get(i);
      if (!l.IsObject()) throw Napi::TypeError::New(env, "layers[" + std::to_string(i) + "]: expected an object");
      g->layers.push_back(load_layer(g, l.As<Napi::Object>()));
    }
    if (g->layers.empty()) throw Napi::RangeError::New(env, "layers: empty");
    g->spec = Napi::Persistent(s);
  } catch (...) {
    delete g;
    throw;
  }
  return Napi::External<Graph>::New(env, g, finalize_graph);
}

}  // namespace graph
}  // namespace tllm
