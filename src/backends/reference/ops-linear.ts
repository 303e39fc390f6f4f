// Reference matmul and embedding: dequantize (or decode) each weight row once per call and dot it
// with every activation row.
//
// Numerics: a GGUF model's output is defined by ggml-cpu's arithmetic (llama.cpp's prebuilt CPU
// binary, AVX2 build), and these random models turn a 1-ulp difference into a visible one once the
// next matmul rounds its activations, so each weight type follows the kernel ggml picks for it:
// - activations are first rounded to the weight type's vec_dot type (act-quant.ts);
// - F32/F16: f32 sums in ggml's order (dot32Tiny: tinyBLAS for >= 2 rows; dot32Vec: vec_dot_f32/f16);
// - Q4_0/Q8_0 (matmulQ0), Q4_K (matmulQ4K), Q6_K (matmulQ6K): exact integer block dots, f32 fma
//   accumulation split across lanes exactly as the AVX2 kernel (vec_dot, tinyBLAS_Q0, repack) does;
// - other types (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, BF16...): plain f64 sum of deq(w) · deq(q(x))
//   (right to ~1 f32 ulp; not mirrored further because no fixture or supported checkpoint needs it yet).
// Every path is verified bit-identical to llama.cpp's tensors on the model fixtures (see the report
// of test/models/llama-vs-llamacpp.test.ts).
import { GgmlType, rowBytes } from "../dtypes.js";
import type { WeightTensor } from "../backend.js";
import { ValidationError } from "../../errors.js";
import { dequantizeRow } from "./quant.js";
import { activationQuant, quantizeActivations, q8KInts, q8_0Ints } from "./act-quant.js";
import { f16ToF32 } from "./f16.js";

const fr = Math.fround;

/** f32 fused multiply-add: a*b of two f32 values is exact in f64, so one rounding of a*b + c to
 *  f64 and then to f32 equals the hardware fma except in double-rounding ties (negligible). */
export function fma32(a: number, b: number, c: number): number { return fr(a * b + c); }

/** tinyBLAS (ggml-cpu/llamafile/sgemm.cpp, AVX2 __m256) dot of x[xo..xo+k) and w[wo..wo+k),
 *  k % 8 == 0: eight f32 lanes, lane l accumulates elements l, l+8, ... with fma; then hsum(__m256):
 *  t_i = v_i + v_{i+4}, result (t0 + t2) + (t1 + t3). Used by ggml for F32/F16 matmuls with >= 2 rows. */
export function dot32Tiny(x: ArrayLike<number>, xo: number, w: ArrayLike<number>, wo: number, k: number): number {
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (let c = 0; c < k; c += 8) {
    const xi = xo + c, wi = wo + c;
    a0 = fr(x[xi]! * w[wi]! + a0); a1 = fr(x[xi + 1]! * w[wi + 1]! + a1);
    a2 = fr(x[xi + 2]! * w[wi + 2]! + a2); a3 = fr(x[xi + 3]! * w[wi + 3]! + a3);
    a4 = fr(x[xi + 4]! * w[wi + 4]! + a4); a5 = fr(x[xi + 5]! * w[wi + 5]! + a5);
    a6 = fr(x[xi + 6]! * w[wi + 6]! + a6); a7 = fr(x[xi + 7]! * w[wi + 7]! + a7);
  }
  const t0 = fr(a0 + a4), t1 = fr(a1 + a5), t2 = fr(a2 + a6), t3 = fr(a3 + a7);
  return fr(fr(t0 + t2) + fr(t1 + t3));
}

const acc32 = new Float32Array(32);
/** ggml_vec_dot_f32 / ggml_vec_dot_f16 (ggml-cpu/vec.cpp, AVX2: GGML_F32_STEP 32, 4 x __m256):
 *  element i of each 32-block goes to accumulator lane i % 32 (fma); GGML_F32x8_REDUCE adds
 *  acc[0..8) += acc[16..24), acc[8..16) += acc[24..32), acc[0..8) += acc[8..16), then
 *  t_i = a_i + a_{i+4}, (t0 + t1) + (t2 + t3). The k % 32 leftovers are added after: in f32
 *  for vec_dot_f32, in f64 for vec_dot_f16 (`f64Tail`). Used for 1-row matmuls and attention. */
