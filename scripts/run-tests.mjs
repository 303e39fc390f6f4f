#!/usr/bin/env node
// Runs the test tiers with node's built-in runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [tier...]   tiers: unit kernels models e2e gpu (default: all)
// Node 20's `--test` takes no globs, so the files are listed here.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const ALL = ["unit", "kernels", "models", "e2e", "gpu"];
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
for (const t of tiers) if (!ALL.includes(t)) { console.error(`unknown test tier '${t}' (tiers: ${ALL.join(", ")})`); process.exit(2); }

function list(dir) {
  let out = [];
  let names = [];
  try { names = readdirSync(dir).sort(); } catch { return out; }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(list(p));
    else if (/\.test\.(ts|mjs|js)$/.test(n)) out.push(p);
  }
  return out;
}

const files = tiers.flatMap((t) => list(join("test", t)));
if (files.length === 0) { console.error("no test files found"); process.exit(1); }
// Files run one at a time: the machine has 2 cores and the model tiers use both.
const args = ["--import", "tsx", "--test", "--test-concurrency=1", ...files];
const r = spawnSync(process.execPath, args, { stdio: "inherit", env: { ...process.env, TLLM_LOG_LEVEL: process.env.TLLM_LOG_LEVEL ?? "warn" } });
process.exit(r.status ?? 1);
