// The CLI (`node --import tsx src/cli/main.ts`, what bin/tllm.js runs from dist/) and the LLM API
// behind it, on a small random-weight Llama over the real Llama-2 SPM vocabulary.
// Expected numbers come from the fixture's spec, not from the code under test.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { LLM } from "../../src/api/llm.js";
import { TllmError, UnknownOptionError, ValidationError } from "../../src/errors.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 256, seed: 4242, weightTypes: GgmlType.Q8_0,
};
const VOCAB = 32000; // tokens in ggml-vocab-llama-spm.gguf
let model = "";
let hfDir = "";
let llm: LLM;

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
    cwd: ROOT, encoding: "utf8", timeout: 120_000, env: { ...process.env, TLLM_LOG_LEVEL: "info", ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  const fx = await ensureFixture(SPEC, join(tmpdir(), "tllm-test-fixtures"), { hf: true });
  model = fx.gguf;
  hfDir = fx.hfDir!;
  // The reference backend is exact and batch-invariant (f32/f64, same math for any batch shape), so
  // the runner's bookkeeping can be checked with exact token equality. The native kernels quantize
  // activations and pick kernels by batch size: their greedy tokens may differ between batch shapes.
  llm = await LLM.create({ model, backend: "reference" });
});
after(async () => {
  await llm?.shutdown();
});

