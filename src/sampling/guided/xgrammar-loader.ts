// Loads XGrammar (npm `@mlc-ai/web-xgrammar`, the C++ engine compiled to WASM) in Node.
//
// Why a shim: the package ships one UMD bundle (lib/index.js) in a `"type": "module"` package, so
// Node loads it as ESM, where the bundle's Emscripten prelude calls `require("url")` and reads
// `__filename` (both undefined in ESM) and, on first use, runs `await import("module")` to get
// `createRequire`. We compile the bundle's text as a CommonJS-style function instead (vm
// compileFunction with exports/module/require/__filename/__dirname parameters), replacing the one
// dynamic `import("module")` with `require("module")` (a dynamic import inside vm-compiled code
// needs an experimental flag). Nothing is put on globalThis. The WASM binary is embedded in the
// bundle; the binding initializes itself lazily on the first call (~30 ms). The shim also exports
// the binding (`__binding`) so that a step's masks can be computed synchronously (state.ts).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import vm from "node:vm";
import type * as XG from "@mlc-ai/web-xgrammar";

export type XGrammar = typeof XG;

const DYNAMIC_IMPORT = "await import('module')";
/** where the bundle starts exporting; the shim also exports the (lazily initialized) binding there */
const EXPORTS_START = "exports.CompiledGrammar = CompiledGrammar;";

/** The parts of the Emscripten binding the synchronous mask path uses. */
export interface XGrammarBinding {
  vecIntToView(v: unknown): Int32Array;
  vecIntFromJSArray(a: number[]): unknown;
  GrammarMatcher: new (compiled: unknown, stop: unknown, terminateWithoutStop: boolean, maxRollback: number) => unknown;
}

let loaded: XGrammar | undefined;
let getBinding: (() => XGrammarBinding | null) | undefined;

/** The XGrammar module (loaded once per process). */
export function loadXGrammar(): XGrammar {
  if (loaded) return loaded;
  const req = createRequire(import.meta.url);
  const entry = req.resolve("@mlc-ai/web-xgrammar");
  const src = readFileSync(entry, "utf8");
  if (!src.includes(DYNAMIC_IMPORT) || !src.includes(EXPORTS_START) || !src.includes("let binding = null;")) {
    throw new Error(`@mlc-ai/web-xgrammar: ${entry} no longer has the expected bundle layout; update the loader shim`);
  }
  const patched = src.replace(DYNAMIC_IMPORT, "require('module')")
    .replace(EXPORTS_START, `exports.__binding = () => binding;\n  ${EXPORTS_START}`);
  const fn = vm.compileFunction(patched, ["exports", "module", "require", "__filename", "__dirname"], { filename: entry });
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  fn.call(undefined, mod.exports, mod, createRequire(entry), entry, dirname(entry));
  getBinding = mod.exports.__binding as () => XGrammarBinding | null;
  loaded = mod.exports as unknown as XGrammar;
  return loaded;
}

/**
 * The WASM binding, for synchronous calls; null until the first async XGrammar call has
 * initialized it (creating any TokenizerInfo / matcher does).
 */
export function xgrammarBinding(): XGrammarBinding | null {
  loadXGrammar();
  return getBinding!();
}
