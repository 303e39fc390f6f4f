// Local task files: RFC 4180 CSV (MMLU's layout) and JSON Lines, with typed errors naming the
// file, the line and the field.
import { ValidationError } from "../errors.js";

/** A task file line that cannot be used. */
export class TaskFileError extends ValidationError {
  constructor(readonly file: string, readonly line: number, field: string, value: unknown, reason: string) {
    super(field, value, reason);
    this.message = `${file}:${line}: ${this.message}`;
  }
}

/** Parses CSV: fields split by commas, "quoted" fields may hold commas, newlines and "" quotes. Returns rows with their 1-based start line. */
export function parseCsv(text: string, file = "<csv>"): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = "";
  let inQuotes = false;
  let line = 1;
  let rowLine = 1;
  let i = 0;
  const endRow = (): void => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === "")) rows.push({ line: rowLine, fields });
    fields = [];
    field = "";
  };
  while (i < text.length) {
    const c = text[i]!;
    if (inQuotes) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { inQuotes = false; i++; continue; }
      if (c === "\n") line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === "") { inQuotes = true; i++; continue; }
    if (c === ",") { fields.push(field); field = ""; i++; continue; }
    if (c === "\r" && text[i + 1] === "\n") { i++; continue; }
    if (c === "\n") { endRow(); line++; rowLine = line; i++; continue; }
    field += c;
    i++;
  }
  if (inQuotes) throw new TaskFileError(file, rowLine, "csv", field.slice(0, 40), "unterminated quoted field");
  if (field !== "" || fields.length > 0) endRow();
  return rows;
}

/** Parses JSON Lines (blank lines skipped) into objects with their line numbers. */
export function parseJsonl(text: string, file = "<jsonl>"): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new TaskFileError(file, i + 1, "json", raw, `not valid JSON: ${(e as Error).message}`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TaskFileError(file, i + 1, "line", v, "must be a JSON object");
    out.push({ line: i + 1, value: v as Record<string, unknown> });
  });
  return out;
}