describe("tllm CLI", () => {
  test("inspect prints the spec's dimensions, tensor type counts and parameter count", () => {
    const r = cli(["inspect", model]);
    assert.equal(r.code, 0, r.stderr);
    const { hidden: h, layers: L, heads, kvHeads, headDim, ffn } = SPEC;
    assert.match(r.stdout, new RegExp(`^layers: ${L}$`, "m"));
    assert.match(r.stdout, new RegExp(`^hidden size: ${h}$`, "m"));
    assert.match(r.stdout, new RegExp(`^heads: ${heads} \\(kv heads: ${kvHeads}, head dim: ${headDim}\\)$`, "m"));
    assert.match(r.stdout, new RegExp(`^intermediate size: ${ffn}$`, "m"));
    assert.match(r.stdout, new RegExp(`^vocab size: ${VOCAB}$`, "m"));
    assert.match(r.stdout, /^architecture: llama$/m);
    // 7 matrices per layer + embedding + output in Q8_0; 2 norms per layer + the final norm in F32
    assert.match(r.stdout, new RegExp(`^tensors: ${9 * L + 3} \\(Q8_0=${7 * L + 2} F32=${2 * L + 1}\\)$`, "m"));
    const perLayer = h * heads * headDim * 2 + h * kvHeads * headDim * 2 + 3 * h * ffn + 2 * h;
    assert.match(r.stdout, new RegExp(`^parameters: ${2 * VOCAB * h + L * perLayer + h} `, "m"));
    assert.match(r.stdout, /^tokenizer: gguf llama/m);
    assert.match(r.stdout, /^chat template: no$/m);
  });

  test("inspect reads an HF directory (config.json + safetensors, all F32 in the twin)", () => {
    const r = cli(["inspect", hfDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^format: safetensors/m);
    assert.match(r.stdout, new RegExp(`^layers: ${SPEC.layers}$`, "m"));
    assert.match(r.stdout, new RegExp(`^tensors: ${9 * SPEC.layers + 3} \\(F32=${9 * SPEC.layers + 3}\\)$`, "m"));
    assert.match(r.stdout, /^tokenizer: tokenizer\.json /m);
  });

  test("inspect --json is machine-readable", () => {
    const r = cli(["inspect", "--json", model]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { config: { numLayers: number; numKvHeads: number }; tensorTypes: Record<string, number> };
    assert.equal(j.config.numLayers, SPEC.layers);
    assert.equal(j.config.numKvHeads, SPEC.kvHeads);
    assert.deepEqual(j.tensorTypes, { Q8_0: 7 * SPEC.layers + 2, F32: 2 * SPEC.layers + 1 });
  });

  test("generate streams text, exits 0, and its tokens equal LLM.generate greedy in-process", async () => {
    const prompt = "Once upon a time";
    const r = cli(["generate", "--model", model, "--prompt", prompt, "--max-tokens", "12", "--print-token-ids", "--backend", "reference"]);
    assert.equal(r.code, 0, r.stderr);
    const ids = JSON.parse(/^tokens: (\[.*\])$/m.exec(r.stderr)![1]!) as number[];
    const ref = await llm.generate(prompt, { maxTokens: 12 });
    assert.deepEqual(ids, ref.outputs[0]!.tokenIds);
    assert.equal(r.stdout, ref.outputs[0]!.text + "\n");
    assert.match(r.stderr, /finish: length/);
  });

  test("--chat renders the model's chat template; --prompt - reads stdin; no template is a usage error", async () => {
    const dir = join(tmpdir(), `tllm-chat-${process.pid}`);
    cpSync(hfDir, dir, { recursive: true });
    try {
      const cfgFile = join(dir, "tokenizer_config.json");
      const cfg = JSON.parse(readFileSync(cfgFile, "utf8")) as Record<string, unknown>;
      cfg["chat_template"] = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}" +
        "{% if add_generation_prompt %}[assistant] {% endif %}";
      writeFileSync(cfgFile, JSON.stringify(cfg));
      const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "generate", "--model", dir,
        "--backend", "reference", "--chat", "--prompt", "-", "--max-tokens", "5", "--print-token-ids"],
      { cwd: ROOT, encoding: "utf8", input: "Hi there\n", timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      const promptIds = JSON.parse(/^prompt tokens: (\[.*\])$/m.exec(r.stderr)![1]!) as number[];
      const expected = await llm.generate(`${llm.tokenizer.bosToken}[user] Hi there\n[assistant] `, { maxTokens: 5, addSpecialTokens: false });
      assert.deepEqual(promptIds, expected.promptTokenIds);
      assert.equal(promptIds.filter((t) => t === llm.tokenizer.bosTokenId).length, 1, "BOS once, from the template");
      assert.deepEqual(JSON.parse(/^tokens: (\[.*\])$/m.exec(r.stderr)![1]!), expected.outputs[0]!.tokenIds);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const none = cli(["generate", "--model", model, "--prompt", "x", "--chat"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /chat template/);
  });

  test("demo warns that its output is noise, and works with no download", () => {
    const r = cli(["generate", "--model", "demo", "--prompt", "Hi", "--max-tokens", "3"], { TLLM_CACHE: join(tmpdir(), "tllm-test-demo") });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /noise by design/);
    assert.match(r.stderr, /3 generated tokens/);
  });

  test("bad flags exit 2 with a message naming the flag", () => {
    const cases: Array<[string[], RegExp]> = [
      [["generate", "--model", model, "--prompt", "x", "--bogus"], /unknown option '--bogus'/],
      [["generate", "--model", model, "--prompt", "x", "--max-tokens", "many"], /--max-tokens/],
      [["generate", "--model", model, "--prompt", "x", "--top-p", "3"], /topP/],
      [["generate", "--model", model, "--prompt", "x", "--backend", "gpu"], /backend/],
      [["generate", "--prompt", "x"], /missing --model/],
      [["generate", "--model", model, "--prompt"], /'--prompt' needs a value/],
      [["inspect"], /missing MODEL/],
      [["inspect", model, "--frob"], /unknown option '--frob'/],
      [["frobnicate"], /unknown command 'frobnicate'/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(" "));
      assert.equal(r.stdout, "", "nothing on stdout for a usage error");
    }
  });

  test("a missing model exits 1 naming it; --help and --version exit 0", () => {
    const r = cli(["generate", "--model", "./no/such/model.gguf", "--prompt", "x"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no\/such\/model\.gguf/);
    const h = cli(["--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /generate/);
    assert.match(h.stdout, /inspect/);
    for (const c of ["serve", "chat", "bench", "eval"]) assert.match(h.stdout, new RegExp(`^  ${c}\\b`, "m"), `help lists ${c}`);
    assert.doesNotMatch(h.stdout, /^  build\b/m, "commands that do not exist are not advertised");
    const v = cli(["--version"]);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^tllm \d+\.\d+\.\d+/);
  });
});

describe("LLM.generate", () => {
  test("a batch gives each prompt the same greedy tokens as alone; token-id prompts equal text prompts", async () => {
    const prompts = ["The quick brown fox", "Hello", "In 1492, Columbus sailed across the ocean"];
    const batch = await llm.generate(prompts, { maxTokens: 10 });
    assert.equal(batch.length, 3);
    for (let i = 0; i < prompts.length; i++) {
      const alone = await llm.generate(prompts[i]!, { maxTokens: 10 });
      assert.deepEqual(batch[i]!.outputs[0]!.tokenIds, alone.outputs[0]!.tokenIds, prompts[i]);
      assert.equal(batch[i]!.prompt, prompts[i]);
      const byIds = await llm.generate(alone.promptTokenIds, { maxTokens: 10 });
      assert.equal(byIds.prompt, null);
      assert.deepEqual(byIds.outputs[0]!.tokenIds, alone.outputs[0]!.tokenIds);
    }
    assert.notEqual(batch[0]!.requestId, batch[1]!.requestId);
  });

  test("an HF directory and its GGUF twin give the same prompt ids and greedy tokens", async () => {
    // The twin's safetensors hold exactly the GGUF's dequantized values (F32); only the RoPE row
    // convention differs (neox vs permuted rows), so the reference backend's logits agree to f32
    // rounding and greedy tokens of this fixed fixture coincide.
    const hf = await LLM.create({ model: hfDir, backend: "reference" });
    try {
      const prompts = ["Once upon a time", "Hello world"];
      const a = await llm.generate(prompts, { maxTokens: 16, ignoreEos: true });
      const b = await hf.generate(prompts, { maxTokens: 16, ignoreEos: true });
      for (let i = 0; i < prompts.length; i++) {
        assert.deepEqual(b[i]!.promptTokenIds, a[i]!.promptTokenIds);
        assert.deepEqual(b[i]!.outputs[0]!.tokenIds, a[i]!.outputs[0]!.tokenIds);
        assert.equal(b[i]!.outputs[0]!.text, a[i]!.outputs[0]!.text);
      }
      assert.equal(hf.source.format, "hf");
    } finally {
      await hf.shutdown();
    }
  });

  test("maxTokens ends with 'length'; stop token ids and stop strings end with 'stop' and the reason", async () => {
    const base = (await llm.generate("Once upon a time", { maxTokens: 16, ignoreEos: true })).outputs[0]!;
    assert.equal(base.tokenIds.length, 16);
    assert.equal(base.finishReason, "length");
    assert.equal(base.stopReason, null);
    const stopId = base.tokenIds[5]!;
    const byId = (await llm.generate("Once upon a time", { maxTokens: 16, ignoreEos: true, stopTokenIds: [stopId] })).outputs[0]!;
    assert.deepEqual(byId.tokenIds, base.tokenIds.slice(0, base.tokenIds.indexOf(stopId) + 1));
    assert.equal(byId.finishReason, "stop");
    assert.equal(byId.stopReason, stopId);
    const chars = [...base.text];
    const stop = chars.slice(6, 9).join("");
    const byStr = (await llm.generate("Once upon a time", { maxTokens: 16, ignoreEos: true, stop })).outputs[0]!;
    assert.equal(byStr.finishReason, "stop");
    assert.equal(byStr.stopReason, stop);
    assert.equal(byStr.text, base.text.slice(0, base.text.indexOf(stop)));
  });

  test("streaming deltas add up to the final text; an abort ends with 'cancelled'", async () => {
    let streamed = "";
    let events = 0;
    const out = await llm.generate("A", { maxTokens: 12, ignoreEos: true }, { onStream: (ev) => { streamed += ev.textDelta; events++; } });
    assert.equal(streamed, out.outputs[0]!.text);
    assert.equal(events, 12, "one event per generated token");
    const ac = new AbortController();
    let seen = 0;
    const cut = await llm.generate("A", { maxTokens: 50, ignoreEos: true }, { signal: ac.signal, onStream: () => { if (++seen === 3) ac.abort(); } });
    assert.equal(cut.outputs[0]!.finishReason, "cancelled");
    assert.ok(cut.outputs[0]!.tokenIds.length < 50);
    assert.deepEqual(cut.outputs[0]!.tokenIds, out.outputs[0]!.tokenIds.slice(0, cut.outputs[0]!.tokenIds.length));
  });

  test("generateAsync streams events as an async iterable and resolves the same output as generate", async () => {
    const s = llm.generateAsync("Stream me", { maxTokens: 7, ignoreEos: true });
    let text = "";
    const tokens: number[] = [];
    for await (const ev of s) {
      text += ev.textDelta;
      tokens.push(ev.token);
    }
    const out = await s.result;
    assert.equal(text, out.outputs[0]!.text);
    assert.deepEqual(tokens, out.outputs[0]!.tokenIds);
    assert.deepEqual(out.outputs[0]!.tokenIds, (await llm.generate("Stream me", { maxTokens: 7, ignoreEos: true })).outputs[0]!.tokenIds);
    const cut = llm.generateAsync("Stream me", { maxTokens: 40, ignoreEos: true });
    let n = 0;
    for await (const _ev of cut) if (++n === 2) cut.abort();
    assert.equal((await cut.result).outputs[0]!.finishReason, "cancelled");
    await assert.rejects(async () => { for await (const _ev of llm.generateAsync("x", { topP: 7 })) { /* none */ } }, ValidationError);
  });

  test("seeded sampling is reproducible; n outputs are indexed; logprobs are reported", async () => {
    const p = { maxTokens: 8, temperature: 1, topK: 0, seed: 11, ignoreEos: true };
    const a = await llm.generate("Tell me", p);
    const b = await llm.generate("Tell me", p);
    assert.deepEqual(a.outputs[0]!.tokenIds, b.outputs[0]!.tokenIds);
    const two = await llm.generate("Tell me", { ...p, n: 2, logprobs: 2 });
    assert.deepEqual(two.outputs.map((o) => o.index), [0, 1]);
    const o = two.outputs[0]!;
    assert.equal(o.logprobs!.length, o.tokenIds.length);
    let sum = 0;
    o.tokenIds.forEach((t, i) => {
      const lp = o.logprobs![i]!.get(t)!;
      assert.ok(lp.logprob <= 0 && lp.rank >= 1);
      sum += lp.logprob;
    });
    assert.ok(Math.abs(sum - o.cumulativeLogprob!) < 1e-9, "cumulative logprob is the sum of the per-token logprobs");
  });

  test("bestOf > n keeps the outputs with the highest cumulative logprob", async () => {
    const p = { maxTokens: 6, temperature: 1.5, seed: 5, ignoreEos: true };
    const all = await llm.generate("Pick", { ...p, n: 3, logprobs: 0 });
    assert.deepEqual(all.outputs.map((o) => o.index), [0, 1, 2]);
    const best = [...all.outputs].sort((a, b) => b.cumulativeLogprob! - a.cumulativeLogprob!)[0]!;
    const one = await llm.generate("Pick", { ...p, n: 1, bestOf: 3 });
    assert.equal(one.outputs.length, 1);
    assert.equal(one.outputs[0]!.index, 0);
    assert.deepEqual(one.outputs[0]!.tokenIds, best.tokenIds);
    assert.equal(one.outputs[0]!.cumulativeLogprob, best.cumulativeLogprob);
    assert.equal((await llm.generate("Pick", { maxTokens: 2 })).outputs[0]!.cumulativeLogprob, null, "not computed unless asked");
  });

  test("a small KV budget or maxBatchSize splits a batch into waves with unchanged greedy tokens", async () => {
    const prompts = ["One two", "Three four five", "Six", "Seven eight nine ten"];
    const ref = await llm.generate(prompts, { maxTokens: 20, ignoreEos: true });
    for (const args of [{ kvCacheConfig: { maxTokens: 64 } }, { maxBatchSize: 1 }]) {
      const small = await LLM.create({ model, backend: "reference", ...args });
      try {
        const outs = await small.generate(prompts, { maxTokens: 20, ignoreEos: true });
        outs.forEach((o, i) => assert.deepEqual(o.outputs[0]!.tokenIds, ref[i]!.outputs[0]!.tokenIds, JSON.stringify(args)));
        if ("kvCacheConfig" in args) {
          await assert.rejects(small.generate("One two", { maxTokens: 100 }), (e: unknown) => e instanceof ValidationError && e.field === "maxTokens");
        }
      } finally {
        await small.shutdown();
      }
      await assert.rejects(small.generate("One"), (e: unknown) => e instanceof TllmError && /shutdown/.test(e.message));
    }
  });

  test("bad input gets typed errors naming the field", async () => {
    assert.throws(() => new LLM({ model, maxBatchSizes: 3 } as never), UnknownOptionError);
    await assert.rejects(llm.generate("x", { maxTokenz: 3 } as never), UnknownOptionError);
    await assert.rejects(llm.generate([[5, VOCAB]]), (e: unknown) => e instanceof ValidationError && e.field === "prompts[0]");
    await assert.rejects(llm.generate("x".repeat(10), { maxTokens: 0 }), ValidationError);
    const long = Array.from({ length: SPEC.maxPositions }, () => 100);
    await assert.rejects(llm.generate(long), (e: unknown) => e instanceof ValidationError && /maxInputLen/.test(e.message));
    await assert.rejects(llm.generate([]), (e: unknown) => e instanceof ValidationError && e.field === "prompts");
  });
});