export function dot32Vec(x: ArrayLike<number>, xo: number, w: ArrayLike<number>, wo: number, k: number, f64Tail: boolean): number {
  const a = acc32;
  a.fill(0);
  const np = k - (k % 32);
  for (let c = 0; c < np; c += 32) {
    for (let l = 0; l < 32; l++) a[l] = x[xo + c + l]! * w[wo + c + l]! + a[l]!; // Float32Array store rounds (fma)
  }
  for (let l = 0; l < 8; l++) {
    a[l] = a[l]! + a[l + 16]!; a[l + 8] = a[l + 8]! + a[l + 24]!;
  }
  for (let l = 0; l < 8; l++) a[l] = a[l]! + a[l + 8]!;
  const t0 = fr(a[0]! + a[4]!), t1 = fr(a[1]! + a[5]!), t2 = fr(a[2]! + a[6]!), t3 = fr(a[3]! + a[7]!);
  let s = fr(fr(t0 + t1) + fr(t2 + t3));
  for (let c = np; c < k; c++) s = f64Tail ? s + fr(x[xo + c]! * w[wo + c]!) : fr(s + fr(x[xo + c]! * w[wo + c]!));
  return s;
}

let scratch = new Float32Array(0);
function scratchRow(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(n);
  return scratch;
}
let actScratch = new Float32Array(0);

function checkWeight(w: WeightTensor): number {
  const rb = rowBytes(w.dtype, w.cols);
  if (w.data.byteLength < rb * w.rows) {
    throw new ValidationError(`${w.name}.data`, w.data.byteLength, `needs ${rb * w.rows} bytes for [${w.rows}, ${w.cols}]`);
  }
  return rb;
}

/** Rows decoded per dequantizeRow call: a run of whole rows is itself a valid row of r*cols
 *  elements (cols is a multiple of the block size), so decoding ~16K elements at a time keeps the
 *  per-call overhead off the hot loop. F32 weights at a 4-byte-aligned offset are read in place. */
const CHUNK_ELEMS = 16384;

/** How one output element is summed: ggml_compute_forward_mul_mat takes tinyBLAS
 *  (llamafile_sgemm) for F32/F16 weights when src1 has >= 2 rows and k % 8 == 0, else the
 *  vec_dot kernel of the type; quantized types are summed in f64 here (see the file comment). */
type DotKind = "tiny" | "vec32" | "vec16" | "f64";
function dotKind(t: GgmlType, m: number, k: number): DotKind {
  if (t !== GgmlType.F32 && t !== GgmlType.F16) return "f64";
  if (m >= 2 && k % 8 === 0) return "tiny";
  return t === GgmlType.F32 ? "vec32" : "vec16";
}

/** out[m, w.rows] = q(x)[m, w.cols] · deq(w)ᵀ, q as GGML rounds activations for w's type */
export function matmul(out: Float32Array, x: Float32Array, m: number, w: WeightTensor): void {
  const rb = checkWeight(w);
  const k = w.cols, n = w.rows;
  if (x.length < m * k) throw new ValidationError("matmul.x", x.length, `shorter than m*k = ${m}*${k}`);
  if (out.length < m * n) throw new ValidationError("matmul.out", out.length, `shorter than m*n = ${m}*${n}`);
  if (m === 0 || n === 0) return;
  if (w.dtype === GgmlType.Q6_K) { matmulQ6K(out, x, m, w, rb); return; }
  if (w.dtype === GgmlType.Q4_K) { matmulQ4K(out, x, m, w, rb); return; }
  if (w.dtype === GgmlType.Q4_0 || w.dtype === GgmlType.Q8_0) { matmulQ0(out, x, m, w, rb); return; }
  // activations rounded as GGML's vec_dot type for this weight type (see act-quant.ts)
  const aq = activationQuant(w.dtype);
  if (aq !== "none") {
    if (actScratch.length < m * k) actScratch = new Float32Array(m * k);
    quantizeActivations(aq, x, m, k, actScratch);
    x = actScratch;
  }
  const kind = dotKind(w.dtype, m, k);
  if (w.dtype === GgmlType.F32 && w.data.byteOffset % 4 === 0) {
    dotRows(out, x, m, k, n, new Float32Array(w.data.buffer, w.data.byteOffset, n * k), 0, n, kind);
    return;
  }
  const chunk = Math.max(1, Math.min(n, Math.floor(CHUNK_ELEMS / k)));
  const rows = scratchRow(chunk * k);
  for (let j0 = 0; j0 < n; j0 += chunk) {
    const r = Math.min(chunk, n - j0);
    dequantizeRow(w.dtype, w.data.subarray(j0 * rb, (j0 + r) * rb), r * k, rows, 0);
    dotRows(out, x, m, k, n, rows, j0, r, kind);
  }
}

