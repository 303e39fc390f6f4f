// The executor worker (worker_threads entry): loads the model, tokenizer and KV cache, then runs
// the step loop, one step per event-loop turn (setImmediate) so that submits and aborts are read
// between steps. Everything it posts is a FromWorker message (./messages.ts).
import { runInNewContext } from "node:vm";
import { setFlagsFromString, getHeapStatistics } from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import { LogitsCallbackBridge } from "./callbacks.js";
import type { Engine } from "./setup.js";
import { createEngine, prepareSubmission } from "./setup.js";
import { toWire, type FromWorker, type ToWorker, type WorkerData, type SubmitMsg } from "./messages.js";
import type { IterationStats, ExecutorSnapshot } from "./stats.js";

const port = parentPort!;
const { config } = workerData as WorkerData;
const MAX_KEPT_ITERATIONS = 1000;

let engine: Engine | null = null;
let dead = false;
let stepQueued = false;
let crashNext = false;
/** aborts that arrived while their submit was still being prepared (tokenizing) */
const abortedEarly = new Set<number>();
const preparing = new Set<number>();
const iterations: IterationStats[] = [];
/** runs logitsProcessor callbacks on the caller's thread (the step blocks until they answer) */
const callbacks = new LogitsCallbackBridge((m) => post(m));

function post(m: FromWorker): void {
  port.postMessage(m);
}

function log(line: string): void {
  const on = config.log ?? ["info", "debug"].includes((process.env["TLLM_LOG_LEVEL"] ?? "info").toLowerCase());
  if (on) process.stderr.write(line + "\n");
}

const ready: Promise<Engine | null> = createEngine(config, log).then(
  (e) => {
    engine = e;
    post({ type: "ready", info: e.info });
    return e;
  },
  (err: unknown) => {
    post({ type: "initError", error: toWire(err) });
    dead = true;
    return null;
  },
);

port.on("message", (m: ToWorker) => {
  void ready.then((e) => {
    if (!e || dead) return;
    try {
      handle(e, m);
    } catch (err) {
      // a message about one request fails that request; anything else leaves the loop in doubt
      if (m.type === "abort") post({ type: "requestError", requestId: m.requestId, error: toWire(err) });
      else {
        dead = true;
        post({ type: "fatal", error: toWire(err) });
      }
    }
  });
});

function handle(e: Engine, m: ToWorker): void {
  switch (m.type) {
    case "submit": return void submit(e, m);
    case "abort": return abort(e, m.requestId);
    case "stats": return post({ type: "statsReply", callId: m.callId, iterations: iterations.splice(0), snapshot: snapshot(e) });
    case "crash":
      if (config.enableTestHooks) crashNext = true;
      return kick();
    case "shutdown": return shutdown(e);
  }
}

async function submit(e: Engine, m: SubmitMsg): Promise<void> {
  preparing.add(m.requestId);
  try {
    const sub = await prepareSubmission(m, e.tokenizer, e.info.vocabSize, config.generationDefaults, e.guided, callbacks);
    if (dead) return;
    e.core.submit(sub);
    post({ type: "accepted", requestId: m.requestId, promptTokenIds: sub.promptTokenIds });
    if (abortedEarly.delete(m.requestId)) abort(e, m.requestId);
    kick();
  } catch (err) {
    abortedEarly.delete(m.requestId);
    post({ type: "requestError", requestId: m.requestId, error: toWire(err) });
  } finally {
    preparing.delete(m.requestId);
  }
}

function abort(e: Engine, requestId: number): void {
  if (preparing.has(requestId)) {
    abortedEarly.add(requestId);
    return;
  }
  const f = e.core.abort(requestId);
  if (f) post({ type: "finals", finals: [f] });
}

function kick(): void {
  if (stepQueued || dead) return;
  stepQueued = true;
  setImmediate(loop);
}

function loop(): void {
  stepQueued = false;
  const e = engine;
  if (!e || dead || !e.core.hasWork) return;
  let out;
  try {
    if (crashNext) throw new Error("test hook: injected fatal error in the step loop");
    out = e.core.step();
  } catch (err) {
    dead = true;
    post({ type: "fatal", error: toWire(err) });
    return;
  }
  iterations.push(out.stats);
  if (iterations.length > MAX_KEPT_ITERATIONS) iterations.splice(0, iterations.length - MAX_KEPT_ITERATIONS);
  for (const { requestId, error } of out.errors) post({ type: "requestError", requestId, error: toWire(error) });
  if (out.deltas.length > 0 || out.finals.length > 0 || out.stats.inflightBatchingStats.numScheduledRequests > 0) {
    post({ type: "step", deltas: out.deltas, finals: out.finals, stats: out.stats });
  }
  kick();
}

let gcFn: (() => void) | null = null;
function gc(): void {
  if (!gcFn) {
    setFlagsFromString("--expose-gc");
    gcFn = runInNewContext("gc") as () => void;
  }
  gcFn();
}

function snapshot(e: Engine): ExecutorSnapshot {
  gc();
  return {
    numActiveRequests: e.core.numRunning, numQueuedRequests: e.core.numWaiting, numInflightRequests: e.core.numInflight,
    kvCacheStats: e.core.kvStats(), heapUsedBytes: getHeapStatistics().used_heap_size, rssBytes: process.memoryUsage.rss(),
    iterations: e.core.iterations,
  };
}

function shutdown(e: Engine): void {
  dead = true;
  const finals = e.core.abortAll();
  if (finals.length > 0) post({ type: "finals", finals });
  e.close();
  post({ type: "closed" });
  port.close();
}
