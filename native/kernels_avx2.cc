// The avx2 copy of the kernels: the shared sources in kern/ compiled with -mavx2 -mfma -mf16c (see binding.gyp),
// wrapped in their own namespace with internal linkage so the two copies never mix.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "kernels.h"
#include "pool.h"

#define TLLM_PATH_NAME "avx2"

namespace tllm {
namespace avx2_impl {
namespace {
#include "kern/common.inc"
#include "kern/dequant.inc"
#include "kern/vecdot.inc"
#include "kern/vecdot_multi.inc"
#include "kern/matmul.inc"
#include "kern/mm_q0.inc"
#include "kern/mm_q4_0.inc"
#include "kern/mm_kq.inc"
#include "kern/mm_q4_k.inc"
#include "kern/mm_float.inc"
#include "kern/mm_exact.inc"
#include "kern/ops.inc"
#include "kern/attention.inc"
#include "kern/table.inc"
}  // namespace
}  // namespace avx2_impl

const KernelTable* avx2_kernels() { return &avx2_impl::kTable; }

}  // namespace tllm
