// A JSON Schema validator for the subset that structured-output evals use (draft-07 / 2020-12
// keywords): type (incl. "integer", arrays of types), enum, const, properties, required,
// additionalProperties, patternProperties, min/maxProperties, items (schema or tuple), prefixItems,
// min/maxItems, uniqueItems, contains, minimum, maximum, exclusiveMinimum/Maximum (numbers), multipleOf,
// minLength, maxLength (code points), pattern, allOf, anyOf, oneOf, not, if/then/else, and local
// $ref ("#", "#/definitions/...", "#/$defs/..."). "format" is annotation only (not asserted).
// Unknown keywords are ignored, as the spec says. Returns the list of violations (empty = valid).

export type Schema = boolean | Record<string, unknown>;

export interface SchemaError {
  /** JSON pointer of the offending value */
  path: string;
  message: string;
}

const typeOf = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v;

function typeMatches(v: unknown, t: string): boolean {
  const a = typeOf(v);
  return a === t || (t === "number" && a === "integer");
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith("#")) throw new Error(`only local $ref is supported, got ${ref}`);
  let cur: unknown = root;
  for (const part of ref.slice(1).split("/").filter(Boolean)) {
    const key = decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~");
    cur = (cur as Record<string, unknown> | undefined)?.[key];
  }
  if (cur === undefined) throw new Error(`unresolvable $ref ${ref}`);
  return cur as Schema;
}

type Ctx = { root: Schema; errors: SchemaError[] };

function check(v: unknown, s: Schema, path: string, ctx: Ctx): void {
  if (s === true) return;
  if (s === false) return void ctx.errors.push({ path, message: "no value is allowed here" });
  const err = (message: string): void => void ctx.errors.push({ path, message });
  if (typeof s.$ref === "string") check(v, resolveRef(ctx.root, s.$ref), path, ctx);
  if (s.type !== undefined) {
    const ts = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!ts.some((t) => typeMatches(v, t))) return err(`expected ${ts.join(" | ")}, got ${typeOf(v)}`);
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(e, v))) err(`not one of ${JSON.stringify(s.enum)}`);
  if ("const" in s && !deepEqual(s.const, v)) err(`must equal ${JSON.stringify(s.const)}`);
  if (typeof v === "number") checkNumber(v, s, err);
  if (typeof v === "string") checkString(v, s, err);
  if (Array.isArray(v)) checkArray(v, s, path, ctx, err);
  else if (typeof v === "object" && v !== null) checkObject(v as Record<string, unknown>, s, path, ctx, err);
  checkCombinators(v, s, path, ctx, err);
}

function checkNumber(v: number, s: Record<string, unknown>, err: (m: string) => void): void {
  if (typeof s.minimum === "number" && v < s.minimum) err(`must be >= ${s.minimum}`);
  if (typeof s.maximum === "number" && v > s.maximum) err(`must be <= ${s.maximum}`);
  if (typeof s.exclusiveMinimum === "number" && v <= s.exclusiveMinimum) err(`must be > ${s.exclusiveMinimum}`);
  if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum) err(`must be < ${s.exclusiveMaximum}`);
  if (typeof s.multipleOf === "number") {
    const q = v / s.multipleOf;
    if (Math.abs(q - Math.round(q)) > 1e-9) err(`must be a multiple of ${s.multipleOf}`);
  }
}

function checkString(v: string, s: Record<string, unknown>, err: (m: string) => void): void {
  const len = [...v].length;
  if (typeof s.minLength === "number" && len < s.minLength) err(`shorter than ${s.minLength}`);
  if (typeof s.maxLength === "number" && len > s.maxLength) err(`longer than ${s.maxLength}`);
  if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(v)) err(`does not match /${s.pattern}/`);
}

function checkArray(v: unknown[], s: Record<string, unknown>, path: string, ctx: Ctx, err: (m: string) => void): void {
  if (typeof s.minItems === "number" && v.length < s.minItems) err(`fewer than ${s.minItems} items`);
  if (typeof s.maxItems === "number" && v.length > s.maxItems) err(`more than ${s.maxItems} items`);
  if (s.uniqueItems === true && v.some((x, i) => v.findIndex((y) => deepEqual(x, y)) !== i)) err("items are not unique");
  const tuple = Array.isArray(s.prefixItems) ? (s.prefixItems as Schema[]) : Array.isArray(s.items) ? (s.items as Schema[]) : [];
  tuple.forEach((sub, i) => i < v.length && check(v[i], sub, `${path}/${i}`, ctx));
  const rest = Array.isArray(s.items) ? (s.additionalItems as Schema | undefined) : (s.items as Schema | undefined);
  if (rest !== undefined) for (let i = tuple.length; i < v.length; i++) check(v[i], rest, `${path}/${i}`, ctx);
  if (s.contains !== undefined && !v.some((x) => isValid(x, s.contains as Schema, ctx.root))) err("no item matches 'contains'");
}

function checkObject(v: Record<string, unknown>, s: Record<string, unknown>, path: string, ctx: Ctx, err: (m: string) => void): void {
  const keys = Object.keys(v);
  if (Array.isArray(s.required)) for (const k of s.required as string[]) if (!(k in v)) err(`missing required property '${k}'`);
  if (typeof s.minProperties === "number" && keys.length < s.minProperties) err(`fewer than ${s.minProperties} properties`);
  if (typeof s.maxProperties === "number" && keys.length > s.maxProperties) err(`more than ${s.maxProperties} properties`);
  const props = (s.properties ?? {}) as Record<string, Schema>;
  const pats = Object.entries((s.patternProperties ?? {}) as Record<string, Schema>).map(([p, sub]) => [new RegExp(p, "u"), sub] as const);
  for (const k of keys) {
    const p = `${path}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
    let matched = false;
    if (k in props) { matched = true; check(v[k], props[k]!, p, ctx); }
    for (const [re, sub] of pats) if (re.test(k)) { matched = true; check(v[k], sub, p, ctx); }
    if (!matched && s.additionalProperties !== undefined) {
      if (s.additionalProperties === false) ctx.errors.push({ path: p, message: `additional property '${k}' is not allowed` });
      else check(v[k], s.additionalProperties as Schema, p, ctx);
    }
  }
}

function checkCombinators(v: unknown, s: Record<string, unknown>, path: string, ctx: Ctx, err: (m: string) => void): void {
  if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) check(v, sub, path, ctx);
  if (Array.isArray(s.anyOf) && !(s.anyOf as Schema[]).some((sub) => isValid(v, sub, ctx.root))) err("matches none of anyOf");
  if (Array.isArray(s.oneOf)) {
    const n = (s.oneOf as Schema[]).filter((sub) => isValid(v, sub, ctx.root)).length;
    if (n !== 1) err(`matches ${n} of oneOf (exactly 1 required)`);
  }
  if (s.not !== undefined && isValid(v, s.not as Schema, ctx.root)) err("must not match 'not'");
  if (s.if !== undefined) {
    const branch = isValid(v, s.if as Schema, ctx.root) ? s.then : s.else;
    if (branch !== undefined) check(v, branch as Schema, path, ctx);
  }
}

function isValid(v: unknown, s: Schema, root: Schema): boolean {
  const ctx: Ctx = { root, errors: [] };
  check(v, s, "", ctx);
  return ctx.errors.length === 0;
}

/** Validates `value` against `schema`; an empty list means valid. */
export function validateJsonSchema(value: unknown, schema: Schema): SchemaError[] {
  const ctx: Ctx = { root: schema, errors: [] };
  check(value, schema, "", ctx);
  return ctx.errors;
}
