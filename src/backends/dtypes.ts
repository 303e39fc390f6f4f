// GGML tensor types (the ids GGUF stores) and their block layouts.
// A row of `n` elements of a block type takes (n / blockSize) * typeSize bytes; n must be a
// multiple of blockSize. Layouts follow ggml-common.h; see src/backends/reference/quant.ts.

export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
}

export interface TypeTraits {
  readonly name: string;
  /** elements per block */
  readonly blockSize: number;
  /** bytes per block */
  readonly typeSize: number;
}

const QK_K = 256;
export const TYPE_TRAITS: ReadonlyMap<GgmlType, TypeTraits> = new Map<GgmlType, TypeTraits>([
  [GgmlType.F32, { name: "F32", blockSize: 1, typeSize: 4 }],
  [GgmlType.F16, { name: "F16", blockSize: 1, typeSize: 2 }],
  [GgmlType.BF16, { name: "BF16", blockSize: 1, typeSize: 2 }],
  [GgmlType.Q4_0, { name: "Q4_0", blockSize: 32, typeSize: 2 + 16 }],
  [GgmlType.Q4_1, { name: "Q4_1", blockSize: 32, typeSize: 2 + 2 + 16 }],
  [GgmlType.Q5_0, { name: "Q5_0", blockSize: 32, typeSize: 2 + 4 + 16 }],
  [GgmlType.Q5_1, { name: "Q5_1", blockSize: 32, typeSize: 2 + 2 + 4 + 16 }],
  [GgmlType.Q8_0, { name: "Q8_0", blockSize: 32, typeSize: 2 + 32 }],
  [GgmlType.Q4_K, { name: "Q4_K", blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 2 }],
  [GgmlType.Q5_K, { name: "Q5_K", blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 }],
  [GgmlType.Q6_K, { name: "Q6_K", blockSize: QK_K, typeSize: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 }],
  [GgmlType.I8, { name: "I8", blockSize: 1, typeSize: 1 }],
  [GgmlType.I16, { name: "I16", blockSize: 1, typeSize: 2 }],
  [GgmlType.I32, { name: "I32", blockSize: 1, typeSize: 4 }],
]);

/** Types the engine can compute with (dequantize / matmul). */
export const SUPPORTED_WEIGHT_TYPES: readonly GgmlType[] = [
  GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1,
  GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
];

export function typeName(t: GgmlType): string {
  return TYPE_TRAITS.get(t)?.name ?? `type#${t}`;
}

/** Bytes taken by one row of `n` elements; throws if n is not a multiple of the block size. */
export function rowBytes(t: GgmlType, n: number): number {
  const tr = TYPE_TRAITS.get(t);
  if (!tr) throw new Error(`unknown GGML type ${t}`);
  if (n % tr.blockSize !== 0) throw new Error(`${tr.name}: row length ${n} is not a multiple of ${tr.blockSize}`);
  return (n / tr.blockSize) * tr.typeSize;
}