/** out[i, j0 + j] = Σ_c x[i, c] · w[j, c] for j < r, with w rows [r, k], summed as `kind`. */
function dotRows(out: Float32Array, x: Float32Array, m: number, k: number, n: number, w: Float32Array, j0: number, r: number, kind: DotKind): void {
  for (let j = 0; j < r; j++) {
    const wo = j * k;
    for (let i = 0; i < m; i++) {
      const xo = i * k, o = i * n + j0 + j;
      if (kind === "tiny") { out[o] = dot32Tiny(x, xo, w, wo, k); continue; }
      if (kind !== "f64") { out[o] = dot32Vec(x, xo, w, wo, k, kind === "vec16"); continue; }
      // four partial sums (f64) let the JIT pipeline the loop; the tail is summed last
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, c = 0;
      for (; c + 3 < k; c += 4) {
        a0 += x[xo + c]! * w[wo + c]!;
        a1 += x[xo + c + 1]! * w[wo + c + 1]!;
        a2 += x[xo + c + 2]! * w[wo + c + 2]!;
        a3 += x[xo + c + 3]! * w[wo + c + 3]!;
      }
      for (; c < k; c++) a0 += x[xo + c]! * w[wo + c]!;
      out[o] = a0 + a1 + a2 + a3;
    }
  }
}
/** Q6_K weights, exactly ggml_vec_dot_q6_K_q8_K (arch/x86/quants.c, AVX2), which ggml uses for
 *  every row count (no tinyBLAS or repack kernel for Q6_K on AVX2): per 256-block, eight int32
 *  lanes; lane L sums sc·q6·q8 over the elements e with e % 32 in [4L, 4L+4) (maddubs + madd of
 *  the 32-byte loads) minus 32·sc·q8 over the elements of 16-groups 2L, 2L+1 (bsums · scales);
 *  then acc[L] = fma(f32(d_x · d_w), f32(sumi[L]), acc[L]) over blocks and hsum_float_8. */
function matmulQ6K(out: Float32Array, x: Float32Array, m: number, w: WeightTensor, rb: number): void {
  const k = w.cols, n = w.rows, nb = k / 256;
  const qs = new Int8Array(m * k), ds = new Float32Array(m * nb);
  for (let i = 0; i < m; i++) for (let b = 0; b < nb; b++) ds[i * nb + b] = q8KInts(x, i * k + b * 256, qs, i * k + b * 256);
  const q6 = new Int32Array(k), sc = new Int32Array(k / 16), dw = new Float32Array(nb);
  const sumi = new Int32Array(8), acc = new Float32Array(8);
  const bytes = w.data;
  for (let j = 0; j < n; j++) {
    for (let b = 0; b < nb; b++) decodeQ6K(bytes, j * rb + b * 210, q6, sc, b, dw);
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let b = 0; b < nb; b++) {
        sumi.fill(0);
        const e0 = b * 256, xo = i * k + e0;
        for (let e = 0; e < 256; e++) {
          const s = sc[(e0 + e) >> 4]!, q8 = qs[xo + e]!;
          sumi[(e & 31) >> 2] += s * q6[e0 + e]! * q8;
          sumi[e >> 5] -= 32 * s * q8;
        }
        const d = fr(ds[i * nb + b]! * dw[b]!);
        for (let l = 0; l < 8; l++) acc[l] = d * fr(sumi[l]!) + acc[l]!; // Float32Array store: fma
      }
      const t0 = fr(acc[0]! + acc[4]!), t1 = fr(acc[1]! + acc[5]!), t2 = fr(acc[2]! + acc[6]!), t3 = fr(acc[3]! + acc[7]!);
      out[i * n + j] = fr(t0 + t2) + fr(t1 + t3);
    }
  }
}

