// Runs our own model the way the oracle tests need: one packed prefill, then greedy decode,
// over a simple contiguous KV cache. Kept tiny on purpose: it is the forward pass under test,
// not the engine.
import type { Backend } from "../../src/backends/backend.js";
import { loadModel } from "../../src/models/loader.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";

export interface OurRun {
  /** next-token logits after the prompt [vocab] */
  promptLogits: Float32Array;
  /** greedy continuation (argmax, lowest id on ties) */
  greedy: number[];
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

export function runOurs(path: string, backend: Backend, prompt: readonly number[], n: number, kvDtype: "f32" | "f16" = "f32"): OurRun {
  const { config, model, checkpoint } = loadModel(path, backend);
  try {
    const tpb = 32;
    const total = prompt.length + n;
    const kv = new SimpleKvCache({
      numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim,
      numBlocks: Math.ceil(total / tpb) + 1, tokensPerBlock: tpb, dtype: kvDtype,
    });
    kv.allocSeq(0, total);
    const blockTable = kv.blockTable(0);
    const step = (tokens: number[], start: number): Float32Array => {
      const T = tokens.length;
      return model.forward({
        tokens: Int32Array.from(tokens),
        positions: Int32Array.from({ length: T }, (_, i) => start + i),
        seqs: [{ qStart: 0, qLen: T, kvLen: start + T, blockTable }],
        slots: kv.slotsFor(0, start, T),
        logitRows: Int32Array.of(T - 1),
      }, kv.layers);
    };
    const promptLogits = step([...prompt], 0).slice();
    const greedy: number[] = [];
    let logits: Float32Array = promptLogits;
    for (let i = 0; i < n; i++) {
      const t = argmax(logits);
      greedy.push(t);
      if (i + 1 < n) logits = step([t], prompt.length + i);
    }
    return { promptLogits, greedy };
  } finally {
    checkpoint.close();
  }
}

/** log-softmax in f64 */
export function logSoftmax64(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let s = 0;
  for (const v of logits) s += Math.exp(v - max);
  const lse = max + Math.log(s);
  return Float64Array.from(logits, (v) => v - lse);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= max)) { max = d; at = i; }
  }
  return { max, at };
}
