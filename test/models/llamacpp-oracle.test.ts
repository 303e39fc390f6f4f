// llama.cpp loads the generated random-weight models (one per vocabulary family, see
// ORACLE_FIXTURES in ./oracle.ts), and what it computes is usable as an oracle: full distributions
// over the real vocabulary, far from flat, dependent on the context, consistent with its own
// probabilities and greedy choice; the copied tokenizer keys tokenize as llama.cpp's test vectors say.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { ORACLE_FIXTURES, closeLlamaCpp, ensureOracleFixture, entropy, openLlamaCpp } from "./oracle.js";

after(() => closeLlamaCpp());

/** llama.cpp's tokenizer test vectors next to a vocab GGUF: [text, ids][] (non-empty inputs only). */
function vectors(vocabPath: string, count: number): Array<[string, number[]]> {
  const inp = readFileSync(`${vocabPath}.inp`, "utf8").split("\n__ggml_vocab_test__\n");
  const out = readFileSync(`${vocabPath}.out`, "utf8").split("\n");
  const pairs: Array<[string, number[]]> = inp.map((t, i) => [t, out[i]!.trim().split(/\s+/).filter(Boolean).map(Number)]);
  return pairs.filter(([t, ids]) => t.trim().length > 0 && ids.length > 0).slice(0, count);
}

const PROMPT = "The quick brown fox jumps over the lazy dog because";

for (const name of Object.keys(ORACLE_FIXTURES) as Array<keyof typeof ORACLE_FIXTURES>) {
  test(`llama.cpp runs the random ${ORACLE_FIXTURES[name].arch} model on the ${name} vocabulary`, async () => {
    const spec = ORACLE_FIXTURES[name];
    const { gguf } = await ensureOracleFixture(name);
    const nVocab = (readGgufMetadata(spec.vocab).get("tokenizer.ggml.tokens") as unknown[]).length;
    const m = await openLlamaCpp(gguf);
    try {
      for (const [text, ids] of vectors(spec.vocab, 6)) assert.deepEqual(m.tokenize(text), ids, JSON.stringify(text));
      const prompt = m.tokenize(PROMPT, { addBos: true });
      const lp = await m.nextTokenLogprobs(prompt);
      assert.equal(lp.length, nVocab);
      assert.ok(lp.every((v) => Number.isFinite(v)), "every token has a finite logprob");
      // Not flat: the uniform distribution has entropy log(V) (10.4..11.9 nats here); the
      // generator's gains give 1..6 nats. 0.6 log(V) leaves room across seeds and types.
      const h = entropy(lp);
      assert.ok(h < 0.6 * Math.log(nVocab), `entropy ${h.toFixed(2)} vs log(V) ${Math.log(nVocab).toFixed(2)}`);
      // The context matters, not only the last token: total variation between two prompts ending alike.
      const lp2 = await m.nextTokenLogprobs([...prompt.slice(0, 2), prompt[prompt.length - 1]!]);
      let tv = 0;
      for (let i = 0; i < nVocab; i++) tv += Math.abs(Math.exp(lp[i]!) - Math.exp(lp2[i]!)) / 2;
      assert.ok(tv > 0.1, `total variation ${tv.toFixed(3)}`);
      // llama.cpp's own f32 softmax (a separate evaluation) agrees with our f64 log-softmax of its
      // logits to f32 rounding plus accumulation order: 1e-3 absolute (measured <= 1.4e-4).
      const probs = await m.nextTokenProbabilities(prompt);
      assert.equal(probs.size, nVocab);
      for (const [tok, p] of probs) assert.ok(Math.abs(p - Math.exp(lp[tok]!)) < 1e-3, `token ${tok}: ${p} vs ${Math.exp(lp[tok]!)}`);
      // One evaluation of the whole prompt gives the same last distribution as the single-shot call
      // (same batch, same kernels: 1e-5 allows for a different reduction split; measured exact or ~1e-6).
      const all = await m.promptLogprobs(prompt);
      assert.equal(all.length, prompt.length);
      const last = all[all.length - 1]!;
      for (let i = 0; i < nVocab; i += 97) assert.ok(Math.abs(last[i]! - lp[i]!) < 1e-5, `token ${i}: ${last[i]} vs ${lp[i]}`);
      assert.ok(all[0]!.some((v, i) => Math.abs(v - lp[i]!) > 1e-2), "position 0 differs from the last position");
      // Greedy decoding runs, stays in the vocabulary, and starts with the argmax of the distribution.
      const greedy = await m.greedy(prompt, 8);
      assert.equal(greedy.length, 8);
      assert.ok(greedy.every((t) => Number.isInteger(t) && t >= 0 && t < nVocab));
      let argmax = 0;
      for (let i = 1; i < nVocab; i++) if (lp[i]! > lp[argmax]!) argmax = i;
      assert.equal(greedy[0], argmax);
    } finally {
      await m.close();
    }
  });
}
