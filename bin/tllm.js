#!/usr/bin/env node
// The `tllm` command: runs the compiled CLI in dist/ (built by `npm run build`).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("tllm: dist/cli/main.js is missing; run `npm run build` in the package directory\n");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
