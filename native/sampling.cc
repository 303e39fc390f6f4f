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

// sampleArgmax(row, vocab): first index of the largest entry (NaN skipped; 0 when no entry is above -Infinity)
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const float m = row_max(r.x, r.vocab);
  int i = 0;
  if (m != -INFINITY) {
#if defined(__x86_64__)
    if (use_avx2()) i = find_first_avx2(r.x, r.vocab, m);
    else
#endif
      while (r.x[i] != m) i++;
  }
  return Napi::Number::New(info.Env(), i);
}

// sampleRowMax(row, vocab): largest entry (NaN skipped; -Infinity when none)
Napi::Value RowMax(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  return Napi::Number::New(info.Env(), (double)row_max(r.x, r.vocab));
}

// sampleLseRank(row, vocab, x0, out: Float64Array[2]): out = [log Σ exp(row), 1 + #(row > x0)];
// x0 must be a float32 value (or ±Infinity). Two passes: max, then Σ exp(x - max) (NaN, -inf add 0).
Napi::Value LseRank(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const float x0 = (float)arg_num(info, 2, "x0");
  View o = arg_view(info, 3, napi_float64_array, "out");
  need_len(info.Env(), o, 2, "out");
  double* out = (double*)o.data;
  const double m = row_max(r.x, r.vocab);
  if (m == -INFINITY || m == INFINITY) out[0] = m;
  else out[0] = m + log(sum_range(r.x, 0, r.vocab, m, -INFINITY, 1));
  out[1] = 1 + count_above(r.x, r.vocab, x0);
  return info.Env().Undefined();
}

// sampleSumBlocks(row, vocab, xmax, floor, invT, blockSums): Σw, block sums as select.ts sumWeightBlocks
Napi::Value SumBlocks(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const double xmax = arg_num(info, 2, "xmax"), floor = arg_num(info, 3, "floor"), invT = arg_num(info, 4, "invT");
  View bs = arg_view(info, 5, napi_float64_array, "blockSums");
  need_len(info.Env(), bs, (size_t)((r.vocab + kBlock - 1) / kBlock), "blockSums");
  double* blocks = (double*)bs.data;
  double total = 0;
  for (int j = 0, start = 0; start < r.vocab; j++, start += kBlock) {
    blocks[j] = sum_range(r.x, start, start + kBlock < r.vocab ? start + kBlock : r.vocab, xmax, floor, invT);
    total += blocks[j];
  }
  return Napi::Number::New(info.Env(), total);
}

// sampleScanBlocks(row, vocab, xmax, floor, invT, blockSums, t): select.ts scanWeightBlocks
Napi::Value ScanBlocks(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const double xmax = arg_num(info, 2, "xmax"), floor = arg_num(info, 3, "floor"), invT = arg_num(info, 4, "invT");
  View bs = arg_view(info, 5, napi_float64_array, "blockSums");
  need_len(info.Env(), bs, (size_t)((r.vocab + kBlock - 1) / kBlock), "blockSums");
  const double t = arg_num(info, 6, "t");
  const double* blocks = (const double*)bs.data;
  double acc = 0;
  for (int j = 0, start = 0; start < r.vocab; j++, start += kBlock) {
    if (!(acc + blocks[j] > t)) {
      acc += blocks[j];
      continue;
    }
    const int end = start + kBlock < r.vocab ? start + kBlock : r.vocab;
    int last = -1;
    for (int i = start; i < end; i++) {
      const double w = weight(r.x[i], xmax, floor, invT);
      if (w > 0) last = i;
      acc += w;
      if (acc > t) return Napi::Number::New(info.Env(), i);
    }
    return Napi::Number::New(info.Env(), last);
  }
  return Napi::Number::New(info.Env(), -1);
}

// ---- top_p passes (select.ts sumWeightsGather, gatherUpTo) ----
struct Gather {
  const float* x; int vocab; double xmax, floor, invT, xlist;
  int32_t* idx; double* w; int32_t* bin; double* sub; int n;
};

