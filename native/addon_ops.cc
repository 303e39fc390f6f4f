// JS bindings of the kernels. Every size is checked against the typed arrays before a kernel runs,
// so bad arguments throw (TypeError / RangeError naming the argument) instead of touching memory.
// The TypeScript wrapper (src/backends/native/index.ts) validates first with typed errors.
#include <math.h>
#include <string>
#include <vector>

#include "addon.h"

namespace tllm {

static const int64_t kMaxDim = 1LL << 30;
enum TA { I32 = napi_int32_array, F32 = napi_float32_array, U8 = napi_uint8_array, U16 = napi_uint16_array };

static size_t weight_bytes(const Napi::Env& env, int type, int64_t rows, int64_t cols) {
  const TypeInfo t = type_info(type);
  if (t.blockSize == 0) throw Napi::TypeError::New(env, "dtype=" + std::to_string(type) + ": unsupported weight type");
  if (cols % t.blockSize != 0)
    throw Napi::RangeError::New(env, "cols=" + std::to_string(cols) + ": not a multiple of the block size " +
                                         std::to_string(t.blockSize));
  return (size_t)rows * row_bytes(type, (int)cols);
}

// matmul(out f32[m*rows], x f32[m*cols], m, w u8, dtype, rows, cols)
static Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), x = arg_view(info, 1, F32, "x");
  const int64_t m = arg_int(info, 2, 0, kMaxDim, "m");
  View w = arg_view(info, 3, U8, "w");
  const int type = (int)arg_int(info, 4, 0, 255, "dtype");
  const int64_t rows = arg_int(info, 5, 1, kMaxDim, "rows"), cols = arg_int(info, 6, 1, kMaxDim, "cols");
  need_len(env, w, weight_bytes(env, type, rows, cols), "w");
  need_len(env, out, (size_t)(m * rows), "out");
  need_len(env, x, (size_t)(m * cols), "x");
  if (m > 0) g_kernels->matmul((float*)out.data, (const float*)x.data, (int)m, (const uint8_t*)w.data, type, (int)rows, (int)cols);
  return env.Undefined();
}

// matmulMulti(out f32[Σ m*rows[i]], x f32[m*cols], m, w u8 (the n weights back to back), dtype, rows i32[n], cols):
// out holds the n results [m, rows[i]] back to back (test hook of the graph's q/k/v and gate/up calls)
static Napi::Value MatmulMulti(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), x = arg_view(info, 1, F32, "x");
  const int64_t m = arg_int(info, 2, 0, kMaxDim, "m");
  View w = arg_view(info, 3, U8, "w");
  const int type = (int)arg_int(info, 4, 0, 255, "dtype");
  View rv = arg_view(info, 5, I32, "rows");
  const int64_t cols = arg_int(info, 6, 1, kMaxDim, "cols");
  const int n = (int)rv.length;
  if (n < 1 || n > 4) throw Napi::RangeError::New(env, "rows.length=" + std::to_string(n) + ": expected 1..4 weights");
  const int32_t* rows = (const int32_t*)rv.data;
  size_t wb = 0, ob = 0;
  float* outs[4];
  const uint8_t* ws[4];
  for (int i = 0; i < n; i++) {
    if (rows[i] < 1 || rows[i] > kMaxDim) throw Napi::RangeError::New(env, "rows[" + std::to_string(i) + "]=" + std::to_string(rows[i]) + ": out of range");
    ws[i] = (const uint8_t*)w.data + wb;
    outs[i] = (float*)out.data + ob;
    wb += weight_bytes(env, type, rows[i], cols);
    ob += (size_t)m * rows[i];
  }
  need_len(env, w, wb, "w");
  need_len(env, out, ob, "out");
  need_len(env, x, (size_t)(m * cols), "x");
  if (m > 0) g_kernels->matmul_multi(outs, (const float*)x.data, (int)m, ws, type, rows, n, (int)cols);
  return env.Undefined();
}

