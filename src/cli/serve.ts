// `tllm serve MODEL`: the OpenAI-compatible HTTP server (src/serve). LLM arguments come from
// built-in defaults < `--config llm_args.yaml` (LlmArgs keys, camelCase or TensorRT-LLM's
// snake_case) < flags. SIGTERM/SIGINT drain in-flight requests, then exit 0.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { LLM } from "../api/llm.js";
import type { LlmArgsInput } from "../api/llm-args.js";
import { parseLlmArgs } from "../api/llm-args.js";
import { ValidationError } from "../errors.js";
import { TllmServer, type LogLevel } from "../serve/server.js";
import { numberFlag, parseFlags, stringFlag, UsageError, type Options, type Parsed } from "./args.js";

export const SERVE_HELP = `Usage: tllm serve MODEL [options]

Serves MODEL over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions,
/v1/models, /tokenize, /detokenize, /health, /health_generate, /version, /metrics).

Server:
  --host HOST                      bind address (default 127.0.0.1)
  --port PORT                      port (default 8000; 0 picks a free one)
  --api-key KEY                    require 'Authorization: Bearer KEY' on /v1/*
  --served-model-name NAME         model id clients use (default: MODEL)
  --chat-template FILE             Jinja chat template overriding the model's
  --max-queue-size N               requests waiting beyond the batch before 429 (default 1024)
  --log-level L                    debug | info | warn | error (default info)
Engine (override --config):
  --config FILE                    LlmArgs as YAML (e.g. kv_cache_config: {enable_block_reuse: false})
  --max-batch-size N               max requests per iteration
  --max-num-tokens N               max packed tokens per iteration
  --max-seq-len N                  prompt + output limit
  --max-beam-width N               widest use_beam_search a request may ask for (default 1: off)
  --kv-cache-free-memory-fraction F  share of free memory for the KV pool, in (0, 1]
  --no-enable-block-reuse          disable prefix caching
  --kv-cache-dtype D               auto | f32 | f16 | int8 (auto: f16 on native, f32 on reference)
  --threads N                      kernel threads
  --backend B                      auto | native | reference
  -h, --help                       this help
`;

const OPTIONS: Options = {
  host: { type: "string" }, port: { type: "string" }, "api-key": { type: "string" }, "served-model-name": { type: "string" },
  "max-batch-size": { type: "string" }, "max-num-tokens": { type: "string" }, "max-seq-len": { type: "string" }, "max-beam-width": { type: "string" },
  "kv-cache-free-memory-fraction": { type: "string" }, "no-enable-block-reuse": { type: "boolean" }, "kv-cache-dtype": { type: "string" }, threads: { type: "string" },
  "chat-template": { type: "string" }, config: { type: "string" }, "max-queue-size": { type: "string" },
  "log-level": { type: "string" }, backend: { type: "string" }, help: { type: "boolean", short: "h" },
};

const camel = (k: string): string => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** YAML keys to LlmArgs' camelCase, nested objects included. */
function camelKeys(v: unknown): unknown {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), camelKeys(x)]));
}