/** Token i with weight wi and index k (kept): listed when x >= xlist, else subsampled when i % kSub == 0. */
inline void gather_one(Gather& g, int i, double wi, int k) {
  if ((double)g.x[i] >= g.xlist) {
    g.idx[g.n] = i;
    g.bin[g.n] = bin_of(k);
    g.w[g.n++] = wi;
  } else if ((i & (kSub - 1)) == 0) {
    g.sub[bin_of(k)] += wi;
  }
}

/** Scalar twin of gather8_avx2 over [start, vocab): lane sums in acc (element i into lane i % 8). */
void gather_scalar(Gather& g, int start, double* acc) {
  for (int i = start; i < g.vocab; i++) {
    const double x = g.x[i];
    if (!(x >= g.floor)) continue;
    const double y = (x - g.xmax) * g.invT;
    if (!(y >= kExpMinArg)) continue;
    const int k = exp_index(y);
    const double wi = exp_at(y, k);
    acc[i & (kLanes - 1)] += wi;
    gather_one(g, i, wi, k);
  }
}

#if defined(__x86_64__)
/** [0, end) with end a multiple of 8; returns end. Lanes flagged (listed or subsampled) go through gather_one. */
TLLM_AVX2 int gather8_avx2(Gather& g, int end, double* acc) {
  const __m256d vmax = _mm256_set1_pd(g.xmax), vfloor = _mm256_set1_pd(g.floor), vinv = _mm256_set1_pd(g.invT);
  const __m256 vlist = _mm256_set1_ps(nextafterf((float)g.xlist, -INFINITY));  // <= xlist: a superset
  __m256d a = _mm256_loadu_pd(acc), b = _mm256_loadu_pd(acc + 4);
  __m128i k0, k1;
  for (int i = 0; i < end; i += 8) {
    const __m256 x8 = _mm256_loadu_ps(g.x + i);
    const __m256d w0 = weights4(_mm256_castps256_ps128(x8), vmax, vfloor, vinv, &k0);
    const __m256d w1 = weights4(_mm256_extractf128_ps(x8, 1), vmax, vfloor, vinv, &k1);
    a = _mm256_add_pd(a, w0);
    b = _mm256_add_pd(b, w1);
    // lanes that may be listed (exact test in gather_one) or subsampled
    const int listed = _mm256_movemask_ps(_mm256_cmp_ps(x8, vlist, _CMP_GE_OQ));
    if (listed == 0) {
      if ((i & (kSub - 1)) != 0) continue;
      const double x = g.x[i];  // subsampled lane 0 only
      if (x >= g.floor && (x - g.xmax) * g.invT >= kExpMinArg) gather_one(g, i, _mm256_cvtsd_f64(w0), _mm_cvtsi128_si32(k0));
      continue;
    }
    alignas(32) double wl[8];
    alignas(16) int32_t kl[8];
    _mm256_store_pd(wl, w0);
    _mm256_store_pd(wl + 4, w1);
    _mm_store_si128((__m128i*)kl, k0);
    _mm_store_si128((__m128i*)(kl + 4), k1);
    for (int l = 0; l < 8; l++) {
      const double x = g.x[i + l];
      if (x >= g.floor && (x - g.xmax) * g.invT >= kExpMinArg) gather_one(g, i + l, wl[l], kl[l]);
    }
  }
  _mm256_storeu_pd(acc, a);
  _mm256_storeu_pd(acc + 4, b);
  return end;
}
#endif

