// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out, copied into
// test/fixtures/vocab) must all pass: our ids == llama.cpp's ids.
// Mirrors tests/test-tokenizer-0.cpp: inputs are separated by "\n__ggml_vocab_test__\n", each .out
// line is the space-separated ids (stripped) of one input, tokenized with add_special=false and
// parse_special=false (common_tokenize(ctx, text, false, false)).
// A second check compares special-token parsing (parse_special=true) with llama.cpp itself,
// through node-llama-cpp (devDependency) loading the same vocab-only GGUF.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const DIR = join(import.meta.dirname, "..", "fixtures", "vocab");
const VOCABS = ["llama-spm", "gpt-2", "qwen2", "llama-bpe", "phi-3"] as const;

function readVectors(file: string): Array<{ text: string; ids: number[] }> {
  const raw = readFileSync(file + ".inp", "utf8");
  const sep = "\n__ggml_vocab_test__\n";
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) { inputs.push(raw.slice(pos)); break; }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const lines = readFileSync(file + ".out", "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop(); // getline() yields no line after the final "\n"
  assert.equal(inputs.length, lines.length, `${file}: .inp and .out disagree on the number of tests`);
  return inputs.map((text, i) => {
    const o = lines[i]!.trim();
    return { text, ids: o === "" ? [] : o.split(" ").map((s) => Number.parseInt(s, 10)) };
  });
}

const loaded = new Map<string, { tok: Tokenizer; file: string }>();

/** Each vocabulary is converted once per file (the 128k-token ones take a second or two). */
function load(v: string): { tok: Tokenizer; file: string } {
  let l = loaded.get(v);
  if (!l) {
    const file = join(DIR, `ggml-vocab-${v}.gguf`);
    l = { tok: Tokenizer.fromGgufMetadata(readGgufMetadata(file), file), file };
    loaded.set(v, l);
  }
  return l;
}

for (const v of VOCABS) {
  test(`llama.cpp vectors: ${v}`, async () => {
    const { tok, file } = load(v);
    const vectors = readVectors(file);
    assert.ok(vectors.length >= 40, `expected the full vector set, got ${vectors.length}`);
    let failed = 0;
    for (const { text, ids } of vectors) {
      const got = await tok.encode(text, { addSpecialTokens: false, parseSpecial: false });
      if (JSON.stringify(got) !== JSON.stringify(ids)) {
        failed++;
        console.error(`${v}: ${JSON.stringify(text)}\n  got ${got.join(" ")}\n  exp ${ids.join(" ")}`);
      }
    }
    assert.equal(failed, 0, `${failed}/${vectors.length} vectors differ for ${v}`);
  });
}

// BOS rules from llama.cpp's loader: SPM adds BOS; BPE only for llama3-type pre-tokenizers, unless
// tokenizer.ggml.add_bos_token says otherwise. Expected ids are the vocabularies' BOS tokens.
test("BOS is added per llama.cpp's add_bos rule", async () => {
  const expected: Record<string, number | undefined> = {
    "llama-spm": 1, "gpt-2": undefined, qwen2: undefined, "llama-bpe": 128000, "phi-3": 1,
  };
  for (const v of VOCABS) {
    const { tok } = load(v);
    const plain = await tok.encode("Hello world", { addSpecialTokens: false });
    const withSpecial = await tok.encode("Hello world");
    const bos = expected[v];
    assert.deepEqual(withSpecial, bos === undefined ? plain : [bos, ...plain], v);
  }
});

const SPECIAL_TEXTS: Record<string, string[]> = {
  "llama-spm": ["<s>[INST] Hi there [/INST] ok</s><s>[INST] again", "a<s>b </s> c"],
  "gpt-2": ["Hello<|endoftext|>World", "<|endoftext|> x <|endoftext|>"],
  qwen2: ["<|im_start|>user\nHi 你好<|im_end|>\n<|im_start|>assistant\n", "x<|endoftext|>  y"],
  "llama-bpe": ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>", "a <|eot_id|> b"],
  "phi-3": ["<|user|>\nHello 🦙<|end|>\n<|assistant|>\n", "<s> a </s> b <|endoftext|> c"],
};

// Beyond the shipped vectors: mixed scripts, odd whitespace, digits, code.
const EXTRA_TEXTS = [
  "  leading\tand trailing  \n", "x\r\ny\r\n\r\nz", "Ⅻ ½ ² ³ ١٢٣ 12345678901234567890", "naïve café résumé Ωμέγα",
  "def f(x):\n    return x**2  # comment\n", "مرحبا بالعالم", "日本語テキスト、ひらがな。", "a\u00a0b\u2003c\u3000d",
  "I'VE'S 'LL don't WON'T", "🦙🦙🦙 👩🏽‍💻 🇫🇷", "<not special> <|fake|> [INST]",
];

test("special-token parsing and extra texts match llama.cpp (node-llama-cpp)", async (t) => {
  let llama: { loadModel(o: object): Promise<{ tokenize(s: string, special: boolean): readonly number[]; dispose(): Promise<void> }> };
  try {
    const nlc = await import("node-llama-cpp");
    llama = (await nlc.getLlama({ gpu: false, logLevel: nlc.LlamaLogLevel.disabled })) as unknown as typeof llama;
  } catch (e) {
    // The oracle is a prebuilt native binary; where it cannot load, this check cannot run.
    t.skip(`node-llama-cpp unavailable: ${(e as Error).message}`);
    return;
  }
  for (const v of VOCABS) {
    const { tok, file } = load(v);
    const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
    for (const text of SPECIAL_TEXTS[v]!) {
      const ours = await tok.encode(text, { addSpecialTokens: false });
      assert.deepEqual(ours, Array.from(model.tokenize(text, true)), `${v}: ${JSON.stringify(text)}`);
    }
    for (const text of [...SPECIAL_TEXTS[v]!, ...EXTRA_TEXTS]) {
      const ours = await tok.encode(text, { addSpecialTokens: false, parseSpecial: false });
      assert.deepEqual(ours, Array.from(model.tokenize(text, false)), `${v} (no special parsing): ${JSON.stringify(text)}`);
    }
    await model.dispose();
  }
});
