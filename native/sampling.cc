// Whole-vocabulary passes of the sampler (src/sampling/select.ts), one logits row [vocab] f32 per
// call, single-threaded. Weights are w = exp((x - xmax) · invT) in float64 by the SAME table-driven
// exp as select.ts (k = round(y·64/ln2), Cody-Waite split of ln2/64, degree-5 Estrin polynomial,
// 2^(k>>6) · 2^((k&63)/64) — the 2^(j/64) table is handed over from JS by sampleSetExpTable), so
// every weight and every histogram bin is bit-identical to the JS fallback's. The AVX2 copy runs 4
// doubles at a time with no FMA (as JS: -ffp-contract=off); the scalar copy (TLLM_FORCE_SCALAR)
// sums in the same 8 lanes in the same order, so both give the same bits, hence the same token for
// a seed on every machine. Only sums differ from JS (lane order), by rounding (~1e-16 relative).
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "addon.h"
#include "pool.h"

namespace tllm {
namespace {

constexpr double kExpMinArg = -745;  // select.ts EXP_MIN_ARG
constexpr double kInvStep = 64 / 0.69314718055994530942;
constexpr double kLn2Hi64 = 6.93147180369123816490e-1 / 64;
constexpr double kLn2Lo64 = 1.90821492927058770002e-10 / 64;
constexpr double kShift = 6755399441055744.0;  // 1.5·2^52
constexpr int kBlock = 2048;                   // select.ts WEIGHT_BLOCK
constexpr int kBins = 64 * 64;                 // select.ts WEIGHT_BINS
constexpr int kSub = 32;                       // select.ts SUBSAMPLE
constexpr int kLanes = 8;

double g_frac[64];                 // 2^(j/64), from JS (Math.pow) so the bits match select.ts
double g_pow2[1100];               // 2^-m, subnormals included (exact powers of two)
std::atomic<bool> g_table_ok{false};  // set once per process (every JS thread hands over the same table)
std::mutex g_table_mu;
int32_t g_pack[256][8];            // left-pack: the set bits of a mask, lowest first

void init_pack() {
  for (int m = 0; m < 256; m++) {
    int n = 0;
    for (int l = 0; l < 8; l++)
      if (m >> l & 1) g_pack[m][n++] = l;
    while (n < 8) g_pack[m][n++] = 0;
  }
}

inline int exp_index(double y) { return (int)((y * kInvStep + kShift) - kShift); }
inline double exp_at(double y, int k) {
  const double kd = (double)k;
  const double r = (y - kd * kLn2Hi64) - kd * kLn2Lo64;
  const double r2 = r * r;
  const double p = (1 + r) + r2 * ((0.5 + r * (1.0 / 6)) + r2 * (1.0 / 24 + r * (1.0 / 120)));
  return g_pow2[0 - (k >> 6)] * g_frac[k & 63] * p;
}
inline double exp_nonpos(double y) { return y >= kExpMinArg ? exp_at(y, exp_index(y)) : 0; }
inline int bin_of(int k) { return -k < kBins - 1 ? -k : kBins - 1; }
/** weight of x (0 unless x >= floor) */
inline double weight(float x, double xmax, double floor, double invT) {
  return (double)x >= floor ? exp_nonpos(((double)x - xmax) * invT) : 0;
}
inline double reduce8(const double* a) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

bool use_avx2() { return strcmp(g_kernels->name, "avx2") == 0; }

// ---- AVX2: w for 4 floats at once; lanes below floor / EXP_MIN_ARG give 0 ----
#if defined(__x86_64__)
#define TLLM_AVX2 __attribute__((target("avx2")))
TLLM_AVX2 inline __m256d gather(const double* table, __m128i i) {  // the masked form: no -Wmaybe-uninitialized
  const __m256d all = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
  return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), table, i, all, 8);
}
TLLM_AVX2 inline __m256d weights4(__m128 x4, __m256d xmax, __m256d floor, __m256d invT, __m128i* kOut) {
  const __m256d x = _mm256_cvtps_pd(x4);
  const __m256d y = _mm256_mul_pd(_mm256_sub_pd(x, xmax), invT);
  const __m256d keep = _mm256_and_pd(_mm256_cmp_pd(x, floor, _CMP_GE_OQ), _mm256_cmp_pd(y, _mm256_set1_pd(kExpMinArg), _CMP_GE_OQ));
  const __m256d ys = _mm256_and_pd(keep, y);  // dropped lanes: y = 0 (any finite value would do)
  const __m256d sh = _mm256_set1_pd(kShift);
  const __m256d kd = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(ys, _mm256_set1_pd(kInvStep)), sh), sh);
  const __m256d r = _mm256_sub_pd(_mm256_sub_pd(ys, _mm256_mul_pd(kd, _mm256_set1_pd(kLn2Hi64))),
                                  _mm256_mul_pd(kd, _mm256_set1_pd(kLn2Lo64)));
  const __m256d r2 = _mm256_mul_pd(r, r);
  const __m256d one = _mm256_set1_pd(1);
  const __m256d lo = _mm256_add_pd(_mm256_set1_pd(0.5), _mm256_mul_pd(r, _mm256_set1_pd(1.0 / 6)));
  const __m256d hi = _mm256_add_pd(_mm256_set1_pd(1.0 / 24), _mm256_mul_pd(r, _mm256_set1_pd(1.0 / 120)));
  const __m256d p = _mm256_add_pd(_mm256_add_pd(one, r), _mm256_mul_pd(r2, _mm256_add_pd(lo, _mm256_mul_pd(r2, hi))));
  const __m128i k = _mm256_cvttpd_epi32(kd);
  const __m128i m = _mm_sub_epi32(_mm_setzero_si128(), _mm_srai_epi32(k, 6));  // 0 .. 1076
  alignas(16) int32_t j[4];  // 4 loads beat vgatherdpd on AMD (measured: sum pass 0.45 -> see PERF.md)
  _mm_store_si128((__m128i*)j, _mm_and_si128(k, _mm_set1_epi32(63)));
  const __m256d frac = _mm256_set_pd(g_frac[j[3]], g_frac[j[2]], g_frac[j[1]], g_frac[j[0]]);
  // 2^-m from exponent bits while normal (m <= 1022); else from the table (exact either way)
  __m256d pow2;
  if (_mm_movemask_epi8(_mm_cmpgt_epi32(m, _mm_set1_epi32(1022))) == 0) {
    const __m256i e = _mm256_slli_epi64(_mm256_sub_epi64(_mm256_set1_epi64x(1023), _mm256_cvtepi32_epi64(m)), 52);
    pow2 = _mm256_castsi256_pd(e);
  } else {
    pow2 = gather(g_pow2, m);
  }
  *kOut = k;
  return _mm256_and_pd(keep, _mm256_mul_pd(_mm256_mul_pd(pow2, frac), p));
}

