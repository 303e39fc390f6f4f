// TEMPORARY stand-ins for quant.ts (dequantizeRow) and f16.ts (f32ToF16, f16ToF32), which another
// helper is writing. Same signatures; F32/F16/BF16 only. Delete once those files land.
import { GgmlType, typeName } from "../dtypes.js";

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** IEEE half bits -> f32 (exact). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** f32 -> IEEE half bits, round to nearest even. */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const b = u32buf[0]!;
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const he = e - 127 + 15;
  if (he >= 31) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (he << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}

/** Decode n elements of one row in `type` from src into out[outOffset..]. */
export function dequantizeRow(type: GgmlType, src: Uint8Array, n: number, out: Float32Array, outOffset = 0): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (type === GgmlType.F32) {
    for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat32(4 * i, true);
  } else if (type === GgmlType.F16) {
    for (let i = 0; i < n; i++) out[outOffset + i] = f16ToF32(dv.getUint16(2 * i, true));
  } else if (type === GgmlType.BF16) {
    for (let i = 0; i < n; i++) { u32buf[0] = dv.getUint16(2 * i, true) << 16; out[outOffset + i] = f32buf[0]!; }
  } else {
    throw new Error(`dequantizeRow shim: ${typeName(type)} not supported until quant.ts lands`);
  }
}
