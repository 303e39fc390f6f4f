// A grammar-mask worker thread (see parallel.ts). It holds a replica of every guided sequence's
// XGrammar matcher, kept in step by the ops the owner broadcasts (add / accept / rollback / fork /
// remove), and computes next-token bitmasks into shared memory: the workers of a step take rows from
// one shared counter, so a few expensive rows (a mask costs 0.01-30 ms depending on the state) do not
// leave one worker busy and the others idle. Out buffer (shared by the workers): per requested row,
// one status word (0 ok, 1 failed, anything else: not done) then ceil(vocabSize / 32) mask words;
// counter[0]: the next row to take; ctl[0] = the seq of this worker's last finished step.
import { parentPort, workerData } from "node:worker_threads";
import type { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import type { GuidedDecodingParams } from "../params.js";
import { GuidedCompiler, type GuidedCompilerOptions } from "./compiler.js";
import type { EncodedVocab } from "./vocab.js";
import { loadXGrammar, xgrammarBinding } from "./xgrammar-loader.js";

export interface MaskWorkerData {
  vocab: EncodedVocab;
  vocabSize: number;
  options: GuidedCompilerOptions;
  ctl: SharedArrayBuffer;
}

export type MaskOp =
  | ["add", number, GuidedDecodingParams, number[] | null]
  | ["accept", number, number]
  | ["rollback", number, number]
  | ["fork", number, number]
  | ["remove", number];

export type ToMaskWorker =
  | { type: "prepare"; guide: GuidedDecodingParams }
  | { type: "step"; seq: number; ops: MaskOp[]; keys: number[]; out: SharedArrayBuffer; counter: SharedArrayBuffer };

export type FromMaskWorker = { type: "ready" } | { type: "initError"; message: string };

interface Replica { matcher: GrammarMatcher; guide: GuidedDecodingParams; stop: number[] | null; tokens: number[]; broken: boolean }

const port = parentPort!;
const data = workerData as MaskWorkerData;
const ctl = new Int32Array(data.ctl);
const words = Math.ceil(data.vocabSize / 32);
const replicas = new Map<number, Replica>();
let out: Int32Array | null = null;
let compiler: GuidedCompiler;
/** an op failed: the replicas may be out of step, so this worker takes no more rows */
let poisoned = false;

async function newReplica(guide: GuidedDecodingParams, stop: number[] | null): Promise<Replica> {
  const compiled = await compiler.compile(guide);
  const matcher = await loadXGrammar().GrammarMatcher.createGrammarMatcher(compiled, stop ?? undefined, false);
  return { matcher, guide, stop, tokens: [], broken: false };
}

async function apply(op: MaskOp): Promise<void> {
  switch (op[0]) {
    case "add": replicas.set(op[1], await newReplica(op[2], op[3])); return;
    case "accept": {
      const r = replicas.get(op[1]);
      if (!r || r.broken) return;
      if (r.matcher.acceptToken(op[2])) r.tokens.push(op[2]);
      else r.broken = true; // the owner's matcher accepted it: a replica out of step fails its rows
      return;
    }
    case "rollback": {
      const r = replicas.get(op[1]);
      if (r && !r.broken) { r.matcher.rollBack(op[2]); r.tokens.length -= op[2]; }
      return;
    }
    case "fork": {
      const src = replicas.get(op[1]);
      if (!src) return;
      const r = await newReplica(src.guide, src.stop);
      for (const t of src.tokens) if (!r.broken && r.matcher.acceptToken(t)) r.tokens.push(t); else r.broken = true;
      r.broken ||= src.broken;
      replicas.set(op[2], r);
      return;
    }
    case "remove": replicas.get(op[1])?.matcher.dispose(); replicas.delete(op[1]); return;
  }
}

/** XGrammar's raw mask of `r` into out[at + 1 ..], status at out[at] */
function maskInto(r: Replica | undefined, at: number): void {
  const o = out!;
  if (!r || r.broken) { o[at] = 1; return; }
  const handle = (r.matcher as unknown as { handle: { GetNextTokenBitmask(n: number): { delete(): void } } }).handle;
  const vec = handle.GetNextTokenBitmask(data.vocabSize);
  o.set(xgrammarBinding()!.vecIntToView(vec).subarray(0, words), at + 1);
  vec.delete();
  o[at] = 0;
}

async function step(m: Extract<ToMaskWorker, { type: "step" }>): Promise<void> {
  out = new Int32Array(m.out); // a view of the owner's buffer (each message brings its own handle)
  const counter = new Int32Array(m.counter);
  try {
    for (const op of m.ops) await apply(op);
  } catch {
    poisoned = true; // the owner computes the rows no worker takes
  }
  for (let i = !poisoned ? Atomics.add(counter, 0, 1) : m.keys.length; i < m.keys.length; i = Atomics.add(counter, 0, 1)) {
    try {
      maskInto(replicas.get(m.keys[i]!), i * (words + 1));
    } catch {
      out![i * (words + 1)] = 1;
    }
  }
  Atomics.store(ctl, 0, m.seq);
  Atomics.notify(ctl, 0);
}

let queue: Promise<void> = Promise.resolve();
port.on("message", (m: ToMaskWorker) => {
  // a prepare only warms the compile cache (an add of the same guide awaits the same compile);
  // steps run one at a time, in order
  if (m.type === "prepare") compiler.compile(m.guide).catch(() => undefined);
  else queue = queue.then(() => step(m));
});

GuidedCompiler.fromEncoded(data.vocab, data.vocabSize, data.options).then((c) => {
  compiler = c;
  port.postMessage({ type: "ready" } satisfies FromMaskWorker);
}, (e: unknown) => port.postMessage({ type: "initError", message: e instanceof Error ? e.message : String(e) } satisfies FromMaskWorker));
