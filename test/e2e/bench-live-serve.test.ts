// [bench-eval] acceptance: `tllm bench serve` against a live `tllm serve` (a real process on
// 127.0.0.1 with a random-weight fixture) reports as many requests as it sent, with TTFT <= E2E
// for every request, and the server's /metrics count the same requests.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, fixtureModel, metric, scrape, startServer, writeServeFiles, type ServerProc } from "./serve-helpers.js";

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill(), 120_000);
    p.on("exit", (code) => { clearTimeout(timer); ok({ code, stdout, stderr }); });
  });
}
/** finished-request count; the labelled counter is absent until a request has finished */
async function finished(url: string): Promise<number> {
  const samples = await scrape(url);
  return samples.some((x) => x.name === "tllm_request_success_total") ? metric(samples, "tllm_request_success_total") : 0;
}
const readJsonl = <T>(f: string): T[] => readFileSync(f, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as T);

let dir: string, model: string, server: ServerProc;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tllm-bench-live-"));
  model = await fixtureModel();
  const { config } = writeServeFiles(dir, "backend: native\nmax_seq_len: 256\n");
  server = await startServer(model, ["--config", config, "--served-model-name", "live"]);
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("tllm bench serve against tllm serve: every request sent is reported, TTFT <= E2E", async () => {
  const ds = join(dir, "ds.jsonl"), rep = join(dir, "rep.json"), req = join(dir, "req.jsonl");
  const p = await cli(["bench", "prepare-dataset", "--model", model, "--output", ds, "token-unif-dist", "--num-requests", "12",
    "--input-min", "8", "--input-max", "40", "--output-min", "4", "--output-max", "12"]);
  assert.equal(p.code, 0, p.stderr);
  const before = await finished(server.url);
  const r = await cli(["bench", "serve", "--base-url", server.url, "--model", "live", "--dataset", ds,
    "--warmup", "2", "--concurrency", "4", "--request-rate", "inf", "--report-json", rep, "--request-json", req]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^Number of requests:\s+10$/m);
  const j = JSON.parse(readFileSync(rep, "utf8")) as { request_info: { num_requests: number } };
  assert.equal(j.request_info.num_requests, 10);
  const lines = readJsonl<{ output_tokens: number; input_ids: number[] }>(ds).slice(2);
  const recs = readJsonl<{ ttft_ms: number; e2e_ms: number; input_tokens: number; output_tokens: number }>(req);
  assert.equal(recs.length, 10);
  recs.forEach((x, i) => {
    assert.equal(x.input_tokens, lines[i]!.input_ids.length);
    assert.equal(x.output_tokens, lines[i]!.output_tokens); // ignore_eos: exactly the asked length
    assert.ok(x.ttft_ms > 0 && x.ttft_ms <= x.e2e_ms, JSON.stringify(x));
  });
  const afterCount = await finished(server.url);
  assert.equal(afterCount - before, 12, "the server finished the 2 warmup + 10 measured requests");
});
