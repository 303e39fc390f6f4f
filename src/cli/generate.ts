// `tllm generate`: one prompt, text streamed to stdout as it is generated (whole UTF-8 characters),
// a one-line summary on stderr.
import { LLM } from "../api/llm.js";
import type { LlmArgsInput } from "../api/llm-args.js";
import { createSamplingParams, type SamplingParamsInput } from "../api/sampling-params.js";
import type { RequestOutput } from "../api/request-output.js";
import { ValidationError } from "../errors.js";
import { applyChatTemplate } from "../tokenizer/chat-template.js";
import { numberFlag, parseFlags, stringFlag, UsageError, type Options } from "./args.js";

export const GENERATE_HELP = `Usage: tllm generate --model MODEL --prompt TEXT [options]

Generates a continuation of TEXT and streams it to stdout.

Model:
  --prompt TEXT        the prompt; '-' reads it from stdin
  --chat               wrap the prompt as a user message in the model's chat template
  --model MODEL        .gguf file, HF directory, hub id (org/name or org/name:file.gguf), or 'demo'
  --tokenizer DIR      HF tokenizer directory, when it differs from the model's
  --revision REV       hub branch, tag or commit (default main)
  --offline            use the local cache only (also HF_HUB_OFFLINE=1)
  --backend B          auto | native | reference (default auto)
  --threads N          kernel threads (default: all cores)
Sampling (greedy unless --temperature, --top-k or --top-p is given):
  --max-tokens N       tokens to generate (default 32)
  --temperature T      0 = greedy
  --top-k K            0 = whole vocabulary
  --top-p P            nucleus mass in [0, 1]
  --min-p P            keep tokens with p >= P * p_max
  --repetition-penalty R
  --seed S             RNG seed (sampling is reproducible per seed)
  --stop TEXT          stop string (repeatable)
  --ignore-eos         keep going past end-of-sequence tokens
  --no-special         do not add BOS/EOS special tokens to the prompt
  --print-token-ids    also print the generated token ids on stderr
  -h, --help           this help
`;

const OPTIONS: Options = {
  model: { type: "string" }, prompt: { type: "string" }, tokenizer: { type: "string" },
  revision: { type: "string" }, offline: { type: "boolean" }, backend: { type: "string" }, threads: { type: "string" },
  "max-tokens": { type: "string" }, temperature: { type: "string" }, "top-k": { type: "string" }, "top-p": { type: "string" },
  "min-p": { type: "string" }, "repetition-penalty": { type: "string" }, seed: { type: "string" },
  stop: { type: "string", multiple: true }, "ignore-eos": { type: "boolean" }, "no-special": { type: "boolean" },
  "print-token-ids": { type: "boolean" }, chat: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

function samplingFrom(v: ReturnType<typeof parseFlags>["values"]): SamplingParamsInput {
  const p: SamplingParamsInput = {};
  const set = <K extends keyof SamplingParamsInput>(k: K, x: SamplingParamsInput[K] | undefined) => { if (x !== undefined) p[k] = x; };
  set("maxTokens", numberFlag("generate", v, "max-tokens", true));
  set("temperature", numberFlag("generate", v, "temperature"));
  set("topK", numberFlag("generate", v, "top-k", true));
  set("topP", numberFlag("generate", v, "top-p"));
  set("minP", numberFlag("generate", v, "min-p"));
  set("repetitionPenalty", numberFlag("generate", v, "repetition-penalty"));
  set("seed", numberFlag("generate", v, "seed", true));
  if (Array.isArray(v["stop"])) p.stop = v["stop"];
  if (v["ignore-eos"] === true) p.ignoreEos = true;
  if (v["no-special"] === true) p.addSpecialTokens = false;
  return p;
}

function llmArgsFrom(v: ReturnType<typeof parseFlags>["values"]): LlmArgsInput {
  const model = stringFlag(v, "model");
  if (model === undefined) throw new UsageError("missing --model (a .gguf file, HF directory, hub id, or 'demo')", "generate");
  const a: LlmArgsInput = { model };
  const tok = stringFlag(v, "tokenizer"), rev = stringFlag(v, "revision"), backend = stringFlag(v, "backend");
  if (tok !== undefined) a.tokenizer = tok;
  if (rev !== undefined) a.revision = rev;
  if (backend !== undefined) a.backend = backend as LlmArgsInput["backend"];
  if (v["offline"] === true) a.offline = true;
  const threads = numberFlag("generate", v, "threads", true);
  if (threads !== undefined) a.threads = threads;
  return a;
}

async function readPrompt(values: ReturnType<typeof parseFlags>["values"]): Promise<string> {
  const prompt = stringFlag(values, "prompt");
  if (prompt === undefined) throw new UsageError("missing --prompt (TEXT, or - to read stdin)", "generate");
  if (prompt !== "-") return prompt;
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

/** With --chat: the prompt as one user message through the model's chat template (which writes
 *  BOS itself, so the tokenizer adds no special tokens). */
function chatPrompt(llm: LLM, prompt: string, params: SamplingParamsInput): string {
  const tok = llm.tokenizer;
  if (!tok.chatTemplate) throw new ValidationError("chat", true, "the model has no chat template");
  params.addSpecialTokens = false;
  return applyChatTemplate(tok.chatTemplate, [{ role: "user", content: prompt }], {
    addGenerationPrompt: true, bosToken: tok.bosToken, eosToken: tok.eosToken,
  });
}

function summary(out: RequestOutput, seconds: number): string {
  const c = out.outputs[0]!;
  const why = c.stopReason !== null ? ` (${JSON.stringify(c.stopReason)})` : "";
  return `tllm: ${out.promptTokenIds.length} prompt + ${c.tokenIds.length} generated tokens in ${seconds.toFixed(2)} s ` +
    `(${(c.tokenIds.length / seconds).toFixed(1)} tok/s), finish: ${c.finishReason}${why}\n`;
}

export async function runGenerate(argv: string[]): Promise<number> {
  const { values } = parseFlags("generate", argv, OPTIONS);
  if (values["help"]) {
    process.stdout.write(GENERATE_HELP);
    return 0;
  }
  const params = samplingFrom(values);
  createSamplingParams(params); // bad values fail here, before the model loads
  const args = llmArgsFrom(values);
  let prompt = await readPrompt(values);
  const llm = new LLM(args); // validates args synchronously
  try {
    await llm.ready();
    if (values["chat"] === true) prompt = chatPrompt(llm, prompt, params);
    const t0 = performance.now();
    const ac = new AbortController();
    const onSigint = (): void => ac.abort(); // Ctrl-C ends the output cleanly ('cancelled')
    process.once("SIGINT", onSigint);
    const out = await llm.generate(prompt, params, {
      signal: ac.signal, onStream: (ev) => { if (ev.textDelta) process.stdout.write(ev.textDelta); },
    }).finally(() => process.off("SIGINT", onSigint));
    process.stdout.write("\n");
    process.stderr.write(summary(out, (performance.now() - t0) / 1000));
    if (values["print-token-ids"] === true) {
      process.stderr.write(`prompt tokens: ${JSON.stringify(out.promptTokenIds)}\ntokens: ${JSON.stringify(out.outputs[0]!.tokenIds)}\n`);
    }
    return 0;
  } finally {
    await llm.shutdown();
  }
}