// sampleSumGather(row, vocab, xmax, floor, invT, xlist, idx, w, bin, sub, count: Int32Array[1]) -> Σw
Napi::Value SumGather(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  Gather g{r.x, r.vocab, arg_num(info, 2, "xmax"), arg_num(info, 3, "floor"), arg_num(info, 4, "invT"),
           arg_num(info, 5, "xlist"), nullptr, nullptr, nullptr, nullptr, 0};
  View idx = arg_view(info, 6, napi_int32_array, "idx"), w = arg_view(info, 7, napi_float64_array, "w");
  View bin = arg_view(info, 8, napi_int32_array, "bin"), sub = arg_view(info, 9, napi_float64_array, "sub");
  View cnt = arg_view(info, 10, napi_int32_array, "count");
  need_len(info.Env(), idx, r.vocab, "idx");
  need_len(info.Env(), w, r.vocab, "w");
  need_len(info.Env(), bin, r.vocab, "bin");
  need_len(info.Env(), sub, kBins, "sub");
  need_len(info.Env(), cnt, 1, "count");
  g.idx = (int32_t*)idx.data;
  g.w = (double*)w.data;
  g.bin = (int32_t*)bin.data;
  g.sub = (double*)sub.data;
  double acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int start = 0;
#if defined(__x86_64__)
  if (use_avx2()) start = gather8_avx2(g, r.vocab & ~(kLanes - 1), acc);
#endif
  gather_scalar(g, start, acc);
  ((int32_t*)cnt.data)[0] = g.n;
  return Napi::Number::New(info.Env(), reduce8(acc));
}

struct UpTo {
  const float* x; double xmax, xlo, invT; int bmax; int32_t* idx; double* w; int32_t* bin; double* bins; int n;
};
inline void upto_one(UpTo& u, int i, double wi, int k) {
  const int b = bin_of(k);
  u.idx[u.n] = i;
  u.bin[u.n] = b;
  u.w[u.n++] = wi;
  u.bins[b] += wi;
}

/** token i (a candidate: x >= xlo as float): listed when x >= xlo, y >= EXP_MIN_ARG and its bin <= bmax */
inline void upto_scalar(UpTo& u, int i) {
  const double x = u.x[i];
  if (!(x >= u.xlo)) return;
  const double y = (x - u.xmax) * u.invT;
  if (!(y >= kExpMinArg)) return;
  const int k = exp_index(y);
  if (bin_of(k) <= u.bmax) upto_one(u, i, exp_at(y, k), k);
}

#if defined(__x86_64__)
/**
 * [0, end), end a multiple of 8, in two steps: a float compare lists the candidate ids into u.idx
 * (in place: the results, written at n <= the read position, never overtake it), then their
 * weights are computed 4 at a time (flat rows have ~20% candidates: most 8-groups hold one).
 */
TLLM_AVX2 int upto8_avx2(UpTo& u, int end) {
  const __m256 vlo = _mm256_set1_ps(nextafterf((float)u.xlo, -INFINITY));  // <= xlo: a superset
  int nc = 0;
  for (int i = 0; i < end; i += 8) {  // branch-free left-pack: 8 ids stored, nc advances by the count
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(u.x + i), vlo, _CMP_GE_OQ));
    const __m256i lanes = _mm256_loadu_si256((const __m256i*)g_pack[mask]);
    _mm256_storeu_si256((__m256i*)(u.idx + nc), _mm256_add_epi32(_mm256_set1_epi32(i), lanes));  // nc <= i: in bounds
    nc += __builtin_popcount(mask);
  }
  const __m256d vmax = _mm256_set1_pd(u.xmax), vfloor = _mm256_set1_pd(u.xlo), vinv = _mm256_set1_pd(u.invT);
  int c = 0;
  for (; c + 4 <= nc; c += 4) {
    alignas(16) int32_t ids[4];
    memcpy(ids, u.idx + c, sizeof ids);
    const __m128 x4 = _mm_set_ps(u.x[ids[3]], u.x[ids[2]], u.x[ids[1]], u.x[ids[0]]);
    __m128i k4;
    alignas(32) double wl[4];
    alignas(16) int32_t kl[4];
    _mm256_store_pd(wl, weights4(x4, vmax, vfloor, vinv, &k4));
    _mm_store_si128((__m128i*)kl, k4);
    for (int l = 0; l < 4; l++) {
      const double x = u.x[ids[l]];
      if (x >= u.xlo && (x - u.xmax) * u.invT >= kExpMinArg && bin_of(kl[l]) <= u.bmax) upto_one(u, ids[l], wl[l], kl[l]);
    }
  }
  for (; c < nc; c++) upto_scalar(u, u.idx[c]);
  return end;
}
#endif