/** One Q6_K block (ql[128], qh[64], scales[16] int8, d f16) at byte o: unsigned 6-bit values
 *  (0..63, the -32 offset is applied by the caller) into q6[b*256..], scales into sc[b*16..], d. */
function decodeQ6K(bytes: Uint8Array, o: number, q6: Int32Array, sc: Int32Array, b: number, dw: Float32Array): void {
  for (let e = 0; e < 256; e++) {
    const h = e >> 7, t = (e & 127) >> 5, l = e & 31;
    const qlb = bytes[o + h * 64 + (t & 1) * 32 + l]!;
    const nib = t < 2 ? qlb & 15 : qlb >> 4;
    q6[b * 256 + e] = nib | (((bytes[o + 128 + h * 32 + l]! >> (2 * t)) & 3) << 4);
  }
  for (let g = 0; g < 16; g++) sc[b * 16 + g] = (bytes[o + 192 + g]! << 24) >> 24;
  dw[b] = f16ToF32(bytes[o + 208]! | (bytes[o + 209]! << 8));
}

/** Q4_K weights as ggml-cpu computes them on AVX2. Each output is Σ over 256-blocks of exact
 *  integer dots scaled in f32; what differs between ggml's kernels is how the f32 accumulation is
 *  split, and we follow the kernel ggml picks:
 *  - rows % 8 == 0: the repack buffer (q4_K_8x8_q8_K, ggml_gemm/gemv_q4_K_8x8_q8_K in
 *    arch/x86/repack.cpp): one f32 lane per output, acc = fma(f32(Σ sc·q4·q8), f32(dw·da), acc),
 *    accMin = fma(f32(Σ m·bsum32), f32(dmin·da), accMin), result acc - accMin;
 *  - otherwise ggml_vec_dot_q4_K_q8_K (arch/x86/quants.c): eight lanes split as for Q6_K
 *    (element e -> lane (e % 32) >> 2), mins in four lanes (sub-blocks 2p, 2p+1),
 *    result hsum_float_8(acc) + hsum4(accMin). */
function matmulQ4K(out: Float32Array, x: Float32Array, m: number, w: WeightTensor, rb: number): void {
  const k = w.cols, n = w.rows, nb = k / 256, repack = n % 8 === 0, gemmRows = m - (m % 4);
  const qs = new Int8Array(m * k), ds = new Float32Array(m * nb);
  for (let i = 0; i < m; i++) for (let b = 0; b < nb; b++) ds[i * nb + b] = q8KInts(x, i * k + b * 256, qs, i * k + b * 256);
  const q4 = new Int32Array(k), sc = new Int32Array(k / 32), mn = new Int32Array(k / 32), dw = new Float32Array(2 * nb);
  const wb: Q4KRow = { q4, sc, mn, dw };
  for (let j = 0; j < n; j++) {
    for (let b = 0; b < nb; b++) decodeQ4K(w.data, j * rb + b * 144, q4, sc, mn, b, dw);
    for (let i = 0; i < m; i++) {
      const xr = { qs, xo: i * k, ds, dOff: i * nb };
      out[i * n + j] = !repack ? q4KVecDot(wb, xr, nb) : q4KRepack(wb, xr, nb, i < gemmRows ? 4 : 1);
    }
  }
}

interface Q4KRow { q4: Int32Array; sc: Int32Array; mn: Int32Array; dw: Float32Array }
interface Q8KRow { qs: Int8Array; xo: number; ds: Float32Array; dOff: number }

