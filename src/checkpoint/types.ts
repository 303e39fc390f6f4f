// What every checkpoint reader (GGUF, safetensors) hands to the model loader.
import type { GgmlType } from "../backends/dtypes.js";

/** One stored tensor. `shape` is outermost-first (HF order): a weight matrix is [rows=out, cols=in],
 *  rows contiguous, each row quantized in blocks along cols. GGUF's ne[] is reversed into this order. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: GgmlType;
  readonly shape: readonly number[];
  /** file that holds it (for error messages) */
  readonly file: string;
  /** raw bytes in `dtype`; read lazily (mmap view or positional read) */
  data(): Uint8Array;
}

export type MetadataValue = string | number | bigint | boolean | MetadataValue[];

export interface Checkpoint {
  readonly format: "gguf" | "safetensors";
  /** the .gguf file or the HF directory */
  readonly path: string;
  /** GGUF key/values; for an HF directory, empty (its config lives in config.json) */
  readonly metadata: ReadonlyMap<string, MetadataValue>;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  close(): void;
}