// embedding(out f32[n*cols], table u8, dtype, rows, cols, ids i32[n])
static Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), table = arg_view(info, 1, U8, "table");
  const int type = (int)arg_int(info, 2, 0, 255, "dtype");
  const int64_t rows = arg_int(info, 3, 1, kMaxDim, "rows"), cols = arg_int(info, 4, 1, kMaxDim, "cols");
  View ids = arg_view(info, 5, I32, "ids");
  need_len(env, table, weight_bytes(env, type, rows, cols), "table");
  need_len(env, out, ids.length * (size_t)cols, "out");
  const int32_t* id = (const int32_t*)ids.data;
  for (size_t i = 0; i < ids.length; i++)
    if (id[i] < 0 || id[i] >= rows)
      throw Napi::RangeError::New(env, "ids[" + std::to_string(i) + "]=" + std::to_string(id[i]) + ": out of range [0, " +
                                           std::to_string(rows) + ")");
  if (ids.length) g_kernels->embedding((float*)out.data, (const uint8_t*)table.data, type, (int)cols, id, (int)ids.length);
  return env.Undefined();
}

// rmsNorm(out, x, weight, m, n, eps)
static Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), x = arg_view(info, 1, F32, "x"), w = arg_view(info, 2, F32, "weight");
  const int64_t m = arg_int(info, 3, 0, kMaxDim, "m"), n = arg_int(info, 4, 1, kMaxDim, "n");
  const double eps = arg_num(info, 5, "eps");
  need_len(env, out, (size_t)(m * n), "out");
  need_len(env, x, (size_t)(m * n), "x");
  need_len(env, w, (size_t)n, "weight");
  if (m > 0) g_kernels->rmsnorm((float*)out.data, (const float*)x.data, (const float*)w.data, (int)m, (int)n, (float)eps);
  return env.Undefined();
}

// rope(x, m, numHeads, positions i32[m], neox 0|1, headDim, ropeDim, invFreq f32[ropeDim/2], mscale)
static Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = arg_view(info, 0, F32, "x");
  const int64_t m = arg_int(info, 1, 0, kMaxDim, "m"), nh = arg_int(info, 2, 1, 65536, "numHeads");
  View pos = arg_view(info, 3, I32, "positions");
  const int neox = (int)arg_int(info, 4, 0, 1, "neox");
  const int64_t hd = arg_int(info, 5, 2, 2048, "headDim"), rd = arg_int(info, 6, 0, hd, "ropeDim");
  View inv = arg_view(info, 7, F32, "invFreq");
  const double ms = arg_num(info, 8, "mscale");
  if (rd % 2) throw Napi::RangeError::New(env, "ropeDim=" + std::to_string(rd) + ": must be even");
  need_len(env, x, (size_t)(m * nh * hd), "x");
  need_len(env, pos, (size_t)m, "positions");
  need_len(env, inv, (size_t)(rd / 2), "invFreq");
  // optional (thetaScale, freqScale, freqFactors f32 | null): ggml's f32 rope cache
  RopeGgml g{0.f, 1.f, nullptr};
  const bool ggml = info.Length() > 9 && info[9].IsNumber();
  if (ggml) {
    g.thetaScale = (float)arg_num(info, 9, "thetaScale");
    g.freqScale = (float)arg_num(info, 10, "freqScale");
    if (info.Length() > 11 && !info[11].IsNull() && !info[11].IsUndefined()) {
      View ff = arg_view(info, 11, F32, "freqFactors");
      need_len(env, ff, (size_t)(rd / 2), "freqFactors");
      g.freqFactors = (const float*)ff.data;
    }
  }
  if (m > 0 && rd > 0)
    g_kernels->rope((float*)x.data, (int)m, (int)nh, (const int32_t*)pos.data, neox, (int)hd, (int)rd, (const float*)inv.data,
                    (float)ms, ggml ? &g : nullptr);
  return env.Undefined();
}

// siluMul(out f32[m*n], gateUp f32[m*2n], m, n)
static Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), gu = arg_view(info, 1, F32, "gateUp");
  const int64_t m = arg_int(info, 2, 0, kMaxDim, "m"), n = arg_int(info, 3, 1, kMaxDim, "n");
  need_len(env, out, (size_t)(m * n), "out");
  need_len(env, gu, (size_t)(2 * m * n), "gateUp");
  if (m > 0) g_kernels->silu_mul((float*)out.data, (const float*)gu.data, (int)m, (int)n);
  return env.Undefined();
}

