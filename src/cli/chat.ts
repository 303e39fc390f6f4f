// `tllm chat MODEL`: an interactive terminal chat on the same engine as `tllm serve` (the model's
// chat template, or --chat-template FILE). Replies stream as they are generated; Ctrl-C stops a
// reply, Ctrl-D or /exit quits, /reset starts over.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { LLM } from "../api/llm.js";
import { createSamplingParams, type SamplingParamsInput } from "../api/sampling-params.js";
import { ValidationError } from "../errors.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { numberFlag, parseFlags, stringFlag, UsageError, type Options } from "./args.js";
import { llmArgsFromFlags } from "./serve.js";

export const CHAT_HELP = `Usage: tllm chat MODEL [options]

An interactive chat in the terminal. Commands: /reset (forget the conversation), /exit (or Ctrl-D).

  --system TEXT          system message
  --chat-template FILE   Jinja chat template overriding the model's
  --max-tokens N         tokens per reply (default 512)
  --temperature T        0 = greedy (default 0.7)
  --top-p P              nucleus mass (default 0.9)
  --seed S               RNG seed
  --config FILE          LlmArgs as YAML
  --threads N            kernel threads
  --backend B            auto | native | reference
  --max-seq-len N        prompt + output limit
  -h, --help             this help
`;

const OPTIONS: Options = {
  system: { type: "string" }, "chat-template": { type: "string" }, "max-tokens": { type: "string" },
  temperature: { type: "string" }, "top-p": { type: "string" }, seed: { type: "string" }, config: { type: "string" },
  threads: { type: "string" }, backend: { type: "string" }, "max-seq-len": { type: "string" }, help: { type: "boolean", short: "h" },
};

export async function runChat(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("chat", argv, OPTIONS, true);
  if (values["help"]) {
    process.stdout.write(CHAT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected one MODEL", "chat");
  const params: SamplingParamsInput = {
    maxTokens: numberFlag("chat", values, "max-tokens", true) ?? 512,
    temperature: numberFlag("chat", values, "temperature") ?? 0.7,
    topP: numberFlag("chat", values, "top-p") ?? 0.9,
    seed: numberFlag("chat", values, "seed", true) ?? null,
    addSpecialTokens: false,
  };
  createSamplingParams(params); // bad values fail before the model loads
  const tplFile = stringFlag(values, "chat-template");
  const template = tplFile === undefined ? undefined : readFileSync(tplFile, "utf8");
  const llm = await LLM.create(llmArgsFromFlags(positionals[0]!, values, "chat"));
  try {
    const tpl = template ?? llm.tokenizer.chatTemplate;
    if (!tpl) throw new ValidationError("chat_template", undefined, "the model has no chat template; pass --chat-template FILE");
    await loop(llm, tpl, params, stringFlag(values, "system"));
    return 0;
  } finally {
    await llm.shutdown();
  }
}

async function loop(llm: LLM, template: string, params: SamplingParamsInput, system: string | undefined): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const start = (): ChatMessage[] => (system ? [{ role: "system", content: system }] : []);
  let messages = start();
  let current: ReturnType<LLM["generateAsync"]> | null = null;
  rl.on("SIGINT", () => { if (current) current.abort(); else rl.close(); });
  const ask = (): void => { if (process.stdin.isTTY) process.stdout.write("> "); };
  try {
    ask();
    for await (const line of rl) { // buffered: piped input loses no lines while a reply streams
      const text = line.trim();
      if (text === "/exit") break;
      if (text === "/reset") messages = start();
      else if (text !== "") {
        messages.push({ role: "user", content: text });
        const prompt = llm.tokenizer.applyChatTemplate(messages, { template, addGenerationPrompt: true });
        current = llm.generateAsync(prompt, params);
        for await (const ev of current) process.stdout.write(ev.textDelta);
        const out = await current.result;
        current = null;
        process.stdout.write("\n");
        messages.push({ role: "assistant", content: out.outputs[0]!.text });
      }
      ask();
    }
  } finally {
    rl.close();
  }
}
