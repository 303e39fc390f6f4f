// ParallelGuidedDecoder (masks computed on worker threads from replicated matchers) against the
// in-thread GuidedDecoder on the Llama-2 SPM vocabulary: the same guides, the same accepted tokens,
// and add / accept / rollback / fork / remove / termination in between; every step's masks must be
// identical, bit for bit, for every row (guided on either worker, unguided, finished). Then a worker
// is killed: its rows fall back to the in-thread states and the masks stay identical.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { GuidedDecoder, isAllowed } from "../../src/sampling/guided/index.js";
import { createGuidedDecoder, ParallelGuidedDecoder } from "../../src/sampling/guided/parallel.js";
import type { GuidedDecodingParams } from "../../src/sampling/params.js";
import { rng } from "./test-rng.js";

const ROOT = resolve(import.meta.dirname, "../..");
const VOCAB_FILE = join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf");
const GUIDES: GuidedDecodingParams[] = [
  { json: { type: "object", properties: { name: { type: "string", maxLength: 8 }, n: { type: "integer" } }, required: ["name", "n"] } },
  { regex: "[a-z]{1,6}(-[0-9]{1,3}){0,2}" },
  { jsonObject: true },
];
let tok: Tokenizer;
let serial: GuidedDecoder;
let par: ParallelGuidedDecoder;
let compared = 0;

before(async () => {
  tok = Tokenizer.fromGgufMetadata(readGgufMetadata(VOCAB_FILE), VOCAB_FILE);
  serial = await GuidedDecoder.create(tok, tok.vocabSize);
  par = await ParallelGuidedDecoder.createParallel(tok, tok.vocabSize, 2);
  for (const g of GUIDES) { await serial.prepare(g); await par.prepare(g); }
});
after(() => { serial?.dispose(); par?.dispose(); });

/** a random token the mask allows (the mask must allow one) */
function pick(m: Int32Array, r: () => number): number {
  const ids: number[] = [];
  for (let t = 0; t < tok.vocabSize; t++) if (isAllowed(m, t)) ids.push(t);
  assert.ok(ids.length > 0, "the mask allows no token");
  return ids[Math.floor(r() * ids.length)]!;
}

function stepBoth(keys: number[], r: () => number, tag: string): void {
  const a = serial.masksSync(keys), b = par.masksSync(keys);
  keys.forEach((k, i) => {
    assert.equal(b[i] === undefined, a[i] === undefined, `${tag} key ${k}: mask presence`);
    if (!a[i]) return;
    compared++;
    assert.ok(a[i]!.every((w, j) => w === b[i]![j]), `${tag} key ${k}: masks differ`);
    const t = pick(a[i]!, r);
    assert.equal(par.accept(k, t), serial.accept(k, t));
  });
}

test("masks from the worker threads equal the in-thread masks, step after step", async () => {
  const r = rng(5);
  const keys = [0, 1, 2, 3, 4, 5, 6];
  keys.forEach((k) => {
    const g = k === 3 ? undefined : GUIDES[k % GUIDES.length]; // key 3: unguided
    serial.addSync(k, g);
    par.addSync(k, g);
  });
  assert.equal(par.numWorkers, 2);
  for (let s = 0; s < 12; s++) stepBoth(keys, r, `step ${s}`);
  serial.rollback(1, 2); par.rollback(1, 2);
  await serial.fork(0, 10); await par.fork(0, 10);
  serial.remove(2); par.remove(2);
  serial.addSync(11, GUIDES[1]); par.addSync(11, GUIDES[1]);
  const later = [0, 1, 3, 4, 5, 6, 10, 11];
  for (let s = 0; s < 30; s++) stepBoth(later, r, `after ops, step ${s}`);
  assert.ok(compared >= 100, `only ${compared} masks compared`);
});

test("a killed worker's rows are computed in-thread, with the same masks", async () => {
  const r = rng(6);
  const keys = [20, 21, 22, 23];
  keys.forEach((k, i) => { serial.addSync(k, GUIDES[i % 3]); par.addSync(k, GUIDES[i % 3]); });
  stepBoth(keys, r, "before");
  const w = (par as unknown as { workers: { w: import("node:worker_threads").Worker }[] }).workers[0]!.w;
  await w.terminate();
  await new Promise((ok) => setImmediate(ok));
  assert.equal(par.numWorkers, 1);
  for (let s = 0; s < 5; s++) stepBoth(keys, r, `after kill ${s}`);
});

test("createGuidedDecoder: workers >= 2 -> on worker threads (says so), else in-thread", async () => {
  const lines: string[] = [];
  const d2 = await createGuidedDecoder(tok, tok.vocabSize, 2, (l) => lines.push(l));
  const d1 = await createGuidedDecoder(tok, tok.vocabSize, 1, (l) => lines.push(l));
  try {
    assert.ok(d2 instanceof ParallelGuidedDecoder && d2.numWorkers === 2);
    assert.ok(!(d1 instanceof ParallelGuidedDecoder));
    assert.deepEqual(lines, ["tllm executor: grammar masks on 2 worker threads"]);
  } finally {
    d2.dispose();
    d1.dispose();
  }
});
