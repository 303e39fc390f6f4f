// Worker pool. A job is published as (generation, open) in one atomic word; workers spin ~kSpinUs
// on it after their last job, then sleep on a condvar. A worker *joins* a job (counted in `active`)
// only while it is open; the caller takes tasks too and, once every task is handed out, closes the
// job and waits only for the workers that joined. So a worker that is asleep, still waking up, or
// descheduled (2 vCPUs shared with other processes) never holds up an op: the caller simply runs
// the tasks itself. Between the ops of one native step the gaps are sub-microsecond, so workers
// stay hot across the whole step; while JavaScript runs between steps they go to sleep.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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

constexpr int kSpinUs = 50;

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv;
  // generation << 1 | open
  std::atomic<uint64_t> state{0};
  std::atomic<bool> stop{false};
  std::atomic<int> sleepers{0};
  // current job (written by the caller before it publishes the open state)
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int ntasks = 0;
  std::atomic<int> next{0};
  std::atomic<int> active{0};  // workers inside the current job
  std::atomic<bool> busy{false};

  void work(int thread) {
    for (;;) {
      const int t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(ctx, t, thread);
    }
  }

  // waits for an open job newer than `seen`; returns its state, or 0 on stop
  uint64_t wait_job(uint64_t seen) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0;; i++) {
      const uint64_t s = state.load(std::memory_order_acquire);
      if ((s & 1) && (s >> 1) != seen) return s;
      if (stop.load(std::memory_order_relaxed)) return 0;
      TLLM_PAUSE();
      if (i % 64 == 63 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(kSpinUs)) {
        std::unique_lock<std::mutex> lk(mu);
        sleepers.fetch_add(1);
        cv.wait(lk, [&] {
          const uint64_t x = state.load();
          return ((x & 1) && (x >> 1) != seen) || stop.load();
        });
        sleepers.fetch_sub(1);
        t0 = std::chrono::steady_clock::now();
      }
    }
  }

  void worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
      const uint64_t s = wait_job(seen);
      if (s == 0) return;
      active.fetch_add(1, std::memory_order_seq_cst);
      // joined only if the job is still the open one we saw (else the caller may not wait for us)
      if (state.load(std::memory_order_seq_cst) == s) work(thread);
      seen = s >> 1;
      active.fetch_sub(1, std::memory_order_release);
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

  void run(int n, TaskFn f, void* c) {
    if (n <= 0) return;
    // one job at a time: a second JS thread (worker_threads) calling in meanwhile runs serially
    if (n == 1 || workers.empty() || busy.exchange(true, std::memory_order_acquire)) {
      for (int t = 0; t < n; t++) f(c, t, 0);
      return;
    }
    fn = f; ctx = c; ntasks = n;
    next.store(0, std::memory_order_relaxed);
    const uint64_t g = (state.load(std::memory_order_relaxed) >> 1) + 1;
    {
      std::lock_guard<std::mutex> lk(mu);  // pairs with the sleepers' predicate check
      state.store(g << 1 | 1, std::memory_order_seq_cst);
    }
    if (sleepers.load() > 0) cv.notify_all();
    work(0);
    state.store(g << 1, std::memory_order_seq_cst);  // closed: no more joiners
    // wait for the workers that joined (they are running tasks, or about to leave)
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
