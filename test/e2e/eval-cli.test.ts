// `tllm eval` end to end on a tiny random-weight Llama (reference backend: exact f32/f64 math, the
// same for any batch shape). The perplexity is checked against NLLs computed here independently:
// the model is stepped one token at a time (decode path, not the CLI's chunked whole-sequence
// scoring) and log-softmax is taken in f64 in this file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { SimpleKvCache } from "../../src/engine/simple-kv-cache.js";
import { loadModel } from "../../src/models/loader.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 256, seed: 4242, weightTypes: GgmlType.Q8_0,
};
const TEXT = "The quick brown fox jumps over the lazy dog. Perplexity measures how well a model predicts a sample; " +
  "lower is better. A sliding window scores every token once, with up to context minus stride tokens of extra context.";
const CTX = 24, STRIDE = 10;
let model = "";
let dir = "";
let textFile = "";

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
    cwd: ROOT, encoding: "utf8", timeout: 60_000, env: { ...process.env, TLLM_LOG_LEVEL: "warn" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  model = (await ensureFixture(SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
  dir = mkdtempSync(join(tmpdir(), "tllm-eval-cli-"));
  textFile = join(dir, "text.txt");
  writeFileSync(textFile, TEXT);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** ln p(window[i+1] | window[..i]) for i in [0, len-1), one decode step per token, f64 log-softmax. */
function stepwiseLogprobs(m: ReturnType<typeof loadModel>, window: number[]): number[] {
  const c = m.config, tpb = 8;
  const kv = new SimpleKvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, numBlocks: Math.ceil(window.length / tpb) + 1, tokensPerBlock: tpb, dtype: "f32" });
  kv.allocSeq(0, window.length);
  const out: number[] = [];
  for (let p = 0; p < window.length - 1; p++) {
    const logits = m.model.forward({
      tokens: Int32Array.of(window[p]!), positions: Int32Array.of(p), slots: kv.slotsFor(0, p, 1), logitRows: Int32Array.of(0),
      seqs: [{ qStart: 0, qLen: 1, kvLen: p + 1, blockTable: kv.blockTable(0) }],
    }, kv.layers);
    let max = -Infinity;
    for (const x of logits) max = Math.max(max, x);
    let sum = 0;
    for (const x of logits) sum += Math.exp(x - max);
    out.push(logits[window[p + 1]!]! - max - Math.log(sum));
  }
  return out;
}

/** The HF sliding-window recipe written out here: window starts every STRIDE tokens, targets after the previous end. */
async function independentMeanNll(): Promise<{ meanNll: number; n: number }> {
  const tok = Tokenizer.fromGgufMetadata(readGgufMetadata(model), model);
  const ids = await tok.encode(TEXT, { addSpecialTokens: false });
  const m = loadModel(model, new ReferenceBackend());
  try {
    let prevEnd = 0, sum = 0, n = 0;
    for (let begin = 0; begin < ids.length; begin += STRIDE) {
      const end = Math.min(begin + CTX, ids.length);
      const lp = stepwiseLogprobs(m, ids.slice(begin, end));
      for (let j = Math.max(begin + 1, prevEnd); j < end; j++, n++) sum -= lp[j - begin - 1]!;
      prevEnd = end;
      if (end === ids.length) break;
    }
    return { meanNll: sum / n, n };
  } finally {
    m.checkpoint.close();
  }
}

describe("tllm eval", () => {
  test("perplexity is finite and equals exp(mean NLL) of independently computed logprobs", async () => {
    const json = join(dir, "ppl.json");
    const r = cli(["eval", "--model", model, "--backend", "reference", "perplexity", "--file", textFile,
      "--context-length", String(CTX), "--stride", String(STRIDE), "--output-json", json]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^perplexity: PPL = [0-9.e+]+, 95% CI \[/m);
    const got = JSON.parse(readFileSync(json, "utf8")) as { ppl: number; meanNll: number; numTokensScored: number };
    const want = await independentMeanNll();
    assert.ok(Number.isFinite(got.ppl) && got.ppl > 1, `ppl ${got.ppl}`);
    assert.equal(got.numTokensScored, want.n);
    // Same f32 model math on both paths (the reference backend is batch-invariant); the sums are
    // f64. 1e-6 relative leaves room for summation order only.
    assert.ok(Math.abs(got.meanNll - want.meanNll) <= 1e-6 * Math.abs(want.meanNll), `${got.meanNll} vs ${want.meanNll}`);
    assert.ok(Math.abs(got.ppl - Math.exp(want.meanNll)) <= 1e-5 * got.ppl, `${got.ppl} vs exp(${want.meanNll})`);
  });

  test("KL divergence of the model against itself is 0 (within 1e-6), top-1 agreement 100%", () => {
    const base = join(dir, "base.kld"), json = join(dir, "kld.json");
    const common = ["eval", "--model", model, "--backend", "reference", "perplexity", "--file", textFile,
      "--context-length", String(CTX), "--stride", String(STRIDE), "--kl-divergence-base", base];
    const r1 = cli(common);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /saved KL-divergence base/);
    const r2 = cli([...common, "--kl-divergence", "--output-json", json]);
    assert.equal(r2.code, 0, r2.stderr);
    const k = (JSON.parse(readFileSync(json, "utf8")) as { kld: { meanKld: number; maxKld: number; top1Agreement: number; positions: number } }).kld;
    assert.ok(k.positions > 0);
    // the base file stores top-K log-probabilities in f32: differences are at f32 rounding (~1e-7)
    assert.ok(Math.abs(k.meanKld) <= 1e-6, `mean KLD ${k.meanKld}`);
    assert.ok(Math.abs(k.maxKld) <= 1e-6, `max KLD ${k.maxKld}`);
    assert.equal(k.top1Agreement, 1);
  });

  test("mmlu on the fixture prints an accuracy over all 5 questions with a 95% CI", () => {
    // test/fixtures/eval/mmlu/test: abstract_algebra (3 questions) + astronomy (2); dev: 3 shots
    const r = cli(["eval", "--model", model, "--backend", "reference", "mmlu", "--dataset-path", join(ROOT, "test/fixtures/eval/mmlu"), "--num-fewshot", "2"]);
    assert.equal(r.code, 0, r.stderr);
    const m = /^mmlu accuracy: ([0-9.]+)% \((\d+)\/(\d+)\), 95% CI \[([0-9.]+)%, ([0-9.]+)%\]$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    const [acc, k, n, lo, hi] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])];
    assert.equal(n, 5);
    assert.ok(Math.abs(acc - (100 * k) / n) < 0.006);
    assert.ok(lo <= acc && acc <= hi && hi > lo, r.stdout);
    assert.match(r.stdout, /^ {2}abstract_algebra: [0-9.]+% \(\d+\/3\)/m);
    assert.match(r.stdout, /^ {2}astronomy: [0-9.]+% \(\d+\/2\)/m);
  });

  test("gsm8k prints both metrics with a 95% CI; --check-accuracy sets the exit code", () => {
    const args = ["eval", "--model", model, "--backend", "reference", "gsm8k", "--dataset-path", join(ROOT, "test/fixtures/eval/gsm8k"),
      "--num-fewshot", "1", "--max-output-tokens", "8"];
    const r = cli([...args, "--check-accuracy", "--accuracy-threshold", "0"]);
    assert.equal(r.code, 0, r.stderr); // any score >= 0%
    assert.match(r.stdout, /^gsm8k exact_match,strict-match: [0-9.]+% \(\d+\/4\), 95% CI \[[0-9.]+%, [0-9.]+%\]$/m);
    assert.match(r.stdout, /^gsm8k exact_match,flexible-extract: [0-9.]+% \(\d+\/4\), 95% CI \[/m);
    assert.match(r.stdout, /accuracy check: .* PASSED/);
    const fail = cli([...args, "--num-samples", "1", "--check-accuracy", "--accuracy-threshold", "101"]);
    assert.equal(fail.code, 1, fail.stderr); // no score exceeds 100%
    assert.match(fail.stdout, /\(\d+\/1\)/);
    assert.match(fail.stdout, /accuracy check: .* FAILED/);
  });

  test("usage errors exit 2 (each spawn costs seconds of startup: two cases)", () => {
    assert.equal(cli(["eval", "--model", model, "nonsense"]).code, 2);
    assert.equal(cli(["eval", "--model", model, "mmlu", "--check-accuracy"]).code, 2); // no threshold
  });
});
