// Worker pool: a job generation counter; workers spin ~kSpinUs on it, then wait on a condvar.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TLLM_PAUSE() _mm_pause()
#else
#define TLLM_PAUSE() do {} while (0)
#endif

namespace tllm {
namespace {

// Between two ops of one decode step the gap is a few microseconds of JS; spinning this long
// keeps workers hot across it, and a longer JS pause puts them to sleep.
constexpr int kSpinUs = 50;

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<unsigned> generation{0};
  std::atomic<bool> stop{false};
  std::atomic<int> sleepers{0};
  // current job
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int ntasks = 0;
  std::atomic<int> next{0};
  std::atomic<int> active{0};  // workers still inside the current job

  void work(int thread) {
    for (;;) {
      int t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(ctx, t, thread);
    }
  }

  void worker_main(int thread) {
    unsigned seen = 0;
    for (;;) {
      unsigned g = generation.load(std::memory_order_acquire);
      if (g == seen) {
        auto t0 = std::chrono::steady_clock::now();
        int i = 0;
        while ((g = generation.load(std::memory_order_acquire)) == seen && !stop.load()) {
          TLLM_PAUSE();
          if (++i % 64 == 0 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(kSpinUs)) {
            std::unique_lock<std::mutex> lk(mu);
            sleepers.fetch_add(1);
            cv.wait(lk, [&] { return generation.load() != seen || stop.load(); });
            sleepers.fetch_sub(1);
            g = generation.load(std::memory_order_acquire);
            break;
          }
        }
      }
      if (stop.load()) return;
      seen = g;
      work(thread);
      active.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void start(int n) {
    stop = false;
    for (int i = 1; i < n; i++) workers.emplace_back([this, i] { worker_main(i); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }

  std::atomic<bool> busy{false};

  void run(int n, TaskFn f, void* c) {
    if (n <= 0) return;
    // one job at a time: a second JS thread (worker_threads) calling in meanwhile runs serially
    if (n == 1 || workers.empty() || busy.exchange(true, std::memory_order_acquire)) {
      for (int t = 0; t < n; t++) f(c, t, 0);
      return;
    }
    fn = f; ctx = c; ntasks = n;
    next.store(0, std::memory_order_relaxed);
    active.store((int)workers.size(), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    if (sleepers.load() > 0) cv.notify_all();
    work(0);
    // wait for the workers; on an oversubscribed machine a worker may be descheduled: yield then
    for (int i = 0; active.load(std::memory_order_acquire) != 0; i++) {
      if (i < 4096) TLLM_PAUSE();
      else std::this_thread::yield();
    }
    busy.store(false, std::memory_order_release);
  }
};

Pool* g_pool = nullptr;
int g_threads = 1;

Pool& pool() {
  if (!g_pool) { g_pool = new Pool(); g_pool->start(g_threads); }
  return *g_pool;
}

}  // namespace

void pool_run(int ntasks, TaskFn fn, void* ctx) { pool().run(ntasks, fn, ctx); }
int pool_threads() { return g_threads; }
void pool_set_threads(int n) {
  if (n < 1) n = 1;
  if (g_pool) { g_pool->shutdown(); delete g_pool; g_pool = nullptr; }
  g_threads = n;
}

}  // namespace tllm
