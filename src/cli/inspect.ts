// `tllm inspect PATH`: what a model file holds, without loading weights: architecture and dims,
// tensor types with counts, parameter count, tokenizer kind, chat template presence.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { openGguf } from "../checkpoint/gguf.js";
import { openSafetensorsDir } from "../checkpoint/safetensors.js";
import type { Checkpoint } from "../checkpoint/types.js";
import { typeName } from "../backends/dtypes.js";
import type { ModelConfig } from "../config/model-config.js";
import { configFromGguf } from "../models/config-from-gguf.js";
import { configFromHf } from "../models/config-from-hf.js";
import { DEMO_NOTICE, resolveModel } from "../checkpoint/resolve-model.js";
import { parseFlags, UsageError } from "./args.js";

export interface ModelSummary {
  path: string;
  format: "gguf" | "safetensors";
  name: string | null;
  config: ModelConfig;
  /** tensor type name -> number of tensors */
  tensorTypes: Map<string, number>;
  tensorCount: number;
  parameters: number;
  tokenizer: string;
  chatTemplate: boolean;
  fileBytes: number;
}

function countTypes(ckpt: Checkpoint): { types: Map<string, number>; params: number } {
  const types = new Map<string, number>();
  let params = 0;
  for (const t of ckpt.tensors.values()) {
    const n = typeName(t.dtype);
    types.set(n, (types.get(n) ?? 0) + 1);
    params += t.shape.reduce((a, b) => a * b, 1);
  }
  return { types, params };
}

function readJson(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

function hfTokenizerKind(dir: string): { kind: string; chat: boolean } {
  const tok = readJson(join(dir, "tokenizer.json"));
  const model = tok?.["model"] as { type?: string } | undefined;
  const cfg = readJson(join(dir, "tokenizer_config.json"));
  const chat = typeof cfg?.["chat_template"] === "string" || Array.isArray(cfg?.["chat_template"]) ||
    existsSync(join(dir, "chat_template.jinja"));
  const kind = model?.type ? `tokenizer.json ${model.type}` : existsSync(join(dir, "tokenizer.model")) ? "sentencepiece tokenizer.model" : "none";
  return { kind, chat };
}

/** Reads the model's description; `path` is a .gguf file or an HF directory. */
export function summarizeModel(path: string): ModelSummary {
  const isDir = statSync(path).isDirectory();
  const ckpt = isDir ? openSafetensorsDir(path) : openGguf(path);
  try {
    const { types, params } = countTypes(ckpt);
    const base = { path, tensorTypes: types, tensorCount: ckpt.tensors.size, parameters: params };
    if (isDir) {
      const cfg = readJson(join(path, "config.json")) ?? {};
      const tk = hfTokenizerKind(path);
      const bytes = [...new Set([...ckpt.tensors.values()].map((t) => t.file))].reduce((a, f) => a + statSync(f).size, 0);
      return { ...base, format: "safetensors", name: (cfg["_name_or_path"] as string) ?? null,
        config: configFromHf(cfg, join(path, "config.json")), tokenizer: tk.kind, chatTemplate: tk.chat, fileBytes: bytes };
    }
    const md = ckpt.metadata;
    const tok = md.get("tokenizer.ggml.model");
    const pre = md.get("tokenizer.ggml.pre");
    return {
      ...base, format: "gguf", name: (md.get("general.name") as string) ?? null,
      config: configFromGguf(md, path, ckpt.tensors),
      tokenizer: tok === undefined ? "none" : `gguf ${String(tok)}${pre !== undefined ? ` (pre: ${String(pre)})` : ""}`,
      chatTemplate: typeof md.get("tokenizer.chat_template") === "string",
      fileBytes: statSync(path).size,
    };
  } finally {
    ckpt.close();
  }
}

/** Human-readable lines, one fact per line as `key: value`. */
export function formatSummary(s: ModelSummary): string {
  const c = s.config;
  const types = [...s.tensorTypes.entries()].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t}=${n}`).join(" ");
  const rope = c.ropeScaling.type === "none" ? "none" : `${c.ropeScaling.type} x${c.ropeScaling.factor}`;
  const lines = [
    `path: ${s.path}`,
    `format: ${s.format}${s.name ? ` (${s.name})` : ""}`,
    `architecture: ${c.architecture}`,
    `layers: ${c.numLayers}`,
    `hidden size: ${c.hiddenSize}`,
    `heads: ${c.numHeads} (kv heads: ${c.numKvHeads}, head dim: ${c.headDim})`,
    `intermediate size: ${c.intermediateSize}`,
    `vocab size: ${c.vocabSize}`,
    `max positions: ${c.maxPositionEmbeddings}`,
    `rope: theta=${c.ropeTheta} style=${c.ropeStyle} scaling=${rope}`,
    `rms norm eps: ${Number(c.rmsNormEps.toPrecision(6))}`,
    `tied embeddings: ${c.tieWordEmbeddings}`,
    `sliding window: ${c.slidingWindow ?? "none"}`,
    s.tensorCount === 0 ? "tensors: 0 (vocabulary only: no weights)" : `tensors: ${s.tensorCount} (${types})`,
    `parameters: ${s.parameters} (${(s.parameters / 1e6).toFixed(2)} M)`,
    `file size: ${s.fileBytes} bytes`,
    `tokenizer: ${s.tokenizer}`,
    `bos/eos: ${c.bosTokenId ?? "none"} / ${c.eosTokenIds.join(",") || "none"}`,
    `chat template: ${s.chatTemplate ? "yes" : "no"}`,
  ];
  return lines.join("\n");
}

export const INSPECT_HELP = `Usage: tllm inspect MODEL

Prints a model's architecture, dimensions, tensor types and counts, tokenizer kind and whether it
has a chat template, without loading its weights. MODEL: a .gguf file, an HF directory, a hub id
(org/name or org/name:file.gguf; downloaded first) or 'demo'.

Options:
  --offline     use the local cache only (also HF_HUB_OFFLINE=1)
  --json        print the summary as JSON
  -h, --help    this help
`;

export async function runInspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("inspect", argv, {
    offline: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
  }, true);
  if (values["help"]) {
    process.stdout.write(INSPECT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "missing MODEL" : `expected one MODEL, got ${positionals.length}`, "inspect");
  const src = await resolveModel(positionals[0]!, { offline: values["offline"] === true ? true : undefined });
  if (src.source === "demo") process.stderr.write(DEMO_NOTICE + "\n");
  const s = summarizeModel(src.path);
  if (values["json"]) {
    process.stdout.write(JSON.stringify({ ...s, tensorTypes: Object.fromEntries(s.tensorTypes) }, null, 2) + "\n");
  } else {
    process.stdout.write(formatSummary(s) + "\n");
  }
  return 0;
}