// sampleGatherUpTo(row, vocab, xmax, xlo, invT, bmax, idx, w, bin, bins) -> count: tokens with
// x >= xlo (a finite logit, select.ts binFloor) and bin <= bmax, in id order; bins[b] += w.
Napi::Value GatherUpTo(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const double xmax = arg_num(info, 2, "xmax"), xlo = arg_num(info, 3, "xlo"), invT = arg_num(info, 4, "invT");
  const int bmax = (int)arg_int(info, 5, 0, kBins - 1, "bmax");
  View vi = arg_view(info, 6, napi_int32_array, "idx"), vw = arg_view(info, 7, napi_float64_array, "w");
  View vb = arg_view(info, 8, napi_int32_array, "bin"), vbins = arg_view(info, 9, napi_float64_array, "bins");
  need_len(info.Env(), vi, r.vocab, "idx");
  need_len(info.Env(), vw, r.vocab, "w");
  need_len(info.Env(), vb, r.vocab, "bin");
  need_len(info.Env(), vbins, kBins, "bins");
  int32_t* idx = (int32_t*)vi.data;
  double* w = (double*)vw.data;
  int32_t* bin = (int32_t*)vb.data;
  double* bins = (double*)vbins.data;
  UpTo u{r.x, xmax, xlo, invT, bmax, idx, w, bin, bins, 0};
  int i = 0;
#if defined(__x86_64__)
  if (use_avx2()) i = upto8_avx2(u, r.vocab & ~(kLanes - 1));
#endif
  for (; i < r.vocab; i++) upto_scalar(u, i);
  const int n = u.n;
  return Napi::Number::New(info.Env(), n);
}

// sampleSplitByBin(row, b, idx, w, bin, numKeep, cid, cx, counts: Int32Array[2]) (select.ts splitByBin):
// list entries of bins < b stay in idx/w (order kept), those of bin b go to cid/cx (order kept);
// counts = [kept, candidates]
Napi::Value SplitByBin(const Napi::CallbackInfo& info) {
  View vr = arg_view(info, 0, napi_float32_array, "row");
  const int b = (int)arg_int(info, 1, 0, kBins - 1, "b");
  View vi = arg_view(info, 2, napi_int32_array, "idx"), vw = arg_view(info, 3, napi_float64_array, "w");
  View vb = arg_view(info, 4, napi_int32_array, "bin");
  const int n = (int)arg_int(info, 5, 0, (int64_t)vi.length, "numKeep");
  View vc = arg_view(info, 6, napi_int32_array, "cid"), vx = arg_view(info, 7, napi_float32_array, "cx");
  View vn = arg_view(info, 8, napi_int32_array, "counts");
  need_len(info.Env(), vw, n, "w");
  need_len(info.Env(), vb, n, "bin");
  need_len(info.Env(), vc, n, "cid");
  need_len(info.Env(), vx, n, "cx");
  need_len(info.Env(), vn, 2, "counts");
  const float* row = (const float*)vr.data;
  int32_t* idx = (int32_t*)vi.data;
  double* w = (double*)vw.data;
  const int32_t* bin = (const int32_t*)vb.data;
  int32_t* cid = (int32_t*)vc.data;
  float* cx = (float*)vx.data;
  int nKeep = 0, nCand = 0;
  for (int j = 0; j < n; j++) {
    if (bin[j] < b) {
      idx[nKeep] = idx[j];
      w[nKeep++] = w[j];
    } else if (bin[j] == b) {
      if ((size_t)idx[j] >= vr.length) throw Napi::RangeError::New(info.Env(), "splitByBin: idx entry outside the row");
      cid[nCand] = idx[j];
      cx[nCand++] = row[idx[j]];
    }
  }
  ((int32_t*)vn.data)[0] = nKeep;
  ((int32_t*)vn.data)[1] = nCand;
  return info.Env().Undefined();
}

