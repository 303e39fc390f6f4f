// Flag parsing shared by the subcommands: node's util.parseArgs (strict), with its errors and bad
// values turned into UsageError, which main() reports on stderr with exit code 2.
import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = "UsageError";
  }
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Parses `argv` strictly: an unknown flag or a missing value is a UsageError naming it. */
export function parseFlags(command: string, argv: string[], options: Options, allowPositionals = false): Parsed {
  try {
    const r = parseArgs({ args: argv, options, strict: true, allowPositionals });
    return { values: r.values as Parsed["values"], positionals: r.positionals };
  } catch (e) {
    const err = e as Error & { code?: string };
    if (typeof err.code === "string" && err.code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError(explain(err), command);
    }
    throw e;
  }
}

function explain(err: Error & { code?: string }): string {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option '${flag ?? "?"}'`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return flag ? `option '${flag}' needs a value` : err.message.split("\n")[0]!;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${/'([^']*)'/.exec(err.message)?.[1] ?? ""}`.trim();
    default:
      return err.message.split("\n")[0]!;
  }
}

/** A numeric flag: undefined when absent, else a finite number (integer when asked) or UsageError. */
export function numberFlag(command: string, values: Parsed["values"], name: string, integer = false): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`option '--${name}' expects ${integer ? "an integer" : "a number"}, got '${String(v)}'`, command);
  }
  return n;
}

export function stringFlag(values: Parsed["values"], name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}
