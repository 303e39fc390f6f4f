// cpuid via the compiler builtin; physical cores from sysfs topology restricted to our affinity mask.
#include "cpu.h"

#include <sched.h>

#include <cstdio>
#include <set>
#include <thread>
#include <utility>

#include "kernels.h"

namespace tllm {

bool cpu_has_avx2_fma_f16c() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

static int read_int(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int v = -1;
  if (fscanf(f, "%d", &v) != 1) v = -1;
  fclose(f);
  return v;
}

int physical_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int logical = (int)std::thread::hardware_concurrency();
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return logical > 0 ? logical : 1;
  std::set<std::pair<int, int>> cores;  // (package, core)
  int cpus = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &set)) continue;
    cpus++;
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
    snprintf(p2, sizeof p2, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
    int pkg = read_int(p1), core = read_int(p2);
    if (core < 0) return cpus > 0 ? cpus : 1;  // no topology info: count logical CPUs
    cores.insert({pkg, core});
  }
  int n = (int)cores.size();
  return n > 0 ? n : 1;
}

TypeInfo type_info(int type) {
  switch (type) {
    case T_F32: return {1, 4};
    case T_F16: return {1, 2};
    case T_BF16: return {1, 2};
    case T_Q4_0: return {32, 18};
    case T_Q4_1: return {32, 20};
    case T_Q5_0: return {32, 22};
    case T_Q5_1: return {32, 24};
    case T_Q8_0: return {32, 34};
    case T_Q4_K: return {256, 144};
    case T_Q5_K: return {256, 176};
    case T_Q6_K: return {256, 210};
    default: return {0, 0};
  }
}

}  // namespace tllm