// ---- top-k (draw.ts selectTopK): the k largest by (value desc, id asc); NaN and -Infinity never ----
struct TopK {
  int32_t* idx; float* val; int k, size; float thr;  // thr: a candidate must beat it (the root once full)
};
inline bool worse(float va, int ia, float vb, int ib) { return va < vb || (va == vb && ia > ib); }
void sift_down(TopK& h, int pos) {
  const int i0 = h.idx[pos];
  const float x0 = h.val[pos];
  for (;;) {
    int c = 2 * pos + 1;
    if (c >= h.size) break;
    if (c + 1 < h.size && worse(h.val[c + 1], h.idx[c + 1], h.val[c], h.idx[c])) c++;
    if (!worse(h.val[c], h.idx[c], x0, i0)) break;
    h.idx[pos] = h.idx[c];
    h.val[pos] = h.val[c];
    pos = c;
  }
  h.idx[pos] = i0;
  h.val[pos] = x0;
}
/** token i (x > h.thr): pushed while the heap is not full, else it replaces the root (ids arrive in increasing order) */
inline void offer(TopK& h, int i, float x) {
  if (h.size < h.k) {
    int pos = h.size++;
    while (pos > 0) {
      const int parent = (pos - 1) >> 1;
      if (!worse(x, i, h.val[parent], h.idx[parent])) break;
      h.idx[pos] = h.idx[parent];
      h.val[pos] = h.val[parent];
      pos = parent;
    }
    h.idx[pos] = i;
    h.val[pos] = x;
    if (h.size == h.k) h.thr = h.val[0];
  } else {
    h.idx[0] = i;
    h.val[0] = x;
    sift_down(h, 0);
    h.thr = h.val[0];
  }
}

#if defined(__x86_64__)
TLLM_AVX2 int topk8_avx2(TopK& h, const float* x, int end) {
  for (int i = 0; i < end; i += 8) {
    int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(h.thr), _CMP_GT_OQ));
    while (mask) {
      const int l = __builtin_ctz(mask);
      mask &= mask - 1;
      if (x[i + l] > h.thr) offer(h, i + l, x[i + l]);
    }
  }
  return end;
}
#endif

// sampleTopK(row, vocab, k, outIdx, outVal) -> n <= k: ids/values sorted (value desc, id asc)
Napi::Value TopKSel(const Napi::CallbackInfo& info) {
  Row r = row_arg(info);
  const int k = (int)arg_int(info, 2, 1, 1 << 24, "k");
  View vi = arg_view(info, 3, napi_int32_array, "outIdx"), vv = arg_view(info, 4, napi_float32_array, "outVal");
  need_len(info.Env(), vi, k, "outIdx");
  need_len(info.Env(), vv, k, "outVal");
  TopK h{(int32_t*)vi.data, (float*)vv.data, k, 0, -INFINITY};
  int i = 0;
#if defined(__x86_64__)
  if (use_avx2()) i = topk8_avx2(h, r.x, r.vocab & ~(kLanes - 1));
#endif
  for (; i < r.vocab; i++)
    if (r.x[i] > h.thr) offer(h, i, r.x[i]);
  // sort (value desc, id asc): a total order on distinct ids, so the result does not depend on the method
  std::vector<std::pair<float, int>> tmp(h.size);
  for (int j = 0; j < h.size; j++) tmp[j] = {h.val[j], h.idx[j]};
  std::sort(tmp.begin(), tmp.end(), [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
    return worse(b.first, b.second, a.first, a.second);
  });
  for (int j = 0; j < h.size; j++) {
    h.val[j] = tmp[j].first;
    h.idx[j] = tmp[j].second;
  }
  return Napi::Number::New(info.Env(), h.size);
}

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
}

}  // namespace tllm
