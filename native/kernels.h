// The kernel table: one per instruction-set path (scalar, avx2). The addon picks one at load.
// Tensors are row-major f32 unless stated; weights are raw GGML bytes (any alignment).
#pragma once
#include <cstddef>
#include <cstdint>

namespace tllm {

// GGML type ids (as in GGUF / src/backends/dtypes.ts).
enum GgmlType : int {
  T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
  T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30,
};

/** Elements per block and bytes per block; blockSize 0 = unsupported type. */
struct TypeInfo { int blockSize; int typeSize; };
TypeInfo type_info(int type);
/** Bytes of one row of n elements (n must be a multiple of the block size). */
inline size_t row_bytes(int type, int n) {
  TypeInfo t = type_info(type);
  return (size_t)(n / t.blockSize) * (size_t)t.typeSize;
}

/** Paged KV pool [numBlocks, 2, nkv, tpb, hd] in f32 or f16 (IEEE half bits); i8: each block is
 *  [2, nkv, tpb, hd] int8 followed by [2, nkv, tpb] f32 scales (one per token and head, see kv_quant_row). */
struct KvDesc { void* data; int f16; int numBlocks; int tpb; int nkv; int hd; int i8 = 0; };
/** elements of the pool's typed array (f32 / u16 / i8) */
inline size_t kv_pool_elements(const KvDesc& kv) {
  return (size_t)kv.numBlocks * 2 * kv.nkv * kv.tpb * ((size_t)kv.hd + (kv.i8 ? 4 : 0));
}
/** One sequence of a packed attention batch; table holds block ids for positions [0, kvLen). */
struct SeqDesc { int qStart; int qLen; int kvLen; const int32_t* table; };

/** ggml's f32 rope cache parameters (ggml_rope_cache_init): see RopeParams.ggml in backend.ts. */
struct RopeGgml { float thetaScale; float freqScale; const float* freqFactors; /* nullptr: none */ };

struct KernelTable {
  const char* name;
  /** out[m, rows] = x[m, cols] · wᵀ, w = rows × row_bytes(type, cols) */
  void (*matmul)(float* out, const float* x, int m, const uint8_t* w, int type, int rows, int cols);
  /** outs[i][m, rows[i]] = x · ws[i]ᵀ for i < n (n <= 4; same type and cols): the bits of n matmul
   *  calls, the activations prepared once and (decode) one pool job for all rows */
  void (*matmul_multi)(float* const* outs, const float* x, int m, const uint8_t* const* ws, int type, const int* rows, int n, int cols);
  /** out[i, :] = dequantized row ids[i] of table (cols wide) */
  void (*embedding)(float* out, const uint8_t* table, int type, int cols, const int32_t* ids, int n);
  void (*rmsnorm)(float* out, const float* x, const float* w, int m, int n, float eps);
  /** neox = 1: pairs (i, i + ropeDim/2); 0: pairs (2i, 2i+1) */
  void (*rope)(float* x, int m, int nheads, const int32_t* pos, int neox, int hd, int ropeDim,
               const float* invFreq, float mscale, const RopeGgml* g /* nullptr: f64 angles pos * invFreq */);
  void (*silu_mul)(float* out, const float* gu, int m, int n);
  void (*add)(float* out, const float* a, const float* b, size_t n);
  void (*add_bias)(float* out, const float* bias, int m, int n);
  void (*softmax)(float* out, const float* x, int m, int n);
  void (*argmax)(int32_t* out, const float* x, int m, int n);
  /** k, v: [T, nkv * hd] into slots[T] */
  void (*write_kv)(const KvDesc& kv, const float* k, const float* v, const int32_t* slots, int T);
  /** q, out: [T, nh * hd]; window <= 0: no sliding window */
  void (*attention)(float* out, const float* q, const KvDesc& kv, const SeqDesc* seqs, int nseq,
                    int nh, float scale, int window);
};

const KernelTable* scalar_kernels();
/** nullptr when the AVX2 copy was not built (non-x64). */
const KernelTable* avx2_kernels();

}  // namespace tllm
