// Tokenizer: decode round-trips, the incremental detokenizer, HF-dir loading of a converted GGUF
// vocabulary, byte tables and typed errors, over the five llama.cpp vocabularies in test/fixtures/vocab.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import type { MetadataValue } from "../../src/checkpoint/types.js";
import { CheckpointError, ValidationError } from "../../src/errors.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { IncrementalDetokenizer } from "../../src/tokenizer/detokenizer.js";
import { ggufVocabToTokenizerConfig, ggufVocabToTokenizerJson } from "../../src/tokenizer/gguf-vocab.js";

const DIR = join(import.meta.dirname, "..", "fixtures", "vocab");
const VOCABS = ["llama-spm", "gpt-2", "qwen2", "llama-bpe", "phi-3"] as const;
const cache = new Map<string, { tok: Tokenizer; md: Map<string, MetadataValue> }>();

function load(v: string): { tok: Tokenizer; md: Map<string, MetadataValue> } {
  let l = cache.get(v);
  if (!l) {
    const file = join(DIR, `ggml-vocab-${v}.gguf`);
    const md = readGgufMetadata(file);
    l = { tok: Tokenizer.fromGgufMetadata(md, file), md };
    cache.set(v, l);
  }
  return l;
}

const PLAIN = [
  "Hello world", " Hello world", "  two leading spaces", "tabs\tand\nnewlines\n\n", "",
  "Numbers 1234567 and 3.14159", "Ünïcödé façade — “quotes” ½", "нещо на Български", "我想在apple工作1314151天～",
  "emoji 🦙🚀 😶‍🌫️ ✅ end", "code: if (x != y) { return a[i] ** 2; }", "trailing space ",
];

