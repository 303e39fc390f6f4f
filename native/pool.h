// Persistent worker pool. The calling thread takes part; workers spin briefly after a job, then
// sleep on a condition variable so they never burn a core while JavaScript runs.
// Non-template interface on purpose: it is called from kernel files compiled with different
// -m flags, and template instantiations could otherwise be merged across them.
#pragma once

namespace tllm {

/** fn(ctx, task, thread) for task in [0, ntasks); tasks are handed out dynamically. */
typedef void (*TaskFn)(void* ctx, int task, int thread);

/** Runs all tasks (on the caller alone when ntasks == 1 or the pool has 1 thread); returns when done. */
void pool_run(int ntasks, TaskFn fn, void* ctx);
/** Threads taking part in pool_run (caller included), >= 1. */
int pool_threads();
/** Resizes the pool (joins the old workers). Not to be called from inside a task. */
void pool_set_threads(int n);

}  // namespace tllm