/** Repacked q4_K_8x8_q8_K: per output, f32 fma of exact int dots, one fma per `per` sub-block
 *  pairs... `step` = 4 sub-block pairs (a whole block) in ggml_gemv_q4_K_8x8_q8_K (rows beyond
 *  the last group of 4), 1 pair (64 elements) in ggml_gemm_q4_K_8x8_q8_K (groups of 4 rows):
 *  acc = fma(f32(Σ sc·q4·q8), f32(dw·da), acc); accMin = fma(f32(Σ m·bsum32), f32(dmin·da), accMin);
 *  result acc - accMin. */
function q4KRepack(w: Q4KRow, x: Q8KRow, nb: number, gemmGroup: number): number {
  const pairsPerFma = gemmGroup === 4 ? 1 : 4;
  let acc = 0, accM = 0;
  for (let b = 0; b < nb; b++) {
    const da = x.ds[x.dOff + b]!, sd = fr(w.dw[2 * b]! * da), sm = fr(w.dw[2 * b + 1]! * da);
    for (let p0 = 0; p0 < 4; p0 += pairsPerFma) {
      let iacc = 0, imin = 0;
      for (let s = 2 * p0; s < 2 * (p0 + pairsPerFma); s++) {
        let dot = 0, bsum = 0;
        for (let e = b * 256 + s * 32, end = e + 32; e < end; e++) {
          const q8 = x.qs[x.xo + e]!;
          dot += w.q4[e]! * q8; bsum += q8;
        }
        iacc += w.sc[b * 8 + s]! * dot; imin += w.mn[b * 8 + s]! * bsum;
      }
      acc = fr(fr(iacc) * sd + acc); accM = fr(fr(imin) * sm + accM);
    }
  }
  return fr(acc - accM);
}

/** ggml_vec_dot_q4_K_q8_K (arch/x86/quants.c AVX2): eight int lanes, element e -> lane (e % 32) >> 2;
 *  mins in four lanes (sub-blocks 2p, 2p+1) scaled by -dmin·da; hsum_float_8(acc) + hsum4(accMin). */
function q4KVecDot(w: Q4KRow, x: Q8KRow, nb: number): number {
  const lanes = new Int32Array(8), acc = new Float32Array(8), accM = new Float32Array(4), bsum = new Int32Array(8);
  for (let b = 0; b < nb; b++) {
    const e0 = b * 256, da = x.ds[x.dOff + b]!;
    lanes.fill(0); bsum.fill(0);
    for (let e = 0; e < 256; e++) {
      const q8 = x.qs[x.xo + e0 + e]!;
      lanes[(e & 31) >> 2] += w.sc[(e0 + e) >> 5]! * w.q4[e0 + e]! * q8;
      bsum[e >> 5] += q8;
    }
    const d = fr(da * w.dw[2 * b]!), dmin = fr(-da * w.dw[2 * b + 1]!);
    for (let p = 0; p < 4; p++) {
      accM[p] = dmin * fr(w.mn[b * 8 + 2 * p]! * bsum[2 * p]! + w.mn[b * 8 + 2 * p + 1]! * bsum[2 * p + 1]!) + accM[p]!;
    }
    for (let l = 0; l < 8; l++) acc[l] = d * fr(lanes[l]!) + acc[l]!;
  }
  return fr(hsum8(acc) + fr(fr(accM[0]! + accM[2]!) + fr(accM[1]! + accM[3]!)));
}

/** hsum_float_8 / tinyBLAS hsum(__m256): t_i = a_i + a_{i+4}, (t0 + t2) + (t1 + t3) */
function hsum8(a: Float32Array): number {
  const t0 = fr(a[0]! + a[4]!), t1 = fr(a[1]! + a[5]!), t2 = fr(a[2]! + a[6]!), t3 = fr(a[3]! + a[7]!);
  return fr(fr(t0 + t2) + fr(t1 + t3));
}

/** One Q4_K block (d f16, dmin f16, scales[12], qs[128]) at byte o: 4-bit values into q4[b*256..],
 *  6-bit sub-block scales/mins (get_scale_min_k4) into sc/mn[b*8..], d and dmin into dw[2b], dw[2b+1]. */
