// Dataset generation: length distributions over 2000 samples, seed reproducibility, vocabulary
// bounds, JSONL round trip, typed line errors, and the local-file (ShareGPT / prompt-answer) path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DatasetFormatError, datasetToJsonl, parseDatasetJsonl, prepareFromDataset, prepareTokenNormDist, prepareTokenUnifDist,
  readDatasetJsonl, writeDatasetJsonl, type DatasetItem,
} from "../../src/bench/dataset.js";
import { Prng } from "../../src/bench/prng.js";
import { ValidationError } from "../../src/errors.js";

const N = 2000;

function meanStd(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return [m, Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1))];
}

test("token-norm-dist lengths follow N(mean, stdev)", () => {
  const items = prepareTokenNormDist({ numRequests: N, inputMean: 128, inputStdev: 20, outputMean: 64, outputStdev: 8, vocabSize: 1000 });
  assert.equal(items.length, N);
  assert.deepEqual(items.slice(0, 3).map((i) => i.taskId), [0, 1, 2]);
  const [mi, si] = meanStd(items.map((i) => i.inputIds!.length));
  const [mo, so] = meanStd(items.map((i) => i.outputTokens));
  // Lengths are ceil(N(mean, sd)) as in TRT-LLM, so the expected mean is mean + 0.5.
  // Standard errors: mean sigma/sqrt(2000) (0.45 and 0.18), stdev ~sigma/sqrt(4000) (0.32 and 0.13);
  // tolerances are ~4.5 standard errors. Integer lengths add only 1/12 to the variance.
  assert.ok(Math.abs(mi - 128.5) < 2, `input mean ${mi}`);
  assert.ok(Math.abs(si - 20) < 1.5, `input stdev ${si}`);
  assert.ok(Math.abs(mo - 64.5) < 0.8, `output mean ${mo}`);
  assert.ok(Math.abs(so - 8) < 0.6, `output stdev ${so}`);
});

test("stdev 0 gives fixed lengths (NVIDIA's ISL/OSL grid setting)", () => {
  const items = prepareTokenNormDist({ numRequests: 50, inputMean: 1024, inputStdev: 0, outputMean: 128, outputStdev: 0, vocabSize: 32000 });
  assert.ok(items.every((i) => i.inputIds!.length === 1024 && i.outputTokens === 128));
});

test("token-unif-dist lengths are uniform on [min, max]", () => {
  const items = prepareTokenUnifDist({ numRequests: N, inputMin: 10, inputMax: 30, outputMin: 5, outputMax: 5, vocabSize: 100 });
  const lens = items.map((i) => i.inputIds!.length);
  assert.equal(Math.min(...lens), 10);
  assert.equal(Math.max(...lens), 30);
  assert.ok(items.every((i) => i.outputTokens === 5));
  const [m, s] = meanStd(lens);
  // U{10..30}: mean 20, variance (21^2 - 1)/12 = 36.67 -> sd 6.06; SE of the mean 0.135.
  assert.ok(Math.abs(m - 20) < 0.6, `mean ${m}`);
  assert.ok(Math.abs(s - Math.sqrt(440 / 12)) < 0.4, `sd ${s}`);
});

test("token ids are uniform over the vocabulary minus the special ids", () => {
  const items = prepareTokenUnifDist({ numRequests: 200, inputMin: 100, inputMax: 100, outputMin: 1, outputMax: 1, vocabSize: 10, specialIds: [0, 2, 9] });
  const counts = new Array<number>(10).fill(0);
  for (const it of items) for (const id of it.inputIds!) counts[id]!++;
  assert.deepEqual([counts[0], counts[2], counts[9]], [0, 0, 0]);
  // 20000 draws over 7 ids: expected 2857 each, binomial sd ~47; allow 5 sd.
  for (const id of [1, 3, 4, 5, 6, 7, 8]) assert.ok(Math.abs(counts[id]! - 20000 / 7) < 240, `id ${id}: ${counts[id]}`);
});

test("the same seed reproduces the dataset; another seed does not", () => {
  const o = { numRequests: 20, inputMean: 50, inputStdev: 10, outputMean: 20, outputStdev: 5, vocabSize: 5000 };
  assert.deepEqual(prepareTokenNormDist(o), prepareTokenNormDist({ ...o, seed: 420 }));
  assert.notDeepEqual(prepareTokenNormDist(o), prepareTokenNormDist({ ...o, seed: 421 }));
});

test("PRNG: xoshiro128** stream is deterministic and uniform", () => {
  const a = new Prng(1);
  const b = new Prng(1);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextU32()));
  assert.equal(new Set(xs).size, 5);
  const r = new Prng(99);
  const us = Array.from({ length: 20000 }, () => r.float());
  const [m] = meanStd(us);
  assert.ok(us.every((u) => u >= 0 && u < 1));
  assert.ok(Math.abs(m - 0.5) < 0.01, `mean ${m}`); // SE 0.002
  const g = Array.from({ length: 20000 }, () => r.gamma(2, 3)); // mean 6, var 18
  const [gm, gs] = meanStd(g);
  assert.ok(Math.abs(gm - 6) < 0.15 && Math.abs(gs - Math.sqrt(18)) < 0.15, `gamma ${gm} ${gs}`);
});

