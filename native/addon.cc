// Module entry: kernel dispatch (cpuid, TLLM_FORCE_SCALAR), thread pool control, mmap, argument helpers.
#include "addon.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cpu.h"
#include "pool.h"

namespace tllm {

const KernelTable* g_kernels = nullptr;
static bool g_avx2_ok = false;

static void choose_kernels(bool forceScalar) {
  const KernelTable* a = avx2_kernels();
  g_kernels = (!forceScalar && g_avx2_ok && a) ? a : scalar_kernels();
}

View arg_view(const Napi::CallbackInfo& info, size_t i, int type, const char* what) {
  napi_env env = info.Env();
  napi_value v = info[i];
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is)
    throw Napi::TypeError::New(env, std::string(what) + ": expected a typed array");
  View r{};
  if (napi_get_typedarray_info(env, v, &r.type, &r.length, &r.data, nullptr, nullptr) != napi_ok)
    throw Napi::TypeError::New(env, std::string(what) + ": cannot read typed array");
  if (type >= 0 && r.type != (napi_typedarray_type)type)
    throw Napi::TypeError::New(env, std::string(what) + ": wrong typed array type");
  switch (r.type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: r.elemBytes = 1; break;
    case napi_int16_array: case napi_uint16_array: r.elemBytes = 2; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: r.elemBytes = 8; break;
    default: r.elemBytes = 4; break;
  }
  if (r.length == 0) r.data = nullptr;
  return r;
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t i, int64_t lo, int64_t hi, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": expected a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d)
    throw Napi::RangeError::New(info.Env(), std::string(what) + "=" + std::to_string(d) + ": out of range [" +
                                               std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return (int64_t)d;
}

double arg_num(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

void need_len(const Napi::Env& env, const View& v, size_t need, const char* what) {
  if (v.length < need)
    throw Napi::RangeError::New(env, std::string(what) + ": has " + std::to_string(v.length) + " elements, needs " +
                                         std::to_string(need));
}

// ---- mmap: an external ArrayBuffer over a read-only private mapping ----

struct Mapping { void* addr; size_t len; bool mapped; };
// live mappings by address, so munmap() and the GC finalizer never unmap twice; the addon may be
// loaded by several JS threads (worker_threads), hence the lock
static std::unordered_map<void*, Mapping*> g_maps;
static std::mutex g_maps_mu;

static void finalize_mapping(Napi::Env, void*, Mapping* m) {
  std::lock_guard<std::mutex> lk(g_maps_mu);
  if (m->mapped) munmap(m->addr, m->len);
  auto it = g_maps.find(m->addr);
  if (it != g_maps.end() && it->second == m) g_maps.erase(it);
  delete m;
}

static Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "mmap: path must be a string");
  const std::string path = info[0].As<Napi::String>();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "mmap: cannot open " + path + ": " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    throw Napi::Error::New(env, "mmap: " + path + " is empty or cannot be stat'ed");
  }
  const size_t len = (size_t)st.st_size;
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) throw Napi::Error::New(env, "mmap: " + path + ": " + strerror(err));
  // weights are read front to back every decode step: ask the kernel to start reading ahead now
  madvise(p, len, MADV_WILLNEED);
  Mapping* m = new Mapping{p, len, true};
  {
    std::lock_guard<std::mutex> lk(g_maps_mu);
    g_maps[p] = m;
  }
  return Napi::ArrayBuffer::New(env, p, len, finalize_mapping, m);
}

// munmap(buffer): detaches the ArrayBuffer (its views become empty) and unmaps the file.
static Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "munmap: expected the ArrayBuffer from mmap");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return env.Undefined();
  void* addr = nullptr;
  size_t len = 0;
  {
    std::lock_guard<std::mutex> lk(g_maps_mu);
    auto it = g_maps.find(ab.Data());
    if (it == g_maps.end() || !it->second->mapped) throw Napi::TypeError::New(env, "munmap: not a buffer from mmap");
    addr = it->second->addr;
    len = it->second->len;
    // unmap now (address space released at close(), not at GC); the finalizer only frees the record
    it->second->mapped = false;
  }
  ab.Detach();
  munmap(addr, len);
  return env.Undefined();
}

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", g_kernels->name);
  o.Set("threads", pool_threads());
  o.Set("physicalCores", physical_cores());
  o.Set("avx2Supported", g_avx2_ok && avx2_kernels() != nullptr);
  return o;
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  pool_set_threads((int)arg_int(info, 0, 1, 1024, "threads"));
  return info.Env().Undefined();
}

static Napi::Value SetForceScalar(const Napi::CallbackInfo& info) {
  choose_kernels(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  g_avx2_ok = cpu_has_avx2_fma_f16c();
  const char* fs = getenv("TLLM_FORCE_SCALAR");
  choose_kernels(fs && fs[0] && strcmp(fs, "0") != 0);
  pool_set_threads(physical_cores());
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setForceScalar", Napi::Function::New(env, SetForceScalar, "setForceScalar"));
  register_ops(env, exports);
  register_graph(env, exports);
  { void register_sampling(Napi::Env, Napi::Object); register_sampling(env, exports); }  // sampling.cc
  return exports;
}

}  // namespace tllm

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tllm::Init(env, exports); }
NODE_API_MODULE(tllm, InitModule)
