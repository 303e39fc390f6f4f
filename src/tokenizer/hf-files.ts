// Reading an HF tokenizer directory: tokenizer.json, tokenizer_config.json, chat_template.{jinja,json},
// generation_config.json. Also derives, from a tokenizer.json object, how its pieces map to bytes.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError } from "../errors.js";

export type Json = Record<string, unknown>;

export function readJson(file: string, required: boolean): Json | undefined {
  if (!existsSync(file)) {
    if (required) throw new CheckpointError(file, "file", "not found");
    return undefined;
  }
  try {
    const v: unknown = JSON.parse(readFileSync(file, "utf8"));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Json;
  } catch (e) {
    throw new CheckpointError(file, "json", (e as Error).message);
  }
}

/** A special-token entry in tokenizer_config.json is a string or an AddedToken dict {content}. */
export function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return undefined;
}

/** chat_template.jinja, then chat_template.json, then tokenizer_config.json's chat_template
 *  (a string, or a list of {name, template} where "default" is taken). */
export function readChatTemplate(dir: string, config: Json | undefined): string | undefined {
  const jinja = join(dir, "chat_template.jinja");
  if (existsSync(jinja)) return readFileSync(jinja, "utf8");
  const fromJson = readJson(join(dir, "chat_template.json"), false)?.chat_template;
  const t = fromJson ?? config?.chat_template;
  if (t === undefined || t === null) return undefined;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t as Array<{ name?: unknown; template?: unknown }>;
    const d = named.find((x) => x.name === "default") ?? named[0];
    if (d && typeof d.template === "string") return d.template;
  }
  throw new CheckpointError(join(dir, "tokenizer_config.json"), "chat_template", "expected a string or a list of {name, template}");
}

/** eos_token_id of generation_config.json: a number or a list of numbers. */
export function readGenerationEos(dir: string): number[] {
  const file = join(dir, "generation_config.json");
  const v = readJson(file, false)?.eos_token_id;
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0)) {
    throw new CheckpointError(file, "eos_token_id", `expected a token id or a list of them, got ${JSON.stringify(v)}`);
  }
  return list as number[];
}

function flatDecoders(d: unknown): Json[] {
  if (!d || typeof d !== "object") return [];
  const j = d as Json;
  if (j.type === "Sequence" && Array.isArray(j.decoders)) return (j.decoders as unknown[]).flatMap(flatDecoders);
  return [j];
}

export interface PieceStyle {
  /** Pieces are GPT-2 byte-alphabet strings. */
  byteLevel: boolean;
  /** `▁` stands for a space (SentencePiece). */
  metaspace: boolean;
  /** `<0xNN>` pieces are raw bytes. */
  byteFallback: boolean;
  /** One leading space of the decoded text is the dummy prefix and is dropped. */
  stripLeadingSpace: boolean;
}

/** How a tokenizer.json's decoder turns pieces into text. */
export function pieceStyle(tj: Json): PieceStyle {
  const ds = flatDecoders(tj.decoder);
  const model = (tj.model ?? {}) as Json;
  const meta = ds.find((d) => d.type === "Metaspace");
  const strip = ds.some((d) => d.type === "Strip" && d.content === " " && Number(d.start) >= 1);
  const metaStrip = meta !== undefined && meta.prepend_scheme !== "never" && meta.add_prefix_space !== false;
  return {
    byteLevel: ds.some((d) => d.type === "ByteLevel"),
    metaspace: meta !== undefined || ds.some((d) => d.type === "Replace" && (d.pattern as Json)?.String === "\u2581"),
    byteFallback: ds.some((d) => d.type === "ByteFallback") || model.byte_fallback === true,
    stripLeadingSpace: strip || metaStrip,
  };
}

/** Does the post-processor put `id` first (BOS) or last (EOS) of a single sequence? */
export function postProcessorAdds(tj: Json, id: number | undefined, where: "first" | "last"): boolean {
  if (id === undefined) return false;
  const pp = tj.post_processor as Json | null | undefined;
  const procs = pp?.type === "Sequence" && Array.isArray(pp.processors) ? (pp.processors as Json[]) : pp ? [pp] : [];
  for (const p of procs) {
    if (p.type !== "TemplateProcessing" || !Array.isArray(p.single)) continue;
    const single = p.single as Json[];
    const item = where === "first" ? single[0] : single[single.length - 1];
    const st = item?.SpecialToken as Json | undefined;
    const specials = (p.special_tokens ?? {}) as Record<string, { ids?: number[] }>;
    if (st && typeof st.id === "string" && specials[st.id]?.ids?.includes(id)) return true;
  }
  return false;
}