test("bad generator options are typed errors naming the field", () => {
  assert.throws(() => prepareTokenNormDist({ numRequests: 0, inputMean: 1, inputStdev: 0, outputMean: 1, outputStdev: 0, vocabSize: 10 }),
    (e: unknown) => e instanceof ValidationError && e.field === "numRequests");
  assert.throws(() => prepareTokenUnifDist({ numRequests: 1, inputMin: 5, inputMax: 4, outputMin: 1, outputMax: 1, vocabSize: 10 }),
    (e: unknown) => e instanceof ValidationError && e.field === "inputMax");
  assert.throws(() => prepareTokenUnifDist({ numRequests: 1, inputMin: 1, inputMax: 1, outputMin: 1, outputMax: 1, vocabSize: 2, specialIds: [0, 1] }),
    (e: unknown) => e instanceof ValidationError && e.field === "specialIds");
});

test("JSONL round trip through a file keeps every field", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-ds-"));
  try {
    const items: DatasetItem[] = [
      { taskId: 0, inputIds: [5, 6, 7], outputTokens: 3 },
      { taskId: "q-1", prompt: "Hello, \"world\"\n", outputTokens: 9, loraRequest: { lora_name: "a", lora_int_id: 1, lora_path: "/x" } },
      { taskId: 2, inputIds: [1], outputTokens: 1, mediaPaths: ["img.png"] },
    ];
    const file = join(dir, "d.jsonl");
    await writeDatasetJsonl(file, items);
    assert.deepEqual(await readDatasetJsonl(file), items);
    assert.equal(datasetToJsonl(items.slice(0, 1)), '{"task_id":0,"input_ids":[5,6,7],"output_tokens":3}\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("input_ids win over prompt when both are present", () => {
  const [it] = parseDatasetJsonl('{"task_id":1,"prompt":"x","input_ids":[4],"output_tokens":2}');
  assert.deepEqual(it, { taskId: 1, inputIds: [4], outputTokens: 2 });
});

test("bad dataset lines are DatasetFormatErrors with line number and field", () => {
  const check = (text: string, line: number, field: string): void => {
    assert.throws(() => parseDatasetJsonl(text, "d.jsonl"), (e: unknown) => {
      assert.ok(e instanceof DatasetFormatError && e instanceof ValidationError);
      assert.equal(e.line, line);
      assert.equal(e.field, field);
      assert.match(e.message, new RegExp(`^d\\.jsonl:${line}: invalid ${field.replace(/[[\]]/g, "\\$&")}`));
      return true;
    });
  };
  const ok = '{"task_id":0,"input_ids":[1],"output_tokens":1}';
  check(`${ok}\n${ok}\n{"task_id":2,"input_ids":[1]}`, 3, "output_tokens");
  check(`${ok}\n\n{"task_id":2,"input_ids":[1,2,-3],"output_tokens":4}`, 3, "input_ids[2]");
  check(`{"task_id":1.5,"input_ids":[1],"output_tokens":1}`, 1, "task_id");
  check(`${ok}\n{"task_id":1,"output_tokens":1}`, 2, "input_ids");
  check(`${ok}\n{"task_id":1,"prompt":"","output_tokens":1}`, 2, "prompt");
  check(`${ok}\n{not json`, 2, "json");
  check(`[1,2]`, 1, "line");
  check(`{"task_id":1,"input_ids":[1],"output_tokens":0}`, 1, "output_tokens");
});

/** Fake tokenizer: one token per whitespace-separated word, id = word length. */
const tokenize = async (s: string): Promise<number[]> => s.split(/\s+/).filter(Boolean).map((w) => w.length);

test("prepareFromDataset reads ShareGPT JSON and prompt/answer JSONL", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-ds-"));
  try {
    const share = join(dir, "sharegpt.json");
    writeFileSync(share, JSON.stringify([
      { id: "a", conversations: [{ from: "human", value: "one two three four five" }, { from: "gpt", value: "a b c" }] },
      { id: "b", conversations: [{ from: "human", value: "lonely" }] }, // one turn: skipped
      { id: "c", conversations: [{ from: "human", value: "x y" }, { from: "gpt", value: "w ".repeat(50) }] },
    ]));
    const a = await prepareFromDataset(share, tokenize, { maxInputLength: 4, maxOutputLength: 20 });
    assert.deepEqual(a, [
      { taskId: 0, inputIds: [3, 3, 5, 4], outputTokens: 3 }, // prompt truncated to 4 tokens
      { taskId: 1, inputIds: [1, 1], outputTokens: 20 }, // 50-token answer clipped to 20
    ]);
    const jl = join(dir, "qa.jsonl");
    writeFileSync(jl, ['{"question":"why is sky","answer":"because"}', '{"prompt":"hi there"}', '{"other":1}', '{"prompt":"p q","output":"r s t u"}'].join("\n"));
    const b = await prepareFromDataset(jl, tokenize, { maxOutputLength: 7, numSamples: 2 });
    assert.deepEqual(b, [
      { taskId: 0, inputIds: [3, 2, 3], outputTokens: 1 },
      { taskId: 1, inputIds: [2, 5], outputTokens: 7 }, // no answer: maxOutputLength
    ]);
    const c = await prepareFromDataset(jl, tokenize, { outputLenDist: { mean: 30, std: 0 } });
    assert.deepEqual(c.map((x) => x.outputTokens), [30, 30, 30]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
