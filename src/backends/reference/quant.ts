// Row (de)quantization for the GGML weight types the engine computes with.
// A "row" is n elements, n a multiple of the type's block size; its bytes are rowBytes(type, n).
// Dequantization is bit-exact with ggml's dequantize_row_* (see quant-legacy.ts, quant-k.ts).
// Quantization reproduces ggml's quantize_row_*_ref byte for byte (F16, BF16, Q4_0..Q8_0 and
// Q4_K/Q5_K/Q6_K, see quant-oracle.test.ts); it is meant for writing test fixtures and `build`.
// Byte reads are done per byte, so `src` may be a view at any byteOffset (no alignment assumed).
// Assumes a little-endian host (typed-array views are used for F32 / BF16 copies).

import { GgmlType, TYPE_TRAITS, rowBytes, typeName } from "../dtypes.js";
import { ValidationError } from "../../errors.js";
import { F16_TO_F32_TABLE, f32ToBf16, f32ToF16 } from "./f16.js";
import {
  dequantQ4_0, dequantQ4_1, dequantQ5_0, dequantQ5_1, dequantQ8_0,
  quantQ4_0, quantQ4_1, quantQ5_0, quantQ5_1, quantQ8_0,
} from "./quant-legacy.js";
import { dequantQ4_K, dequantQ5_K, dequantQ6_K, quantQ4_K, quantQ5_K, quantQ6_K } from "./quant-k.js";

/** (src bytes, number of blocks, out, first out element) */
type BlockDequant = (src: Uint8Array, nb: number, out: Float32Array, o: number) => void;
/** (src elements from 0, number of blocks, dst bytes from 0) */
type BlockQuant = (x: Float32Array, nb: number, dst: Uint8Array) => void;

function dequantF32(src: Uint8Array, n: number, out: Float32Array, o: number): void {
  // byte copy into out's storage: works for any src alignment
  new Uint8Array(out.buffer, out.byteOffset + o * 4, n * 4).set(src.subarray(0, n * 4));
}

function dequantF16(src: Uint8Array, n: number, out: Float32Array, o: number): void {
  const t = F16_TO_F32_TABLE;
  for (let i = 0, p = 0; i < n; i++, p += 2) out[o + i] = t[src[p]! | (src[p + 1]! << 8)]!;
}

function dequantBF16(src: Uint8Array, n: number, out: Float32Array, o: number): void {
  const u = new Uint32Array(out.buffer, out.byteOffset + o * 4, n);
  for (let i = 0, p = 0; i < n; i++, p += 2) u[i] = (src[p]! << 16) | (src[p + 1]! << 24);
}

const DEQUANT = new Map<GgmlType, BlockDequant>([
  [GgmlType.F32, dequantF32],
  [GgmlType.F16, dequantF16],
  [GgmlType.BF16, dequantBF16],
  [GgmlType.Q4_0, dequantQ4_0],
  [GgmlType.Q4_1, dequantQ4_1],
  [GgmlType.Q5_0, dequantQ5_0],
  [GgmlType.Q5_1, dequantQ5_1],
  [GgmlType.Q8_0, dequantQ8_0],
  [GgmlType.Q4_K, dequantQ4_K],
  [GgmlType.Q5_K, dequantQ5_K],
  [GgmlType.Q6_K, dequantQ6_K],
]);

function quantF32(x: Float32Array, n: number, dst: Uint8Array): void {
  dst.set(new Uint8Array(x.buffer, x.byteOffset, n * 4));
}

function quantF16(x: Float32Array, n: number, dst: Uint8Array): void {
  for (let i = 0; i < n; i++) {
    const h = f32ToF16(x[i]!);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >>> 8;
  }
}

function quantBF16(x: Float32Array, n: number, dst: Uint8Array): void {
  for (let i = 0; i < n; i++) {
    const h = f32ToBf16(x[i]!);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >>> 8;
  }
}

const QUANT = new Map<GgmlType, BlockQuant>([
  [GgmlType.F32, quantF32],
  [GgmlType.F16, quantF16],
  [GgmlType.BF16, quantBF16],
  [GgmlType.Q4_0, quantQ4_0],
  [GgmlType.Q4_1, quantQ4_1],
  [GgmlType.Q5_0, quantQ5_0],
  [GgmlType.Q5_1, quantQ5_1],
  [GgmlType.Q8_0, quantQ8_0],
  [GgmlType.Q4_K, quantQ4_K],
  [GgmlType.Q5_K, quantQ5_K],
  [GgmlType.Q6_K, quantQ6_K],
]);

/** Types dequantizeRow accepts. */
export const DEQUANT_TYPES: readonly GgmlType[] = [...DEQUANT.keys()];
/** Types quantizeRow accepts. */
export const QUANT_TYPES: readonly GgmlType[] = [...QUANT.keys()];

/** Name for messages: also knows enum members without traits (Q2_K, F64, ...). */
function nameOf(t: GgmlType): string {
  return TYPE_TRAITS.get(t)?.name ?? GgmlType[t] ?? typeName(t);
}

/** Checks n against the type's block size and returns the number of blocks (elements for F*). */
function blockCount(type: GgmlType, n: number): number {
  const tr = TYPE_TRAITS.get(type);
  if (!tr) throw new ValidationError("type", typeName(type), "unknown GGML type");
  if (!Number.isInteger(n) || n < 0 || n % tr.blockSize !== 0) {
    throw new ValidationError("n", n, `${tr.name} row length must be a non-negative multiple of ${tr.blockSize}`);
  }
  return n / tr.blockSize;
}

/**
 * Dequantizes n elements of `type` from src (bytes from src[0], length >= rowBytes(type, n)) into
 * out[outOffset .. outOffset + n). Bit-exact with ggml's dequantize_row_*.
 */
export function dequantizeRow(type: GgmlType, src: Uint8Array, n: number, out: Float32Array, outOffset = 0): void {
  const fn = DEQUANT.get(type);
  if (!fn) throw new ValidationError("type", nameOf(type), `dequantization not supported (supported: ${DEQUANT_TYPES.map(typeName).join(", ")})`);
  const nb = blockCount(type, n);
  const bytes = rowBytes(type, n);
  if (src.length < bytes) throw new ValidationError("src.length", src.length, `${typeName(type)} row of ${n} needs ${bytes} bytes`);
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + n > out.length) {
    throw new ValidationError("outOffset", outOffset, `out (length ${out.length}) cannot hold ${n} elements there`);
  }
  fn(src, nb, out, outOffset);
}

/** Dequantizes n elements of `type` from src into a new Float32Array. */
export function dequantize(type: GgmlType, src: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  dequantizeRow(type, src, n, out, 0);
  return out;
}

/** Quantizes src[0..n) to `type`; returns rowBytes(type, n) bytes of blocks. */
export function quantizeRow(type: GgmlType, src: Float32Array, n: number): Uint8Array {
  const fn = QUANT.get(type);
  if (!fn) throw new ValidationError("type", nameOf(type), `quantization not supported (supported: ${QUANT_TYPES.map(typeName).join(", ")})`);
  const nb = blockCount(type, n);
  if (src.length < n) throw new ValidationError("src.length", src.length, `fewer than n=${n} elements`);
  const dst = new Uint8Array(rowBytes(type, n));
  fn(src, nb, dst);
  return dst;
}