/** Σ of w over [start, end) (end - start a multiple of 8) into the 8 lane sums acc. */
TLLM_AVX2 void sum8_avx2(const float* row, int start, int end, double xmax, double floor, double invT, double* acc) {
  const __m256d vmax = _mm256_set1_pd(xmax), vfloor = _mm256_set1_pd(floor), vinv = _mm256_set1_pd(invT);
  __m256d a = _mm256_loadu_pd(acc), b = _mm256_loadu_pd(acc + 4);
  __m128i k;
  for (int i = start; i < end; i += 8) {
    a = _mm256_add_pd(a, weights4(_mm_loadu_ps(row + i), vmax, vfloor, vinv, &k));
    b = _mm256_add_pd(b, weights4(_mm_loadu_ps(row + i + 4), vmax, vfloor, vinv, &k));
  }
  _mm256_storeu_pd(acc, a);
  _mm256_storeu_pd(acc + 4, b);
}
#endif

/** Σw over [start, end) in lane order (element i into lane i % 8), then reduce8. */
double sum_range(const float* row, int start, int end, double xmax, double floor, double invT) {
  double acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = start;
#if defined(__x86_64__)
  if (use_avx2()) {
    const int end8 = start + ((end - start) & ~(kLanes - 1));
    sum8_avx2(row, start, end8, xmax, floor, invT, acc);
    i = end8;
  }
#endif
  for (; i < end; i++) acc[(i - start) & (kLanes - 1)] += weight(row[i], xmax, floor, invT);
  return reduce8(acc);
}

// ---- argument plumbing ----
struct Row { const float* x; int vocab; };
Row row_arg(const Napi::CallbackInfo& info) {
  View v = arg_view(info, 0, napi_float32_array, "row");
  const int vocab = (int)arg_int(info, 1, 1, 1 << 24, "vocab");
  need_len(info.Env(), v, (size_t)vocab, "row");
  if (!g_table_ok) throw Napi::Error::New(info.Env(), "sampling: sampleSetExpTable was not called");
  return {(const float*)v.data, vocab};
}