for (const v of VOCABS) {
  test(`decode(encode(x)) == x: ${v}`, async () => {
    const { tok } = load(v);
    for (const text of PLAIN) {
      const ids = await tok.encode(text, { addSpecialTokens: false });
      assert.equal(tok.decode(ids), text, `${v} without BOS: ${JSON.stringify(text)}`);
      const withBos = await tok.encode(text);
      assert.equal(tok.decode(withBos, { skipSpecialTokens: true }), text, `${v} with BOS skipped: ${JSON.stringify(text)}`);
    }
  });
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CJK_EMOJI = "日本語のテキスト、中文字符，한국어 텍스트 🦙🚀👨‍👩‍👧‍👦 ok 🤖";

for (const v of VOCABS) {
  test(`incremental detokenizer emits whole characters and matches decode: ${v}`, async () => {
    const { tok } = load(v);
    const ids = await tok.encode(CJK_EMOJI);
    const detok = new IncrementalDetokenizer(tok, { skipSpecialTokens: true });
    const deltas = ids.map((id) => detok.push(id));
    deltas.push(detok.flush());
    for (const d of deltas) {
      assert.ok(!d.includes("\uFFFD"), `${v}: replacement char in delta ${JSON.stringify(d)}`);
      assert.ok(!LONE_SURROGATE.test(d), `${v}: lone surrogate in delta ${JSON.stringify(d)}`);
    }
    assert.equal(deltas.join(""), tok.decode(ids, { skipSpecialTokens: true }));
    assert.equal(deltas.join(""), CJK_EMOJI);
    assert.equal(detok.text, CJK_EMOJI);
    // Several ids at once, specials kept: same text as decode with specials.
    const batched = new IncrementalDetokenizer(tok);
    const chunks = [ids.slice(0, 3), ids.slice(3, 10), ids.slice(10)].map((c) => batched.push(c));
    assert.equal(chunks.join("") + batched.flush(), tok.decode(ids));
  });
}

test("detokenizer holds back partial UTF-8 (byte-level and byte-fallback vocabs)", async () => {
  for (const v of ["qwen2", "llama-spm"]) {
    const { tok } = load(v);
    // Egyptian hieroglyphs (4 UTF-8 bytes each) are not in either vocabulary: one token per byte.
    const text = "\u{13000}\u{13050}";
    const ids = await tok.encode(text, { addSpecialTokens: false });
    assert.ok(ids.length > 2, `${v}: expected the hieroglyphs to span several tokens, got ${ids.length}`);
    const detok = new IncrementalDetokenizer(tok);
    const deltas = ids.map((id) => detok.push(id));
    assert.ok(deltas.filter((d) => d === "").length >= ids.length - 2, `${v}: partial characters were emitted`);
    assert.deepEqual(deltas.filter((d) => d !== ""), ["\u{13000}", "\u{13050}"], v);
    // A stream cut inside the character flushes as U+FFFD, as decode does.
    const cut = new IncrementalDetokenizer(tok);
    const cutText = cut.push(ids.slice(0, -1)) + cut.flush();
    assert.equal(cutText, tok.decode(ids.slice(0, -1)));
    assert.ok(cutText.endsWith("\uFFFD"), v);
  }
});

test("SPM: dummy-prefix space is dropped only at the start of the text", async () => {
  const { tok } = load("llama-spm");
  const hello = tok.pieceToId("\u2581Hello")!;
  assert.equal(tok.decode([hello, hello]), "Hello Hello");
  const detok = new IncrementalDetokenizer(tok);
  assert.equal(detok.push(hello) + detok.push(hello), "Hello Hello");
  // With BOS rendered, the text starts with "<s>" and keeps the space (as HF's decoder).
  assert.equal(tok.decode([1, hello]), "<s> Hello");
  assert.equal(tok.decode([1, hello], { skipSpecialTokens: true }), "Hello");
});

test("tokenBytes: byte tokens, byte-level pieces, special tokens", () => {
  const spm = load("llama-spm").tok;
  const e4 = spm.pieceToId("<0xE4>")!;
  assert.deepEqual(Array.from(spm.tokenBytes(e4)), [0xe4]);
  assert.equal(spm.idToPiece(e4), "<0xE4>");
  const gpt2 = load("gpt-2").tok;
  const id = gpt2.pieceToId("\u0120hello")!; // "Ġhello"
  assert.equal(new TextDecoder().decode(gpt2.tokenBytes(id)), " hello");
  assert.equal(new TextDecoder().decode(gpt2.tokenBytes(50256)), "<|endoftext|>");
  assert.ok(gpt2.specialTokenIds.has(50256));
  assert.equal(gpt2.idToPiece(gpt2.pieceToId("hello")!), "hello");
  assert.equal(gpt2.vocabSize, 50257);
});

test("bad ids and bad vocabularies give typed errors", () => {
  const tok = load("gpt-2").tok;
  assert.throws(() => tok.decode([50257]), (e: unknown) => e instanceof ValidationError && e.field === "token_id");
  assert.throws(() => tok.tokenBytes(-1), ValidationError);
  assert.throws(() => new IncrementalDetokenizer(tok).push(1e9), ValidationError);
  const md = new Map(load("gpt-2").md);
  md.set("tokenizer.ggml.model", "bert");
  assert.throws(() => Tokenizer.fromGgufMetadata(md, "x.gguf"),
    (e: unknown) => e instanceof CheckpointError && e.field === "tokenizer.ggml.model" && e.file === "x.gguf");
  md.set("tokenizer.ggml.model", "gpt2");
  md.set("tokenizer.ggml.pre", "no-such-pre");
  assert.throws(() => Tokenizer.fromGgufMetadata(md, "x.gguf"), (e: unknown) => e instanceof CheckpointError && e.field === "tokenizer.ggml.pre");
  md.delete("tokenizer.ggml.tokens");
  assert.throws(() => Tokenizer.fromGgufMetadata(md, "x.gguf"), (e: unknown) => e instanceof CheckpointError && e.field === "tokenizer.ggml.tokens");
});

for (const v of ["phi-3", "qwen2"] as const) {
  test(`converted tokenizer.json loads back through fromHfDir with the same ids: ${v}`, async () => {
    const { tok, md } = load(v);
    const dir = mkdtempSync(join(tmpdir(), "tllm-tok-"));
    try {
      writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(ggufVocabToTokenizerJson(md)));
      writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(ggufVocabToTokenizerConfig(md)));
      writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [tok.eosTokenIds[0], 7] }));
      const hf = Tokenizer.fromHfDir(dir);
      assert.equal(hf.kind, "hf");
      assert.equal(hf.vocabSize, tok.vocabSize);
      assert.equal(hf.bosTokenId, tok.bosTokenId);
      assert.equal(hf.addBos, tok.addBos);
      assert.deepEqual(hf.eosTokenIds, [tok.eosTokenIds[0], 7]);
      assert.equal(hf.chatTemplate, tok.chatTemplate);
      assert.deepEqual([...hf.specialTokenIds].sort(), [...tok.specialTokenIds].sort());
      for (const text of [...PLAIN, CJK_EMOJI, "<|im_start|>user\nhi<|im_end|>", "<|user|>\nx<|end|>"]) {
        const a = await tok.encode(text), b = await hf.encode(text);
        assert.deepEqual(b, a, `${v}: ${JSON.stringify(text)}`);
        assert.equal(hf.decode(b), tok.decode(a));
      }
      // chat_template.jinja takes precedence over tokenizer_config.json's chat_template.
      writeFileSync(join(dir, "chat_template.jinja"), "{{ messages[0].content }}");
      assert.equal(Tokenizer.fromHfDir(dir).chatTemplate, "{{ messages[0].content }}");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("fromHfDir: BOS from the post-processor when add_bos_token is absent; chat_template.json", async () => {
  const { tok, md } = load("phi-3");
  const dir = mkdtempSync(join(tmpdir(), "tllm-tok-"));
  try {
    const config = ggufVocabToTokenizerConfig(md) as Record<string, unknown>;
    delete config.add_bos_token;
    delete config.chat_template;
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(ggufVocabToTokenizerJson(md)));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
    writeFileSync(join(dir, "chat_template.json"), JSON.stringify({ chat_template: "{{ bos_token }}" }));
    const hf = Tokenizer.fromHfDir(dir);
    assert.equal(hf.addBos, true); // the converted tokenizer.json's TemplateProcessing starts with <s>
    assert.deepEqual(await hf.encode("Hi"), await tok.encode("Hi"));
    assert.equal(hf.chatTemplate, "{{ bos_token }}");
    assert.deepEqual(hf.eosTokenIds, [tok.eosTokenIds[0]]); // no generation_config.json: tokenizer_config's eos only
    config.add_bos_token = false;
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
    const noBos = Tokenizer.fromHfDir(dir);
    assert.equal(noBos.addBos, false);
    assert.deepEqual(await noBos.encode("Hi"), await tok.encode("Hi", { addSpecialTokens: false }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fromHfDir: missing tokenizer.json is a CheckpointError naming the file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tllm-tok-"));
  try {
    assert.throws(() => Tokenizer.fromHfDir(dir), (e: unknown) => e instanceof CheckpointError && e.file === join(dir, "tokenizer.json"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
