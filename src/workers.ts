// Starting a worker thread on one of our modules, from dist/ (compiled .js) or from the .ts sources.
import { Worker } from "node:worker_threads";

/**
 * A Worker on `entry` (the module's URL, ending in .js in dist/ or .ts under tsx). From the .ts
 * sources (tests under tsx) a worker does not inherit tsx's loader hooks (`--import tsx` in its
 * execArgv is not applied before the entry is resolved on Node 20), so a tiny eval'd bootstrap
 * registers tsx (tsx/esm/api) in the worker first and then imports the entry.
 */
export function startModuleWorker(entry: URL, workerData: unknown): Worker {
  if (!entry.href.endsWith(".ts")) return new Worker(entry, { workerData });
  const api = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(code, { eval: true, workerData });
}

/** `name`.js next to the calling module in dist/, `name`.ts next to it under tsx. */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith(".ts") ? ".ts" : ".js"}`, callerUrl);
}
