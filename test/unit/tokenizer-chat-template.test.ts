// Chat templates: rendering with add_generation_prompt, bos/eos, tools and extra kwargs; typed errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { ValidationError } from "../../src/errors.js";
import { applyChatTemplate, type ChatMessage } from "../../src/tokenizer/chat-template.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const SMALL =
  "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}" +
  "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

const MSGS: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi 你好" },
];

test("small template with and without add_generation_prompt", () => {
  const opts = { bosToken: "<s>", eosToken: "</s>" };
  const body = "<s><|system|>\nBe brief.</s>\n<|user|>\nHi 你好</s>\n";
  assert.equal(applyChatTemplate(SMALL, MSGS, { ...opts, addGenerationPrompt: true }), body + "<|assistant|>\n");
  assert.equal(applyChatTemplate(SMALL, MSGS, opts), body);
  assert.equal(applyChatTemplate(SMALL, MSGS), "<|system|>\nBe brief.\n<|user|>\nHi 你好\n");
});

test("tools and extra kwargs reach the template", () => {
  const tpl = "{% if tools %}{% for t in tools %}[{{ t.name }}]{% endfor %}{% endif %}" +
    "{% if enable_thinking %}<think>{% endif %}{{ messages | length }}";
  assert.equal(applyChatTemplate(tpl, MSGS, { tools: [{ name: "a" }, { name: "b" }], extra: { enable_thinking: true } }), "[a][b]<think>2");
  assert.equal(applyChatTemplate(tpl, MSGS), "2");
});

test("the Qwen2 template embedded in the GGUF vocabulary renders ChatML", () => {
  const file = join(import.meta.dirname, "..", "fixtures", "vocab", "ggml-vocab-qwen2.gguf");
  const tok = Tokenizer.fromGgufMetadata(readGgufMetadata(file), file);
  const out = applyChatTemplate(tok.chatTemplate!, [{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
  assert.equal(out, "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  assert.equal(tok.applyChatTemplate([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }), out);
});

test("Tokenizer.applyChatTemplate passes the model's BOS/EOS text; no template is a typed error", () => {
  const file = join(import.meta.dirname, "..", "fixtures", "vocab", "ggml-vocab-llama-spm.gguf");
  const tok = Tokenizer.fromGgufMetadata(readGgufMetadata(file), file);
  assert.equal(tok.chatTemplate, undefined);
  assert.throws(() => tok.applyChatTemplate(MSGS), (e: unknown) => e instanceof ValidationError && e.field === "chat_template");
  assert.equal(tok.applyChatTemplate([MSGS[1]!], { template: SMALL }), "<s><|user|>\nHi 你好</s>\n");
});

test("typed errors name messages / chat_template", () => {
  const isErr = (field: string) => (e: unknown) => e instanceof ValidationError && e.field === field;
  assert.throws(() => applyChatTemplate(SMALL, "hi" as unknown as ChatMessage[]), isErr("messages"));
  assert.throws(() => applyChatTemplate(SMALL, [{ content: "x" } as unknown as ChatMessage]), isErr("messages[0].role"));
  assert.throws(() => applyChatTemplate(SMALL, [{ role: "user", content: 5 } as unknown as ChatMessage]), isErr("messages[0].content"));
  assert.throws(() => applyChatTemplate("{% for m in messages %}", MSGS), isErr("chat_template"));
  assert.throws(() => applyChatTemplate("", MSGS), isErr("chat_template"));
  const strict = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system role') }}{% endif %}{% endfor %}";
  assert.throws(() => applyChatTemplate(strict, MSGS), (e: unknown) => isErr("messages")(e) && /no system role/.test((e as Error).message));
  assert.equal(applyChatTemplate(strict, [MSGS[1]!]), "");
});
