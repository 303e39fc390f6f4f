// `tllm bench` end to end: prepare-dataset's JSONL, `bench throughput` on a tiny random-weight model
// in-process, and `bench serve` against a stand-in OpenAI server written here (node:http, SSE).
// Expected counts come from the flags and the datasets, not from the code under test.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 256, seed: 4242, weightTypes: GgmlType.Q8_0,
};
const VOCAB = 32000; // ggml-vocab-llama-spm.gguf: BOS = 1, EOS = 2
let model = "";
let dir = "";

/** Runs the CLI asynchronously (the stand-in server lives in this process's event loop). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
      cwd: ROOT, env: { ...process.env, TLLM_LOG_LEVEL: "warn" },
    });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill(), 60_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
  });
}

interface Line { task_id: number; input_ids: number[]; output_tokens: number }
const readJsonl = <T>(f: string): T[] => readFileSync(f, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as T);

before(async () => {
  model = (await ensureFixture(SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
  dir = mkdtempSync(join(tmpdir(), "tllm-bench-cli-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("tllm bench prepare-dataset", () => {
  test("token-norm-dist: N lines, task ids 0..N-1, ids in the vocabulary minus BOS/EOS, seeded", async () => {
    const out = join(dir, "norm.jsonl");
    const flags = ["--num-requests", "20", "--input-mean", "30", "--input-stdev", "5", "--output-mean", "10", "--output-stdev", "0"];
    const r = await cli(["bench", "prepare-dataset", "--model", model, "--output", out, "token-norm-dist", ...flags]);
    assert.equal(r.code, 0, r.stderr);
    const lines = readJsonl<Line>(out);
    assert.equal(lines.length, 20);
    lines.forEach((l, i) => {
      assert.deepEqual(Object.keys(l), ["task_id", "input_ids", "output_tokens"]);
      assert.equal(l.task_id, i);
      assert.equal(l.output_tokens, 10); // stdev 0: exactly the mean
      assert.ok(l.input_ids.length >= 1);
      for (const id of l.input_ids) assert.ok(Number.isInteger(id) && id >= 0 && id < VOCAB && id !== 1 && id !== 2, `id ${id}`);
    });
    const meanLen = lines.reduce((a, l) => a + l.input_ids.length, 0) / lines.length;
    assert.ok(Math.abs(meanLen - 30) < 5, `mean input length ${meanLen} (N(30, 5), 20 draws: se ~1.1)`);
    // same seed, same file; another seed, another file
    const again = join(dir, "norm2.jsonl"), other = join(dir, "norm3.jsonl");
    assert.equal((await cli(["bench", "prepare-dataset", "--model", model, "--output", again, "token-norm-dist", ...flags])).code, 0);
    assert.equal((await cli(["bench", "prepare-dataset", "--model", model, "--output", other, "--random-seed", "7", "token-norm-dist", ...flags])).code, 0);
    assert.equal(readFileSync(again, "utf8"), readFileSync(out, "utf8"));
    assert.notEqual(readFileSync(other, "utf8"), readFileSync(out, "utf8"));
  });

  test("token-unif-dist: lengths within [min, max]", async () => {
    const out = join(dir, "unif.jsonl");
    const r = await cli(["bench", "prepare-dataset", "--model", model, "--output", out, "token-unif-dist", "--num-requests", "15",
      "--input-min", "4", "--input-max", "9", "--output-min", "2", "--output-max", "3"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = readJsonl<Line>(out);
    assert.equal(lines.length, 15);
    for (const l of lines) {
      assert.ok(l.input_ids.length >= 4 && l.input_ids.length <= 9, `isl ${l.input_ids.length}`);
      assert.ok(l.output_tokens >= 2 && l.output_tokens <= 3, `osl ${l.output_tokens}`);
    }
  });

  test("usage errors exit 2", async () => {
    assert.equal((await cli(["bench", "prepare-dataset", "--model", model, "--output", join(dir, "x.jsonl"), "token-norm-dist"])).code, 2);
    assert.equal((await cli(["bench", "nonsense"])).code, 2);
    assert.equal((await cli(["bench", "throughput", "--dataset", "x.jsonl"])).code, 2); // no --model
  });
});

describe("tllm bench throughput / serve", () => {
  test("throughput on the tiny model reports every request with its exact token counts", async () => {
    const ds = join(dir, "tp.jsonl"), rep = join(dir, "tp.json"), req = join(dir, "tp-req.jsonl");
    const p = await cli(["bench", "prepare-dataset", "--model", model, "--output", ds, "token-unif-dist", "--num-requests", "6",
      "--input-min", "8", "--input-max", "24", "--output-min", "3", "--output-max", "9"]);
    assert.equal(p.code, 0, p.stderr);
    const r = await cli(["bench", "throughput", "--model", model, "--dataset", ds, "--backend", "reference", "--streaming",
      "--report-json", rep, "--request-json", req]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Number of requests:\s+6$/m);
    assert.match(r.stdout, /^Number of failed requests:\s+0$/m);
    const j = JSON.parse(readFileSync(rep, "utf8")) as { request_info: { num_requests: number }; dataset: { total_output_tokens: number } };
    const lines = readJsonl<Line>(ds);
    assert.equal(j.request_info.num_requests, 6);
    // ignoreEos: every request generates exactly its output_tokens
    assert.equal(j.dataset.total_output_tokens, lines.reduce((a, l) => a + l.output_tokens, 0));
    const recs = readJsonl<{ ttft_ms: number; e2e_ms: number; input_tokens: number; output_tokens: number; chunks: number }>(req);
    assert.equal(recs.length, 6);
    recs.forEach((x, i) => {
      assert.equal(x.input_tokens, lines[i]!.input_ids.length);
      assert.equal(x.output_tokens, lines[i]!.output_tokens);
      assert.equal(x.chunks, lines[i]!.output_tokens); // one streamed event per token
      assert.ok(x.ttft_ms > 0 && x.ttft_ms <= x.e2e_ms, JSON.stringify(x));
    });
  });

  test("serve against a stand-in OpenAI server: every request sent is reported, TTFT <= E2E", async () => {
    let received = 0;
    const server: Server = createServer((rq, rs) => {
      if (rq.method !== "POST" || rq.url !== "/v1/completions") {
        rs.writeHead(404).end(); // e.g. GET /metrics: no cache counters here
        return;
      }
      let body = "";
      rq.on("data", (d: Buffer) => (body += d.toString()));
      rq.on("end", async () => {
        received++;
        const b = JSON.parse(body) as { max_tokens: number; stream: boolean; prompt: number[] };
        rs.writeHead(200, { "content-type": "text/event-stream" });
        for (let i = 0; i < b.max_tokens; i++) {
          await new Promise((w) => setTimeout(w, 2));
          rs.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: "x", finish_reason: null }] })}\n\n`);
        }
        rs.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: b.prompt.length, completion_tokens: b.max_tokens } })}\n\n`);
        rs.end("data: [DONE]\n\n");
      });
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    try {
      const port = (server.address() as { port: number }).port;
      const ds = join(dir, "serve.jsonl"), rep = join(dir, "serve.json"), req = join(dir, "serve-req.jsonl");
      const p = await cli(["bench", "prepare-dataset", "--model", model, "--output", ds, "token-unif-dist", "--num-requests", "9",
        "--input-min", "5", "--input-max", "12", "--output-min", "2", "--output-max", "6"]);
      assert.equal(p.code, 0, p.stderr);
      const r = await cli(["bench", "serve", "--base-url", `http://127.0.0.1:${port}`, "--model", "stand-in", "--dataset", ds,
        "--warmup", "1", "--concurrency", "3", "--request-rate", "200", "--report-json", rep, "--request-json", req]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(received, 9); // 1 warmup + 8 measured
      assert.match(r.stdout, /^Number of requests:\s+8$/m);
      assert.match(r.stdout, /^Maximum request concurrency:\s+3$/m);
      const j = JSON.parse(readFileSync(rep, "utf8")) as { request_info: { num_requests: number; concurrency: number } };
      assert.equal(j.request_info.num_requests, 8);
      const lines = readJsonl<Line>(ds).slice(1);
      const recs = readJsonl<{ ttft_ms: number; e2e_ms: number; input_tokens: number; output_tokens: number }>(req);
      assert.equal(recs.length, 8);
      recs.forEach((x, i) => {
        assert.equal(x.output_tokens, lines[i]!.output_tokens);
        assert.equal(x.input_tokens, lines[i]!.input_ids.length);
        assert.ok(x.ttft_ms >= 0 && x.ttft_ms <= x.e2e_ms, JSON.stringify(x));
      });
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });
});