// sampleSetExpTable(frac: Float64Array[64] = 2^(j/64))
Napi::Value SetExpTable(const Napi::CallbackInfo& info) {
  View f = arg_view(info, 0, napi_float64_array, "frac");
  need_len(info.Env(), f, 64, "frac");
  std::lock_guard<std::mutex> lk(g_table_mu);
  if (g_table_ok) {  // another worker thread's copy of select.ts got here first: never rewrite a table in use
    if (memcmp(g_frac, f.data, sizeof g_frac) != 0) throw Napi::Error::New(info.Env(), "sampleSetExpTable: a different table is already set");
    return info.Env().Undefined();
  }
  memcpy(g_frac, f.data, sizeof g_frac);
  for (int m = 0; m < 1100; m++) g_pow2[m] = ldexp(1.0, -m);
  init_pack();
  g_table_ok = true;
  return info.Env().Undefined();
}

#if defined(__x86_64__)
TLLM_AVX2 float max_avx2(const float* x, int n, int* done) {
  __m256 a = _mm256_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 8 <= n; i += 8) a = _mm256_max_ps(_mm256_loadu_ps(x + i), a);  // a NaN in x keeps a
  float t[8];
  _mm256_storeu_ps(t, a);
  float m = -INFINITY;
  for (int l = 0; l < 8; l++) m = t[l] > m ? t[l] : m;
  *done = i;
  return m;
}
TLLM_AVX2 int count_above_avx2(const float* x, int n, float x0, int* done) {
  const __m256 v0 = _mm256_set1_ps(x0);
  int c = 0, i = 0;
  for (; i + 8 <= n; i += 8) c += __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), v0, _CMP_GT_OQ)));
  *done = i;
  return c;
}
#endif

float row_max(const float* x, int n) {
  float m = -INFINITY;
  int i = 0;
#if defined(__x86_64__)
  if (use_avx2()) m = max_avx2(x, n, &i);
#endif
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

int count_above(const float* x, int n, float x0) {
  int c = 0, i = 0;
#if defined(__x86_64__)
  if (use_avx2()) c = count_above_avx2(x, n, x0, &i);
#endif
  for (; i < n; i++) c += x[i] > x0 ? 1 : 0;
  return c;
}

#if defined(__x86_64__)
/** first i in [0, n) with x[i] == m (n if none; 8 at a time) */
TLLM_AVX2 int find_first_avx2(const float* x, int n, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vm, _CMP_EQ_OQ));
    if (mask) return i + __builtin_ctz(mask);
  }
  for (; i < n; i++) if (x[i] == m) return i;
  return n;
}
#endif

/** first index of the largest entry (NaN skipped; 0 when no entry is above -Infinity) */
int argmax_row(const float* x, int vocab, float m) {  // m = row_max(x, vocab)
  int i = 0;
  if (m != -INFINITY) {
#if defined(__x86_64__)
    if (use_avx2()) i = find_first_avx2(x, vocab, m);
    else
#endif
      while (x[i] != m) i++;
  }
  return i;
}
int argmax_row(const float* x, int vocab) { return argmax_row(x, vocab, row_max(x, vocab)); }

// sampleArgmax(row, vocab): argmax_row
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  return Napi::Number::New(info.Env(), argmax_row(r.x, r.vocab));
}

// sampleRowMax(row, vocab): largest entry (NaN skipped; -Infinity when none)
Napi::Value RowMax(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  return Napi::Number::New(info.Env(), (double)row_max(r.x, r.vocab));
}

/** log Σ exp(x) in two passes: max, then Σ exp(x - max) (NaN, -inf add 0); ±Infinity when the max is */
double lse_row(const float* x, int vocab, double m) {  // m = row_max(x, vocab)
  if (m == -INFINITY || m == INFINITY) return m;
  return m + log(sum_range(x, 0, vocab, m, -INFINITY, 1));
}
double lse_row(const float* x, int vocab) { return lse_row(x, vocab, row_max(x, vocab)); }

// sampleLseRank(row, vocab, x0, out: Float64Array[2]): out = [log Σ exp(row), 1 + #(row > x0)];
// x0 must be a float32 value (or ±Infinity). Two passes: max, then Σ exp(x - max) (NaN, -inf add 0).
Napi::Value LseRank(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const float x0 = (float)arg_num(info, 2, "x0");
  View o = arg_view(info, 3, napi_float64_array, "out");
  need_len(info.Env(), o, 2, "out");
  double* out = (double*)o.data;
  out[0] = lse_row(r.x, r.vocab);
  out[1] = 1 + count_above(r.x, r.vocab, x0);
  return info.Env().Undefined();
}

