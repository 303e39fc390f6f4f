// `tllm` command line: dispatches to the subcommands. Exit codes: 0 success, 1 runtime failure
// (model not found, download failed, ...), 2 usage error (unknown flag, missing or bad value).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TllmError, ValidationError } from "../errors.js";
import { UsageError } from "./args.js";
import { GENERATE_HELP, runGenerate } from "./generate.js";
import { INSPECT_HELP, runInspect } from "./inspect.js";
import { BENCH_HELP, runBench } from "./bench.js";
import { EVAL_HELP, runEval } from "./eval.js";
import { SERVE_HELP, runServe } from "./serve.js";
import { CHAT_HELP, runChat } from "./chat.js";

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string; summary: string }> = {
  generate: { run: runGenerate, help: GENERATE_HELP, summary: "generate text for a prompt, streamed to stdout" },
  inspect: { run: runInspect, help: INSPECT_HELP, summary: "describe a model file: architecture, dims, tensor types, tokenizer" },
  bench: { run: runBench, help: BENCH_HELP, summary: "benchmark: prepare-dataset, throughput, latency, serve (trtllm-bench)" },
  eval: { run: runEval, help: EVAL_HELP, summary: "accuracy: perplexity (+KL divergence), mmlu, gsm8k, json_mode_eval" },
  serve: { run: runServe, help: SERVE_HELP, summary: "OpenAI-compatible HTTP server (completions, chat, metrics)" },
  chat: { run: runChat, help: CHAT_HELP, summary: "interactive chat in the terminal" },
};

function helpText(): string {
  const cmds = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join("\n");
  return `Usage: tllm <command> [options]

tllm: LLM inference for Node.js (TensorRT-LLM's architecture, native CPU kernels, GGUF and safetensors).

Commands:
${cmds}

Options:
  -h, --help     this help (tllm <command> --help for a command's options)
  -v, --version  print the version

Models: a .gguf file, an HF directory, a hub id (org/name or org/name:file.gguf; HF_HOME, HF_TOKEN,
HF_ENDPOINT and HF_HUB_OFFLINE are honoured), or 'demo' (random weights, no download).
`;
}

export function version(): string {
  const pkg = resolve(fileURLToPath(import.meta.url), "../../../package.json"); // src/cli or dist/cli
  return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
}

/** Runs the CLI on `argv` (without node and the script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(helpText());
    return first === undefined ? 2 : 0;
  }
  if (first === "-v" || first === "--version") {
    process.stdout.write(`tllm ${version()}\n`);
    return 0;
  }
  const cmd = COMMANDS[first];
  if (!cmd) {
    const what = first.startsWith("-") ? `unknown option '${first}'` : `unknown command '${first}'`;
    process.stderr.write(`tllm: ${what} (commands: ${Object.keys(COMMANDS).join(", ")}; see tllm --help)\n`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    return report(first, e);
  }
}

function report(command: string, e: unknown): number {
  if (e instanceof UsageError) {
    process.stderr.write(`tllm ${command}: ${e.message} (see tllm ${command} --help)\n`);
    return 2;
  }
  if (e instanceof ValidationError) {
    process.stderr.write(`tllm ${command}: ${e.message}\n`);
    return 2;
  }
  if (e instanceof TllmError) {
    process.stderr.write(`tllm ${command}: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`tllm ${command}: ${(e as Error)?.stack ?? String(e)}\n`);
  return 1;
}

const entry = process.argv[1] ? resolve(process.argv[1]) : "";
if (entry === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