function decodeQ4K(bytes: Uint8Array, o: number, q4: Int32Array, sc: Int32Array, mn: Int32Array, b: number, dw: Float32Array): void {
  dw[2 * b] = f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
  dw[2 * b + 1] = f16ToF32(bytes[o + 2]! | (bytes[o + 3]! << 8));
  const s = o + 4, q = o + 16;
  for (let j = 0; j < 8; j++) {
    if (j < 4) { sc[b * 8 + j] = bytes[s + j]! & 63; mn[b * 8 + j] = bytes[s + j + 4]! & 63; }
    else {
      sc[b * 8 + j] = (bytes[s + j + 4]! & 15) | ((bytes[s + j - 4]! >> 6) << 4);
      mn[b * 8 + j] = (bytes[s + j + 4]! >> 4) | ((bytes[s + j]! >> 6) << 4);
    }
  }
  for (let e = 0; e < 256; e++) {
    const byte = bytes[q + (e >> 6) * 32 + (e & 31)]!;
    q4[b * 256 + e] = (e & 32) ? byte >> 4 : byte & 15;
  }
}

/** Q4_0 / Q8_0 weights against Q8_0 activations, as ggml-cpu on AVX2. Every kernel sums exact
 *  integer dots and accumulates them in f32 with fma, scaled by f32(d_w · d_x):
 *  - Q4_0 with rows % 8 == 0: the repack buffer (q4_0_8x8_q8_0, gemv/gemm_q4_b32_8x8_q8_0_lut_avx
 *    in arch/x86/repack.cpp): one lane per output, one fma per 32-block;
 *  - otherwise (ggml_vec_dot_q4_0_q8_0 / q8_0_q8_0 for one row, tinyBLAS_Q0_AVX for more: the same
 *    arithmetic): eight lanes, lane L holds elements 4L..4L+3 of each block (maddubs + madd), then
 *    hsum_float_8. */
function matmulQ0(out: Float32Array, x: Float32Array, m: number, w: WeightTensor, rb: number): void {
  const k = w.cols, n = w.rows, nb = k / 32, q4 = w.dtype === GgmlType.Q4_0, repack = q4 && n % 8 === 0;
  const qs = new Int8Array(m * k), ds = new Float32Array(m * nb);
  for (let i = 0; i < m; i++) for (let b = 0; b < nb; b++) ds[i * nb + b] = q8_0Ints(x, i * k + b * 32, qs, i * k + b * 32);
  const qw = new Int32Array(k), dw = new Float32Array(nb), acc = new Float32Array(8);
  const bytes = w.data, bb = q4 ? 18 : 34;
  for (let j = 0; j < n; j++) {
    for (let b = 0; b < nb; b++) {
      const o = j * rb + b * bb;
      dw[b] = f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
      for (let e = 0; e < 32; e++) {
        qw[b * 32 + e] = q4 ? (e < 16 ? bytes[o + 2 + e]! & 15 : bytes[o + 2 + e - 16]! >> 4) - 8 : (bytes[o + 2 + e]! << 24) >> 24;
      }
    }
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      const xo = i * k;
      for (let b = 0; b < nb; b++) {
        const d = fr(dw[b]! * ds[i * nb + b]!);
        for (let l = 0; l < 8; l++) {
          let s = 0;
          for (let e = b * 32 + 4 * l; e < b * 32 + 4 * l + 4; e++) s += qw[e]! * qs[xo + e]!;
          if (repack) acc[0] += s; else acc[l] = d * s + acc[l]!; // Float32Array store: fma
        }
        if (repack) { const s = acc[0]!; acc[0] = 0; acc[1] = d * s + acc[1]!; }
      }
      out[i * n + j] = repack ? acc[1]! : hsum8(acc);
    }
  }
}

/** out[i, :] = dequantized row ids[i] of table [vocab, hidden] */
export function embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void {
  const rb = checkWeight(table);
  const h = table.cols;
  if (out.length < ids.length * h) throw new ValidationError("embedding.out", out.length, `shorter than ${ids.length}*${h}`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= table.rows) throw new ValidationError("token id", id, `out of range [0, ${table.rows})`);
    dequantizeRow(table.dtype, table.data.subarray(id * rb, (id + 1) * rb), h, out, i * h);
  }
}
