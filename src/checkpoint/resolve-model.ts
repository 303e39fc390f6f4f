// Where `--model` / LlmArgs.model comes from:
//   a local .gguf file, a local HF directory (config.json), a directory holding exactly one .gguf,
//   a hub repo id `org/name` or `org/name:file.gguf` (downloaded into the HF cache, see hub.ts),
//   or `demo`: a small random-weight Llama on the bundled Llama-2 SPM vocabulary (assets/), built
//   once into $TLLM_CACHE/demo (default ~/.cache/tllm/demo). Its output is noise by design: it exists
//   so that every command runs on a fresh machine without a download.
import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GgmlType } from "../backends/dtypes.js";
import { CheckpointError } from "../errors.js";
import { downloadFromHub, isRepoId } from "./hub.js";
import { ensureFixture, type RandomModelSpec } from "./random-model.js";

export interface ResolvedModel {
  /** a .gguf file or an HF directory */
  path: string;
  format: "gguf" | "hf";
  source: "local" | "hub" | "demo";
  /** hub only */
  repo?: string;
  commit?: string;
}

export interface ResolveModelOptions {
  revision?: string;
  token?: string | null;
  offline?: boolean;
  hubUrl?: string;
  /** HF hub cache (default from HF_HUB_CACHE / HF_HOME) */
  hfCacheDir?: string;
  /** tllm's own cache, where `demo` is built (default $TLLM_CACHE or ~/.cache/tllm) */
  cacheDir?: string;
  progress?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export const DEMO_MODEL = "demo";
export const DEMO_NOTICE = "tllm: model 'demo' has random weights on a real tokenizer: its output is noise by design";

/** The bundled vocabulary (llama.cpp's models/ggml-vocab-llama-spm.gguf, 32000 tokens). */
export function demoVocabPath(): string {
  // src/checkpoint/ and dist/checkpoint/ both sit two levels below the package root
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../assets/ggml-vocab-llama-spm.gguf");
}

/** ~10 M parameters, Q8_0: loads in well under a second and decodes fast on the reference backend. */
export function demoSpec(): RandomModelSpec {
  return {
    arch: "llama", vocab: demoVocabPath(), hidden: 256, layers: 4, heads: 8, kvHeads: 4, headDim: 32, ffn: 768,
    tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 2048,
    seed: 20240611, weightTypes: GgmlType.Q8_0, name: "tllm-demo",
  };
}

export function tllmCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env["TLLM_CACHE"] ?? join(env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "tllm");
}

/** Builds the demo model once (later calls and processes reuse it); returns its .gguf path. */
export async function ensureDemoModel(cacheDir: string): Promise<string> {
  const vocab = demoVocabPath();
  if (!existsSync(vocab)) throw new CheckpointError(vocab, "vocab", "the bundled demo vocabulary is missing from the package");
  return (await ensureFixture(demoSpec(), join(cacheDir, "demo"))).gguf;
}

/** A local path's format, or null when it is not a model. */
function localFormat(path: string): ResolvedModel | null {
  const st = statSync(path);
  if (st.isFile()) {
    if (!path.endsWith(".gguf")) throw new CheckpointError(path, "path", "a model file must be a .gguf (or give an HF directory)");
    return { path, format: "gguf", source: "local" };
  }
  if (existsSync(join(path, "config.json"))) return { path, format: "hf", source: "local" };
  const ggufs = readdirSync(path).filter((f) => f.endsWith(".gguf"));
  if (ggufs.length === 1) return { path: join(path, ggufs[0]!), format: "gguf", source: "local" };
  const why = ggufs.length > 1 ? `holds several .gguf files (${ggufs.join(", ")}); name one` : "has neither config.json nor a .gguf file";
  throw new CheckpointError(path, "path", `directory ${why}`);
}

/** Splits `org/name:file.gguf` into repo and file. */
export function parseHubSpec(spec: string): { repo: string; file?: string } | null {
  const i = spec.indexOf(":");
  const repo = i < 0 ? spec : spec.slice(0, i);
  const file = i < 0 ? undefined : spec.slice(i + 1);
  if (!isRepoId(repo) || file === "") return null;
  return file === undefined ? { repo } : { repo, file };
}

/** Turns a model spec into a local path, downloading or building it when needed. */
export async function resolveModel(spec: string, opts: ResolveModelOptions = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  if (spec === DEMO_MODEL) {
    return { path: await ensureDemoModel(opts.cacheDir ?? tllmCacheDir(env)), format: "gguf", source: "demo" };
  }
  if (existsSync(spec)) return localFormat(resolve(spec))!;
  const hub = spec.startsWith(".") || spec.startsWith("/") ? null : parseHubSpec(spec);
  if (!hub) throw new CheckpointError(spec, "model", "no such file or directory, and not a hub id (org/name[:file.gguf]) or 'demo'");
  const r = await downloadFromHub({
    repo: hub.repo, file: hub.file, revision: opts.revision, token: opts.token, offline: opts.offline,
    hubUrl: opts.hubUrl, cacheDir: opts.hfCacheDir, progress: opts.progress, env, log: opts.log,
  });
  const format = r.path.endsWith(".gguf") ? "gguf" : "hf";
  return { path: r.path, format, source: "hub", repo: hub.repo, commit: r.commit };
}