// add(out, a, b, n)
static Napi::Value Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), a = arg_view(info, 1, F32, "a"), b = arg_view(info, 2, F32, "b");
  const int64_t n = arg_int(info, 3, 0, 1LL << 40, "n");
  need_len(env, out, (size_t)n, "out");
  need_len(env, a, (size_t)n, "a");
  need_len(env, b, (size_t)n, "b");
  if (n > 0) g_kernels->add((float*)out.data, (const float*)a.data, (const float*)b.data, (size_t)n);
  return env.Undefined();
}

// addBias(out, bias, m, n)
static Napi::Value AddBias(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), bias = arg_view(info, 1, F32, "bias");
  const int64_t m = arg_int(info, 2, 0, kMaxDim, "m"), n = arg_int(info, 3, 1, kMaxDim, "n");
  need_len(env, out, (size_t)(m * n), "out");
  need_len(env, bias, (size_t)n, "bias");
  if (m > 0) g_kernels->add_bias((float*)out.data, (const float*)bias.data, (int)m, (int)n);
  return env.Undefined();
}

// softmax(out, x, m, n)
static Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), x = arg_view(info, 1, F32, "x");
  const int64_t m = arg_int(info, 2, 0, kMaxDim, "m"), n = arg_int(info, 3, 1, kMaxDim, "n");
  need_len(env, out, (size_t)(m * n), "out");
  need_len(env, x, (size_t)(m * n), "x");
  if (m > 0) g_kernels->softmax((float*)out.data, (const float*)x.data, (int)m, (int)n);
  return env.Undefined();
}

// argmax(out i32[m], x f32[m*n], m, n): first index of the row maximum
static Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, I32, "out"), x = arg_view(info, 1, F32, "x");
  const int64_t m = arg_int(info, 2, 0, kMaxDim, "m"), n = arg_int(info, 3, 1, kMaxDim, "n");
  need_len(env, out, (size_t)m, "out");
  need_len(env, x, (size_t)(m * n), "x");
  if (m > 0) g_kernels->argmax((int32_t*)out.data, (const float*)x.data, (int)m, (int)n);
  return env.Undefined();
}

// args [i..i+5]: kvData (f32, u16 = f16 or i8), numBlocks, tokensPerBlock, numKvHeads, headDim
static KvDesc arg_kv(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  View d = arg_view(info, i, -1, "kv.data");
  if (d.type != napi_float32_array && d.type != napi_uint16_array && d.type != napi_int8_array)
    throw Napi::TypeError::New(env, "kv.data: expected Float32Array, Uint16Array or Int8Array");
  KvDesc kv{d.data, d.type == napi_uint16_array ? 1 : 0, (int)arg_int(info, i + 1, 1, kMaxDim, "kv.numBlocks"),
            (int)arg_int(info, i + 2, 1, 1 << 20, "kv.tokensPerBlock"), (int)arg_int(info, i + 3, 1, 4096, "kv.numKvHeads"),
            (int)arg_int(info, i + 4, 1, 2048, "kv.headDim"), d.type == napi_int8_array ? 1 : 0};
  need_len(env, d, kv_pool_elements(kv), "kv.data");
  if (kv.i8 && (kv.hd % 4 || (uintptr_t)d.data % 4)) throw Napi::RangeError::New(env, "kv.data: int8 pools need headDim % 4 == 0 and 4-byte alignment");
  return kv;
}

// writeKv(kvData, numBlocks, tpb, nkv, hd, k, v, slots)
static Napi::Value WriteKv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const KvDesc kv = arg_kv(info, 0);
  View k = arg_view(info, 5, F32, "k"), v = arg_view(info, 6, F32, "v"), slots = arg_view(info, 7, I32, "slots");
  const size_t T = slots.length, row = (size_t)kv.nkv * kv.hd;
  need_len(env, k, T * row, "k");
  need_len(env, v, T * row, "v");
  const int32_t* s = (const int32_t*)slots.data;
  const int64_t cap = (int64_t)kv.numBlocks * kv.tpb;
  for (size_t t = 0; t < T; t++)
    if (s[t] < 0 || s[t] >= cap)
      throw Napi::RangeError::New(env, "slots[" + std::to_string(t) + "]=" + std::to_string(s[t]) + ": out of range [0, " +
                                           std::to_string(cap) + ")");
  if (T) g_kernels->write_kv(kv, (const float*)k.data, (const float*)v.data, s, (int)T);
  return env.Undefined();
}