export function readConfigFile(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ValidationError("config", file, `cannot read YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ValidationError("config", file, "must hold a mapping of LlmArgs keys");
  return camelKeys(doc) as Record<string, unknown>;
}

/** defaults < YAML < flags, validated by parseLlmArgs (unknown keys and bad values are errors). */
export function llmArgsFromFlags(model: string, v: Parsed["values"], cmd = "serve"): LlmArgsInput {
  const file = stringFlag(v, "config");
  const base = file ? readConfigFile(file) : {};
  const a: Record<string, unknown> = { ...base, model };
  const kv: Record<string, unknown> = { ...((base["kvCacheConfig"] as Record<string, unknown> | undefined) ?? {}) };
  const set = (k: string, x: unknown) => { if (x !== undefined) a[k] = x; };
  set("maxBatchSize", numberFlag(cmd, v, "max-batch-size", true));
  set("maxNumTokens", numberFlag(cmd, v, "max-num-tokens", true));
  set("maxSeqLen", numberFlag(cmd, v, "max-seq-len", true));
  set("maxBeamWidth", numberFlag(cmd, v, "max-beam-width", true));
  set("threads", numberFlag(cmd, v, "threads", true));
  set("backend", stringFlag(v, "backend"));
  const frac = numberFlag(cmd, v, "kv-cache-free-memory-fraction");
  if (frac !== undefined) kv["freeMemoryFraction"] = frac;
  if (v["no-enable-block-reuse"] === true) kv["enableBlockReuse"] = false;
  const kvDtype = stringFlag(v, "kv-cache-dtype");
  if (kvDtype !== undefined) kv["dtype"] = kvDtype;
  if (Object.keys(kv).length) a["kvCacheConfig"] = kv;
  return parseLlmArgs(a);
}

function logLevelFrom(v: Parsed["values"]): LogLevel {
  const l = stringFlag(v, "log-level") ?? "info";
  if (!["debug", "info", "warn", "error"].includes(l)) throw new UsageError(`option '--log-level' must be debug, info, warn or error, got '${l}'`, "serve");
  return l as LogLevel;
}

export async function runServe(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("serve", argv, OPTIONS, true);
  if (values["help"]) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `expected one MODEL, got ${positionals.length} arguments` : "missing MODEL", "serve");
  const logLevel = logLevelFrom(values);
  process.env["TLLM_LOG_LEVEL"] ??= logLevel;
  const port = numberFlag("serve", values, "port", true) ?? 8000;
  if (port < 0 || port > 65535) throw new UsageError(`option '--port' must be in [0, 65535], got ${port}`, "serve");
  const maxQueueSize = numberFlag("serve", values, "max-queue-size", true);
  if (maxQueueSize !== undefined && maxQueueSize < 0) throw new UsageError("option '--max-queue-size' must be >= 0", "serve");
  const tplFile = stringFlag(values, "chat-template");
  const chatTemplate = tplFile === undefined ? undefined : readTemplate(tplFile);
  const args = llmArgsFromFlags(positionals[0]!, values);
  const llm = await LLM.create(args);
  const apiKey = stringFlag(values, "api-key") ?? process.env["TLLM_API_KEY"] ?? null;
  const server = await TllmServer.start(llm, {
    host: stringFlag(values, "host") ?? "127.0.0.1", port, apiKey, logLevel, chatTemplate,
    servedModelName: stringFlag(values, "served-model-name"), ...(maxQueueSize !== undefined ? { maxQueueSize } : {}),
  });
  const s = await server.ctx.engine.stats();
  server.ctx.log("info", `model ${server.ctx.modelNames[0]} (${llm.source.path}); KV pool ${s.kvBlocksTotal * server.ctx.engine.tokensPerBlock} tokens ` +
    `(${s.kvBlocksTotal} blocks x ${server.ctx.engine.tokensPerBlock}); threads ${llm.config.threads}; backend ${llm.config.backend}; ` +
    `guided decoding ${server.ctx.engine.guidedAvailable ? "on" : "off"}; listening on ${server.url}`);
  return waitForSignal(server, llm);
}

function readTemplate(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read --chat-template '${file}': ${(e as Error).message}`, "serve");
  }
}

/** Resolves 0 after the first SIGTERM/SIGINT has drained the server and shut the engine down. */
function waitForSignal(server: TllmServer, llm: LLM): Promise<number> {
  process.on("uncaughtException", (e) => server.ctx.log("error", `uncaught: ${e.stack ?? e}`)); // never die on one request
  return new Promise((done) => {
    const stop = (sig: string): void => {
      server.ctx.log("info", `${sig}: draining ${server.ctx.engine.inflight} in-flight request(s)`);
      void server.close().then(() => llm.shutdown()).then(() => {
        server.ctx.log("info", "stopped");
        setTimeout(() => process.exit(0), 1000).unref(); // in case a stray handle would keep the process up
        done(0);
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