/** Σw, with the sum of block j (ids [j·kBlock, (j+1)·kBlock)) into blocks[j] */
double sum_blocks(const float* x, int vocab, double xmax, double floor, double invT, double* blocks) {
  double total = 0;
  for (int j = 0, start = 0; start < vocab; j++, start += kBlock) {
    blocks[j] = sum_range(x, start, start + kBlock < vocab ? start + kBlock : vocab, xmax, floor, invT);
    total += blocks[j];
  }
  return total;
}

// sampleSumBlocks(row, vocab, xmax, floor, invT, blockSums): Σw, block sums as select.ts sumWeightBlocks
Napi::Value SumBlocks(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const double xmax = arg_num(info, 2, "xmax"), floor = arg_num(info, 3, "floor"), invT = arg_num(info, 4, "invT");
  View bs = arg_view(info, 5, napi_float64_array, "blockSums");
  need_len(info.Env(), bs, (size_t)((r.vocab + kBlock - 1) / kBlock), "blockSums");
  return Napi::Number::New(info.Env(), sum_blocks(r.x, r.vocab, xmax, floor, invT, (double*)bs.data));
}

/** select.ts scanWeightBlocks: the first kept token at which the running weight exceeds t (-1: none) */
int scan_blocks(const float* x, int vocab, double xmax, double floor, double invT, const double* blocks, double t) {
  double acc = 0;
  for (int j = 0, start = 0; start < vocab; j++, start += kBlock) {
    if (!(acc + blocks[j] > t)) {
      acc += blocks[j];
      continue;
    }
    const int end = start + kBlock < vocab ? start + kBlock : vocab;
    int last = -1;
    for (int i = start; i < end; i++) {
      const double w = weight(x[i], xmax, floor, invT);
      if (w > 0) last = i;
      acc += w;
      if (acc > t) return i;
    }
    return last;
  }
  return -1;
}

// sampleScanBlocks(row, vocab, xmax, floor, invT, blockSums, t): scan_blocks
Napi::Value ScanBlocks(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const double xmax = arg_num(info, 2, "xmax"), floor = arg_num(info, 3, "floor"), invT = arg_num(info, 4, "invT");
  View bs = arg_view(info, 5, napi_float64_array, "blockSums");
  need_len(info.Env(), bs, (size_t)((r.vocab + kBlock - 1) / kBlock), "blockSums");
  const double t = arg_num(info, 6, "t");
  return Napi::Number::New(info.Env(), scan_blocks(r.x, r.vocab, xmax, floor, invT, (const double*)bs.data, t));
}

#include "sampling_top_p.inc"
#include "sampling_top_k.inc"
#include "sampling_mask.inc"
#include "sampling_nucleus.inc"
#include "sampling_batch.inc"


}  // namespace

void register_sampling(Napi::Env env, Napi::Object exports) {
  exports.Set("sampleSetExpTable", Napi::Function::New(env, SetExpTable, "sampleSetExpTable"));
  exports.Set("sampleArgmax", Napi::Function::New(env, Argmax, "sampleArgmax"));
  exports.Set("sampleTopK", Napi::Function::New(env, TopKSel, "sampleTopK"));
  exports.Set("sampleSplitByBin", Napi::Function::New(env, SplitByBin, "sampleSplitByBin"));
  exports.Set("sampleRowMax", Napi::Function::New(env, RowMax, "sampleRowMax"));
  exports.Set("sampleSumBlocks", Napi::Function::New(env, SumBlocks, "sampleSumBlocks"));
  exports.Set("sampleLseRank", Napi::Function::New(env, LseRank, "sampleLseRank"));
  exports.Set("sampleSumGather", Napi::Function::New(env, SumGather, "sampleSumGather"));
  exports.Set("sampleGatherUpTo", Napi::Function::New(env, GatherUpTo, "sampleGatherUpTo"));
  exports.Set("sampleScanBlocks", Napi::Function::New(env, ScanBlocks, "sampleScanBlocks"));
  exports.Set("sampleApplyMask", Napi::Function::New(env, ApplyMask, "sampleApplyMask"));
  exports.Set("sampleBatch", Napi::Function::New(env, SampleBatch, "sampleBatch"));
}

}  // namespace tllm
