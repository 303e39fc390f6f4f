// The KL-divergence base file: per scored position, the reference run's top-K next-token
// log-probabilities and the residual probability mass, so a later run (another quantization,
// another backend) can be compared as llama.cpp's `perplexity --kl-divergence` does, without
// storing the whole vocabulary (llama.cpp stores all logits; K = 32 keeps ~270 bytes a position).
//
// Format "TKLD" version 1, little-endian throughout:
//   header (32 bytes)
//     0  char[4] magic "TKLD"
//     4  u32     version = 1
//     8  u32     K           entries kept per position (min(topK, vocab))
//    12  u32     nVocab      vocabulary size of the base run
//    16  u32     nPositions  P, scored positions in order
//    20  u32     contextLength  of the sliding window used
//    24  u32     stride
//    28  u32     nTokens     length of the evaluated token sequence
//   then P records of 12 + 8K bytes:
//     i32    token         the actual next token at this position
//     f32    tokenLogprob  ln p_base(token)
//     i32[K] ids           top-K token ids, most probable first
//     f32[K] logprobs      their ln p_base
//     f32    residual      ln(1 - sum_k p_k), the mass of every other token (-Infinity when none)
// The KL divergence is then that of the (K + 1)-bin coarsening {top-K ids, everything else}; it
// equals the full KL when K = vocab and is a lower bound of it otherwise (data processing).
import { readFile, writeFile } from "node:fs/promises";
import { CheckpointError } from "../errors.js";

export const KLD_MAGIC = "TKLD";
export const KLD_VERSION = 1;
const HEADER_BYTES = 32;

export interface KldHeader {
  k: number;
  nVocab: number;
  nPositions: number;
  contextLength: number;
  stride: number;
  nTokens: number;
}

export interface KldPosition {
  token: number;
  tokenLogprob: number;
  ids: Int32Array;
  logprobs: Float32Array;
  residual: number;
}

const recordBytes = (k: number): number => 12 + 8 * k;

/**
 * Top-K of a log-distribution (most probable first; ties: lower id first) and the log of the
 * remaining mass, computed as (sum of all) - (sum of the top K) in f64 so that no vocabulary-sized
 * scratch is needed. One pass with a K-entry insertion list: O(V) when most entries fail the
 * threshold test, as they do for a peaked distribution.
 */
export function topKOf(dist: Float32Array, k: number): { ids: Int32Array; logprobs: Float32Array; residual: number } {
  const ids = new Int32Array(k).fill(-1);
  const vals = new Float32Array(k).fill(-Infinity);
  let total = 0;
  for (let i = 0; i < dist.length; i++) {
    const v = dist[i]!;
    total += Math.exp(v);
    if (v <= vals[k - 1]! && ids[k - 1] !== -1) continue;
    let j = k - 1;
    while (j > 0 && (v > vals[j - 1]! || ids[j - 1] === -1)) {
      vals[j] = vals[j - 1]!;
      ids[j] = ids[j - 1]!;
      j--;
    }
    vals[j] = v;
    ids[j] = i;
  }
  let top = 0;
  for (let j = 0; j < k; j++) top += Math.exp(vals[j]!);
  const rest = total - top;
  return { ids, logprobs: vals, residual: k >= dist.length || rest <= 0 ? -Infinity : Math.log(rest) };
}

export function encodeKld(h: KldHeader, positions: readonly KldPosition[]): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES + positions.length * recordBytes(h.k));
  buf.write(KLD_MAGIC, 0, "latin1");
  const u32 = [KLD_VERSION, h.k, h.nVocab, positions.length, h.contextLength, h.stride, h.nTokens];
  u32.forEach((v, i) => buf.writeUInt32LE(v, 4 + 4 * i));
  let o = HEADER_BYTES;
  for (const p of positions) {
    buf.writeInt32LE(p.token, o);
    buf.writeFloatLE(p.tokenLogprob, o + 4);
    for (let j = 0; j < h.k; j++) {
      buf.writeInt32LE(p.ids[j]!, o + 8 + 4 * j);
      buf.writeFloatLE(p.logprobs[j]!, o + 8 + 4 * h.k + 4 * j);
    }
    buf.writeFloatLE(p.residual, o + 8 + 8 * h.k);
    o += recordBytes(h.k);
  }
  return buf;
}

export function decodeKld(buf: Buffer, file = "<kld>"): { header: KldHeader; positions: KldPosition[] } {
  if (buf.length < HEADER_BYTES || buf.toString("latin1", 0, 4) !== KLD_MAGIC) {
    throw new CheckpointError(file, "magic", `not a TKLD file (starts with ${JSON.stringify(buf.toString("latin1", 0, 4))})`);
  }
  const version = buf.readUInt32LE(4);
  if (version !== KLD_VERSION) throw new CheckpointError(file, "version", `unsupported version ${version} (expected ${KLD_VERSION})`);
  const r = (i: number): number => buf.readUInt32LE(4 + 4 * i);
  const header: KldHeader = { k: r(1), nVocab: r(2), nPositions: r(3), contextLength: r(4), stride: r(5), nTokens: r(6) };
  const need = HEADER_BYTES + header.nPositions * recordBytes(header.k);
  if (buf.length !== need) throw new CheckpointError(file, "size", `${buf.length} bytes, header implies ${need}`);
  const positions: KldPosition[] = [];
  for (let p = 0, o = HEADER_BYTES; p < header.nPositions; p++, o += recordBytes(header.k)) {
    const ids = new Int32Array(header.k);
    const logprobs = new Float32Array(header.k);
    for (let j = 0; j < header.k; j++) {
      ids[j] = buf.readInt32LE(o + 8 + 4 * j);
      logprobs[j] = buf.readFloatLE(o + 8 + 4 * header.k + 4 * j);
    }
    positions.push({ token: buf.readInt32LE(o), tokenLogprob: buf.readFloatLE(o + 4), ids, logprobs, residual: buf.readFloatLE(o + 8 + 8 * header.k) });
  }
  return { header, positions };
}

export async function writeKldFile(file: string, h: KldHeader, positions: readonly KldPosition[]): Promise<void> {
  await writeFile(file, encodeKld(h, positions));
}

export async function readKldFile(file: string): Promise<{ header: KldHeader; positions: KldPosition[] }> {
  return decodeKld(await readFile(file), file);
}

/** p ln(p/q) with 0 ln 0 = 0, from log-probabilities. */
function term(lp: number, lq: number): number {
  if (lp === -Infinity) return 0;
  return Math.exp(lp) * (lp - lq);
}

/**
 * KL(base || new) at one position over the (K + 1)-bin coarsening; `dist` is the new run's full
 * log-distribution. Returns the divergence and the new run's argmax.
 */
export function klAtPosition(base: KldPosition, dist: Float32Array): { kld: number; argmax: number } {
  let kld = 0;
  let top = 0;
  for (let j = 0; j < base.ids.length; j++) {
    const lq = dist[base.ids[j]!]!;
    kld += term(base.logprobs[j]!, lq);
    top += Math.exp(lq);
  }
  let total = 0;
  let argmax = 0;
  for (let i = 0; i < dist.length; i++) {
    if (dist[i]! > dist[argmax]!) argmax = i;
    total += Math.exp(dist[i]!);
  }
  // The new run's mass outside the base's top K, by the same (total - top) arithmetic as topKOf;
  // floored at 1e-300 so that rounding noise cannot turn a finite divergence into Infinity.
  const rest = total - top;
  kld += term(base.residual, Math.log(Math.max(rest, 1e-300)));
  return { kld, argmax };
}