// attention(out, q, kvData, numBlocks, tpb, nkv, hd, seqInfo i32[nseq*4] (qStart, qLen, kvLen, tableOffset),
//           tables i32, numHeads, scale, window (<= 0: none))
static Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View out = arg_view(info, 0, F32, "out"), q = arg_view(info, 1, F32, "q");
  const KvDesc kv = arg_kv(info, 2);
  View si = arg_view(info, 7, I32, "seqInfo"), tb = arg_view(info, 8, I32, "tables");
  const int nh = (int)arg_int(info, 9, 1, 65536, "numHeads");
  const double scale = arg_num(info, 10, "scale");
  const int window = (int)arg_int(info, 11, -1, kMaxDim, "window");
  if (nh % kv.nkv) throw Napi::RangeError::New(env, "numHeads=" + std::to_string(nh) + ": not a multiple of numKvHeads");
  if (si.length % 4) throw Napi::RangeError::New(env, "seqInfo: length must be a multiple of 4");
  const int nseq = (int)(si.length / 4);
  const int32_t* s = (const int32_t*)si.data;
  const int32_t* t = (const int32_t*)tb.data;
  std::vector<SeqDesc> seqs(nseq);
  int64_t T = 0;
  for (int i = 0; i < nseq; i++) {
    const int32_t qs = s[4 * i], ql = s[4 * i + 1], kl = s[4 * i + 2], to = s[4 * i + 3];
    const std::string who = "seq " + std::to_string(i);
    if (qs < 0 || ql < 0 || ql > kl) throw Napi::RangeError::New(env, who + ": needs qStart >= 0 and 0 <= qLen <= kvLen");
    const int64_t nb = ((int64_t)kl + kv.tpb - 1) / kv.tpb;
    if (to < 0 || (size_t)(to + nb) > tb.length) throw Napi::RangeError::New(env, who + ": block table out of range");
    for (int64_t b = 0; b < nb; b++)
      if (t[to + b] < 0 || t[to + b] >= kv.numBlocks)
        throw Napi::RangeError::New(env, who + ": block id " + std::to_string(t[to + b]) + " out of range");
    seqs[i] = SeqDesc{qs, ql, kl, t + to};
    if (qs + ql > T) T = qs + ql;
  }
  const size_t row = (size_t)nh * kv.hd;
  need_len(env, q, (size_t)T * row, "q");
  need_len(env, out, (size_t)T * row, "out");
  // llama.cpp's kq_scale = 1.0f / sqrtf(float(n_embd_head)) when `scale` is that value, else f32(scale)
  const float g = 1.0f / sqrtf((float)kv.hd);
  const float sc = fabs(scale - (double)g) <= 1e-7 * (double)g ? g : (float)scale;
  if (nseq) g_kernels->attention((float*)out.data, (const float*)q.data, kv, seqs.data(), nseq, nh, sc, window);
  return env.Undefined();
}

void register_ops(Napi::Env env, Napi::Object e) {
  e.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  e.Set("matmulMulti", Napi::Function::New(env, MatmulMulti, "matmulMulti"));
  e.Set("embedding", Napi::Function::New(env, Embedding, "embedding"));
  e.Set("rmsNorm", Napi::Function::New(env, RmsNorm, "rmsNorm"));
  e.Set("rope", Napi::Function::New(env, Rope, "rope"));
  e.Set("siluMul", Napi::Function::New(env, SiluMul, "siluMul"));
  e.Set("add", Napi::Function::New(env, Add, "add"));
  e.Set("addBias", Napi::Function::New(env, AddBias, "addBias"));
  e.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  e.Set("argmax", Napi::Function::New(env, Argmax, "argmax"));
  e.Set("writeKv", Napi::Function::New(env, WriteKv, "writeKv"));
  e.Set("attention", Napi::Function::New(env, Attention, "attention"));
}

}  // namespace tllm
