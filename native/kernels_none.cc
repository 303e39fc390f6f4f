// Non-x64 builds: no AVX2 copy of the kernels.
#include "kernels.h"

namespace tllm {
const KernelTable* avx2_kernels() { return nullptr; }
}  // namespace tllm
