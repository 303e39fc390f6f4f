// CPU feature detection and core counting.
#pragma once

namespace tllm {

/** cpuid says AVX2, FMA and F16C are present (false on non-x86). */
bool cpu_has_avx2_fma_f16c();
/** Physical cores available to this process (SMT siblings counted once), >= 1. */
int physical_cores();

}  // namespace tllm
