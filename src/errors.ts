// Typed errors. Each names the offending field (and file where there is one) so that callers,
// the CLI and the server can report it precisely. The server maps `httpStatus` to its response.

export class TllmError extends Error {
  /** HTTP status the server should answer with when this reaches a client. */
  readonly httpStatus: number = 500;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A user-supplied value is invalid: names the field and the value. */
export class ValidationError extends TllmError {
  override readonly httpStatus = 400;
  constructor(readonly field: string, readonly value: unknown, reason: string) {
    super(`invalid ${field}=${fmt(value)}: ${reason}`);
  }
}

/** An option key that no config knows. */
export class UnknownOptionError extends ValidationError {
  constructor(key: string, where: string, known: readonly string[]) {
    super(key, undefined, `unknown option '${key}' in ${where} (known: ${known.join(", ")})`);
    this.message = `unknown option '${key}' in ${where} (known: ${known.join(", ")})`;
  }
}

/** A model file or directory cannot be used: names the file and the field. */
export class CheckpointError extends TllmError {
  constructor(readonly file: string, readonly field: string, reason: string) {
    super(`${file}: ${field}: ${reason}`);
  }
}

/** Architecture not in the registry; the message lists the supported ones. */
export class UnsupportedArchitectureError extends CheckpointError {
  constructor(file: string, arch: string, supported: readonly string[]) {
    super(file, "architecture", `unsupported architecture '${arch}' (supported: ${supported.join(", ")})`);
  }
}

/** A tensor's shape disagrees with the model config. */
export class ShapeMismatchError extends CheckpointError {
  constructor(file: string, tensor: string, expected: readonly number[], actual: readonly number[]) {
    super(file, tensor, `shape [${actual.join(", ")}] does not match config, expected [${expected.join(", ")}]`);
  }
}

export function fmt(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? v.slice(0, 77) + "..." : v);
  if (typeof v === "bigint") return v.toString();
  try {
    const s = JSON.stringify(v);
    if (s === undefined) return String(v);
    return s.length > 80 ? s.slice(0, 77) + "..." : s;
  } catch {
    return String(v);
  }
}
