// Shared between the addon's binding files: the chosen kernel table and argument helpers.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace tllm {

/** The kernels in use (scalar or avx2), chosen at load; setForceScalar can switch it. */
extern const KernelTable* g_kernels;

/** A typed array argument: data pointer (its byteOffset applied), length in elements, element bytes. */
struct View { void* data; size_t length; size_t elemBytes; napi_typedarray_type type; };

/** Reads info[i] as a typed array of the given type (any type when `type` is -1); throws TypeError naming `what`. */
View arg_view(const Napi::CallbackInfo& info, size_t i, int type, const char* what);
/** Reads info[i] as an integer in [lo, hi]; throws RangeError naming `what`. */
int64_t arg_int(const Napi::CallbackInfo& info, size_t i, int64_t lo, int64_t hi, const char* what);
double arg_num(const Napi::CallbackInfo& info, size_t i, const char* what);
/** Throws RangeError unless the view holds at least `need` elements. */
void need_len(const Napi::Env& env, const View& v, size_t need, const char* what);

void register_ops(Napi::Env env, Napi::Object exports);
/** createLlamaGraph / graphForward (graph.cc) */
void register_graph(Napi::Env env, Napi::Object exports);

}  // namespace tllm
