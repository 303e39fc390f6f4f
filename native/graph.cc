// The Llama decoder's whole forward step in one native call (createLlamaGraph / graphForward).
// The op sequence is src/models/llama.ts's, op for op, on the same kernels (g_kernels) in the same
// order, so the f32 results are bit-identical to the op-by-op path. What it removes: ~14 JS->native
// calls per layer with their argument checks, JS scratch bookkeeping, and the gaps between ops in
// which the pool's workers would otherwise drift towards sleep (between ops of one step they now
// keep spinning; after the step they sleep while JavaScript samples).
// Weight pointers are taken once at graph creation; the spec object (and through it every typed
// array, the mmapped ArrayBuffer included) is kept alive by a reference. A detached weight buffer
// (checkpoint closed) makes graphForward throw instead of touching unmapped memory.
#include <math.h>
#include <string.h>
#include <time.h>

#include <chrono>
#include <initializer_list>
#include <string>
#include <vector>

#include "graph.h"

namespace tllm {
namespace graph {
namespace {


// Optional per-op wall-time profile (graphProfile(true) turns it on): ns and calls per op kind.
enum Op { P_EMBED, P_NORM, P_QKV, P_BIAS, P_ROPE, P_KVW, P_ATTN, P_WO, P_ADD, P_GATEUP, P_SILU, P_DOWN, P_HEAD, P_N };
const char* const kOpNames[P_N] = {"embedding", "rmsnorm", "matmul qkv", "bias", "rope", "kv write", "attention",
                                   "matmul o", "residual add", "matmul gate+up", "silu*up", "matmul down", "lm head"};
bool g_prof = false;
double g_ns[P_N], g_cpu[P_N];
long g_calls[P_N];
inline double thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}
// wall time, and the calling thread's CPU time (immune to other processes on a shared machine;
// with 1 thread it is the op's whole cost)
struct Timed {
  Op op; std::chrono::steady_clock::time_point t0; double c0 = 0;
  explicit Timed(Op o) : op(o) {
    if (!g_prof) return;
    t0 = std::chrono::steady_clock::now();
    c0 = thread_cpu_ns();
  }
  ~Timed() {
    if (!g_prof) return;
    g_cpu[op] += thread_cpu_ns() - c0;
    g_ns[op] += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    g_calls[op]++;
  }
};
#define TIMED(op, stmt) do { Timed _t(op); stmt; } while (0)

void reserve(Graph& g, int T) {
  if (T <= g.cap) return;
  const int t = T > 2 * g.cap ? T : 2 * g.cap;
  const size_t qd = (size_t)g.nh * g.hd, kd = (size_t)g.nkv * g.hd;
  g.x.resize(t * (size_t)g.H); g.h.resize(t * (size_t)g.H); g.o.resize(t * (size_t)g.H); g.sel.resize(t * (size_t)g.H);
  g.q.resize(t * qd); g.attn.resize(t * qd); g.k.resize(t * kd); g.v.resize(t * kd);
  g.gate.resize(t * (size_t)g.I); g.up.resize(t * (size_t)g.I); g.act.resize(t * (size_t)g.I); g.gu.resize(2 * t * (size_t)g.I);
  g.rcos.resize(t * (size_t)(g.ropeDim / 2)); g.rsin.resize(t * (size_t)(g.ropeDim / 2));
  g.cap = t;
}

// The rope kernel (kern/ops.inc) recomputes cos/sin for every row of every call (60 calls a step);
// the angles depend only on the position, so the step computes them once here, with the same
// arithmetic (ggml: f32 theta chain, glibc cosf/sinf times mscale; else f64 cos/sin of pos * invFreq),
// and rope_apply rotates with the kernel's exact formulas. test/kernels/graph.test.ts checks the bits
// against the kernel path.
void rope_angles(Graph& g, const int32_t* pos, int T) {
  const int half = g.ropeDim / 2;
  for (int r = 0; r < T; r++) {
    double* cs = g.rcos.data() + (size_t)r * half;
    double* sn = g.rsin.data() + (size_t)r * half;
    if (!g.ggml) {
      for (int i = 0; i < half; i++) {
        const double th = (double)pos[r] * (double)g.invFreq[i];
        cs[i] = cos(th) * (double)g.mscale;
        sn[i] = sin(th) * (double)g.mscale;
      }
      continue;
    }
    float theta = (float)pos[r];
    for (int i = 0; i < half; i++) {
      const float ext = g.rg.freqFactors ? theta / g.rg.freqFactors[i] : theta;
      const float t = g.rg.freqScale * ext;
      cs[i] = cosf(t) * g.mscale;
      sn[i] = sinf(t) * g.mscale;
      theta = theta * g.rg.thetaScale;
    }
  }
}

__attribute__((always_inline)) inline void rope_apply_body(const Graph& g, float* x, int T, int nheads) {
  const int half = g.ropeDim / 2, hd = g.hd, step = g.neox ? 1 : 2, other = g.neox ? half : 1;
  for (int r = 0; r < T; r++) {
    const double* cs = g.rcos.data() + (size_t)r * half;
    const double* sn = g.rsin.data() + (size_t)r * half;
    for (int h = 0; h < nheads; h++) {
      float* b = x + (size_t)r * nheads * hd + (size_t)h * hd;
      for (int i = 0; i < half; i++) {
        float* a = b + i * step;
        const float x0 = a[0], x1 = a[other];
        if (g.ggml) {
          const float c = (float)cs[i], s = (float)sn[i];
          a[0] = fmaf(x0, c, -(x1 * s));
          a[other] = fmaf(x0, s, x1 * c);
        } else {
          a[0] = (float)(x0 * cs[i] - x1 * sn[i]);
          a[other] = (float)(x0 * sn[i] + x1 * cs[i]);
        }
      }
    }
  }
}

// fmaf is exact either way; with the AVX2 kernels active it is one instruction instead of a libm call
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void rope_apply_fma(const Graph& g, float* x, int T, int nheads) { rope_apply_body(g, x, T, nheads); }
#endif
void rope_apply(const Graph& g, float* x, int T, int nheads) {
#if defined(__x86_64__)
  if (g_kernels == avx2_kernels()) { rope_apply_fma(g, x, T, nheads); return; }
#endif
  rope_apply_body(g, x, T, nheads);
}

inline void mm(float* out, const float* x, int m, const WRef& w) {
  g_kernels->matmul(out, x, m, w.data, w.type, w.rows, w.cols);
}

// matmuls of the same activations (q/k/v, gate/up): one matmul_multi call where the weights share
// type and cols (same bits as separate calls), else one matmul each
void mm3(const float* x, int m, std::initializer_list<const WRef*> ws, std::initializer_list<float*> outs) {
  const WRef* const* w = ws.begin();
  const int n = (int)ws.size();
  bool same = true;
  for (int i = 1; i < n; i++) same = same && w[i]->type == w[0]->type && w[i]->cols == w[0]->cols;
  if (!same) {
    for (int i = 0; i < n; i++) mm(outs.begin()[i], x, m, *w[i]);
    return;
  }
  const uint8_t* data[4];
  int rows[4];
  for (int i = 0; i < n; i++) { data[i] = w[i]->data; rows[i] = w[i]->rows; }
  g_kernels->matmul_multi(outs.begin(), x, m, data, w[0]->type, rows, n, w[0]->cols);
}

// LlamaModel.attentionBlock
void attention_block(Graph& g, const LayerG& w, const KvDesc& kv, int T, const int32_t* pos, const int32_t* slots) {
  const KernelTable* K = g_kernels;
  const int H = g.H, qd = g.nh * g.hd, kd = g.nkv * g.hd;
  TIMED(P_NORM, K->rmsnorm(g.h.data(), g.x.data(), w.attnNorm, T, H, g.eps));
  {
    Timed t(P_QKV);
    mm3(g.h.data(), T, {&w.wq, &w.wk, &w.wv}, {g.q.data(), g.k.data(), g.v.data()});
  }
  if (w.bq) K->add_bias(g.q.data(), w.bq, T, qd);
  if (w.bk) K->add_bias(g.k.data(), w.bk, T, kd);
  if (w.bv) K->add_bias(g.v.data(), w.bv, T, kd);
  if (w.qNorm) K->rmsnorm(g.q.data(), g.q.data(), w.qNorm, T * g.nh, g.hd, g.eps);
  if (w.kNorm) K->rmsnorm(g.k.data(), g.k.data(), w.kNorm, T * g.nkv, g.hd, g.eps);
  if (g.ropeDim > 0) {
    Timed t(P_ROPE);
    rope_apply(g, g.q.data(), T, g.nh);
    rope_apply(g, g.k.data(), T, g.nkv);
  }
  TIMED(P_KVW, K->write_kv(kv, g.k.data(), g.v.data(), slots, T));
  TIMED(P_ATTN, K->attention(g.attn.data(), g.q.data(), kv, g.seqs.data(), (int)g.seqs.size(), g.nh, g.scale, g.window));
  TIMED(P_WO, mm(g.o.data(), g.attn.data(), T, w.wo));
  if (w.bo) K->add_bias(g.o.data(), w.bo, T, H);
  TIMED(P_ADD, K->add(g.x.data(), g.x.data(), g.o.data(), (size_t)T * H));
}

// LlamaModel.mlpBlock; with one row gate and up are written straight into [gate | up]
void mlp_block(Graph& g, const LayerG& w, int T) {
  const KernelTable* K = g_kernels;
  const int H = g.H, I = g.I;
  TIMED(P_NORM, K->rmsnorm(g.h.data(), g.x.data(), w.ffnNorm, T, H, g.eps));
  float* gu = g.gu.data();
  if (T == 1) {
    Timed t(P_GATEUP);
    mm3(g.h.data(), 1, {&w.wGate, &w.wUp}, {gu, gu + I});
  } else {
    Timed t(P_GATEUP);
    mm3(g.h.data(), T, {&w.wGate, &w.wUp}, {g.gate.data(), g.up.data()});
    for (int r = 0; r < T; r++) {
      memcpy(gu + (size_t)r * 2 * I, g.gate.data() + (size_t)r * I, sizeof(float) * I);
      memcpy(gu + (size_t)r * 2 * I + I, g.up.data() + (size_t)r * I, sizeof(float) * I);
    }
  }
  TIMED(P_SILU, K->silu_mul(g.act.data(), gu, T, I));
  TIMED(P_DOWN, mm(g.o.data(), g.act.data(), T, w.wDown));
  TIMED(P_ADD, K->add(g.x.data(), g.x.data(), g.o.data(), (size_t)T * H));
}

// LlamaModel.selectRows: rows of x to [0, R) in order
void select_rows(Graph& g, const int32_t* rows, int R) {
  bool identity = true;
  for (int i = 0; i < R; i++) if (rows[i] != i) { identity = false; break; }
  if (identity) return;
  const size_t H = g.H;
  for (int i = 0; i < R; i++) memcpy(g.sel.data() + i * H, g.x.data() + rows[i] * H, sizeof(float) * H);
  memcpy(g.x.data(), g.sel.data(), sizeof(float) * R * H);
}

const int32_t* i32_arg(const Napi::CallbackInfo& info, size_t i, const char* what, size_t* len) {
  View v = arg_view(info, i, napi_int32_array, what);
  *len = v.length;
  return (const int32_t*)v.data;
}

// Checks the packed sequences (as the attention binding does) into g.seqs; returns the rows covered.
void bind_seqs(Graph& g, Napi::Env env, const int32_t* si, size_t siLen, const int32_t* tb, size_t tbLen, int numBlocks, int tpb, int T) {
  if (siLen % 4) throw Napi::RangeError::New(env, "seqInfo: length must be a multiple of 4");
  const int nseq = (int)(siLen / 4);
  g.seqs.resize(nseq);
  int covered = 0;
  for (int i = 0; i < nseq; i++) {
    const int32_t qs = si[4 * i], ql = si[4 * i + 1], kl = si[4 * i + 2], to = si[4 * i + 3];
    const std::string who = "seq " + std::to_string(i);
    if (qs != covered || ql < 0 || ql > kl) throw Napi::RangeError::New(env, who + ": needs qStart = rows so far and 0 <= qLen <= kvLen");
    const int64_t nb = ((int64_t)kl + tpb - 1) / tpb;
    if (to < 0 || (size_t)(to + nb) > tbLen) throw Napi::RangeError::New(env, who + ": block table out of range");
    for (int64_t b = 0; b < nb; b++)
      if (tb[to + b] < 0 || tb[to + b] >= numBlocks) throw Napi::RangeError::New(env, who + ": block id out of range");
    g.seqs[i] = SeqDesc{qs, ql, kl, tb + to};
    covered += ql;
  }
  if (covered != T) throw Napi::RangeError::New(env, "seqInfo: query rows cover " + std::to_string(covered) + " of " + std::to_string(T));
}

// One step's inputs, checked (the JS wrapper checks first with typed errors; these keep memory safe).
struct Step {
  const int32_t *tok, *pos, *slots, *rows;
  int T, R;
  std::vector<KvDesc> kv;
  float* out;
};

// kvLayers[l] -> KvDesc of the pool [numBlocks, 2, nkv, tpb, hd] (f32, f16 or int8 with per-row scales)
std::vector<KvDesc> bind_kv(const Graph& g, Napi::Env env, Napi::Array kvs, int numBlocks, int tpb) {
  const int L = (int)g.layers.size();
  if (kvs.Length() != (uint32_t)L) throw Napi::RangeError::New(env, "kvLayers: expected one per layer");
  std::vector<KvDesc> kv(L);
  for (int l = 0; l < L; l++) {
    napi_typedarray_type type;
    size_t len;
    void* data;
    if (napi_get_typedarray_info(env, kvs.Get((uint32_t)l), &type, &len, &data, nullptr, nullptr) != napi_ok ||
        (type != napi_float32_array && type != napi_uint16_array && type != napi_int8_array))
      throw Napi::TypeError::New(env, "kvLayers[" + std::to_string(l) + "]: expected a Float32Array, Uint16Array or Int8Array");
    kv[l] = KvDesc{data, type == napi_uint16_array ? 1 : 0, numBlocks, tpb, g.nkv, g.hd, type == napi_int8_array ? 1 : 0};
    if (len < kv_pool_elements(kv[l]) || (kv[l].i8 && (g.hd % 4 || (uintptr_t)data % 4)))
      throw Napi::RangeError::New(env, "kvLayers[" + std::to_string(l) + "]: smaller than the pool's size, or an unaligned int8 pool");
  }
  return kv;
}

Step check_step(Graph& g, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (auto& b : g.buffers)
    if (b.Value().IsDetached()) throw Napi::Error::New(env, "graphForward: the weights' buffer was unmapped (checkpoint closed)");
  Step s;
  size_t T, np, ns, nsi, ntb, R;
  s.tok = i32_arg(info, 1, "tokens", &T);
  s.pos = i32_arg(info, 2, "positions", &np);
  s.slots = i32_arg(info, 3, "slots", &ns);
  const int32_t* si = i32_arg(info, 4, "seqInfo", &nsi);
  const int32_t* tb = i32_arg(info, 5, "tables", &ntb);
  s.rows = i32_arg(info, 6, "logitRows", &R);
  if (!info[7].IsArray()) throw Napi::TypeError::New(env, "kvLayers: expected an array");
  const int numBlocks = (int)arg_int(info, 8, 1, 1LL << 30, "kv.numBlocks"), tpb = (int)arg_int(info, 9, 1, 1 << 20, "kv.tokensPerBlock");
  View out = arg_view(info, 10, napi_float32_array, "logits");
  if (T == 0 || np != T || ns != T) throw Napi::RangeError::New(env, "tokens/positions/slots: need the same length >= 1");
  need_len(env, out, R * (size_t)g.vocab, "logits");
  for (size_t t = 0; t < T; t++) {
    if (s.tok[t] < 0 || s.tok[t] >= g.embed.rows) throw Napi::RangeError::New(env, "tokens[" + std::to_string(t) + "]: out of range");
    if (s.slots[t] < 0 || (int64_t)s.slots[t] >= (int64_t)numBlocks * tpb)
      throw Napi::RangeError::New(env, "slots[" + std::to_string(t) + "]: out of range");
  }
  for (size_t i = 0; i < R; i++)
    if (s.rows[i] < 0 || (size_t)s.rows[i] >= T) throw Napi::RangeError::New(env, "logitRows[" + std::to_string(i) + "]: out of range");
  s.kv = bind_kv(g, env, info[7].As<Napi::Array>(), numBlocks, tpb);
  bind_seqs(g, env, si, nsi, tb, ntb, numBlocks, tpb, (int)T);
  s.T = (int)T;
  s.R = (int)R;
  s.out = (float*)out.data;
  return s;
}

// LlamaModel.forward
void run_step(Graph& g, const Step& s) {
  const int L = (int)g.layers.size(), n = s.T, R = s.R;
  reserve(g, R > n ? R : n);
  if (g.ropeDim > 0) TIMED(P_ROPE, rope_angles(g, s.pos, n));
  TIMED(P_EMBED, g_kernels->embedding(g.x.data(), g.embed.data, g.embed.type, g.H, s.tok, n));
  for (int l = 0; l < L - 1; l++) {
    attention_block(g, g.layers[l], s.kv[l], n, s.pos, s.slots);
    mlp_block(g, g.layers[l], n);
  }
  attention_block(g, g.layers[L - 1], s.kv[L - 1], n, s.pos, s.slots);
  select_rows(g, s.rows, R);
  if (R == 0) return;
  mlp_block(g, g.layers[L - 1], R);
  TIMED(P_NORM, g_kernels->rmsnorm(g.h.data(), g.x.data(), g.finalNorm, R, g.H, g.eps));
  TIMED(P_HEAD, mm(s.out, g.h.data(), R, g.lmHead));
}

// graphForward(graph, tokens, positions, slots, seqInfo, tables, logitRows, kvLayers[], numBlocks, tpb, logits)
Napi::Value GraphForward(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "graph: expected a graph handle");
  Graph& g = *info[0].As<Napi::External<Graph>>().Data();
  run_step(g, check_step(g, info));
  return info.Env().Undefined();
}

// graphProfile(on?: boolean): the per-op totals since the last call ({op: [wall ms, calls, caller-thread CPU ms]}), then reset;
// `on` switches timing on or off (off by default: the timers cost ~50 ns an op)
Napi::Value GraphProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  for (int i = 0; i < P_N; i++) {
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(0u, g_ns[i] / 1e6);
    a.Set(1u, (double)g_calls[i]);
    a.Set(2u, g_cpu[i] / 1e6);
    o.Set(kOpNames[i], a);
    g_ns[i] = g_cpu[i] = 0;
    g_calls[i] = 0;
  }
  if (info.Length() > 0 && info[0].IsBoolean()) g_prof = info[0].As<Napi::Boolean>().Value();
  return o;
}

}  // namespace
}  // namespace graph

void register_graph(Napi::Env env, Napi::Object e) {
  e.Set("createLlamaGraph", Napi::Function::New(env, graph::CreateLlamaGraph, "createLlamaGraph"));
  e.Set("graphForward", Napi::Function::New(env, graph::GraphForward, "graphForward"));
  e.Set("graphProfile", Napi::Function::New(env, graph::GraphProfile, "graphProfile"));
}

}  // namespace tllm
