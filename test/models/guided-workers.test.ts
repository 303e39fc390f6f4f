// The executor with grammar masks on worker threads (TLLM_GUIDED_WORKERS=2, ParallelGuidedDecoder)
// against the same executor with masks in-thread (TLLM_GUIDED_WORKERS=0): the same seeded guided
// requests (regex, JSON schema, n = 2) give the same tokens, and the texts obey their grammars.
// The variable is read when an executor creates its decoder, at its first guided request.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureFixture } from "../../src/checkpoint/random-model.js";
import { WorkerExecutor, type FinalOutput } from "../../src/executor/index.js";
import type { GuidedDecodingParams } from "../../src/sampling/params.js";
import { EXECUTOR_SPEC } from "./fixtures.js";

const SCHEMA = { type: "object", properties: { id: { type: "integer" }, tag: { type: "string", enum: ["a", "b"] } }, required: ["id", "tag"] };
const JOBS: { guide: GuidedDecodingParams; n: number; check: (t: string) => void }[] = [
  { guide: { regex: "[0-9]{3}" }, n: 2, check: (t) => assert.match(t, /^[0-9]{3}$/) },
  { guide: { regex: "(yes|no)" }, n: 1, check: (t) => assert.match(t, /^(yes|no)$/) },
  { guide: { json: SCHEMA }, n: 1, check: (t) => {
    const o = JSON.parse(t) as { id: unknown; tag: unknown };
    assert.ok(Number.isInteger(o.id) && (o.tag === "a" || o.tag === "b"), t);
  } },
];
let model = "";
const saved = process.env["TLLM_GUIDED_WORKERS"];

before(async () => {
  model = (await ensureFixture(EXECUTOR_SPEC, join(tmpdir(), "tllm-test-fixtures"))).gguf;
});
after(() => {
  if (saved === undefined) delete process.env["TLLM_GUIDED_WORKERS"];
  else process.env["TLLM_GUIDED_WORKERS"] = saved;
});

async function runAll(workers: string): Promise<FinalOutput[]> {
  process.env["TLLM_GUIDED_WORKERS"] = workers;
  const ex = await WorkerExecutor.create({ model, threads: 2, log: false, kvCacheConfig: { maxTokens: 4096 } });
  try {
    return await Promise.all(JOBS.flatMap((j, i) => [0, 1, 2].map((k) =>
      ex.generateAsync([5 + i, 9 + k, 300 + 7 * k], { maxTokens: 40, temperature: 1, seed: 11 * i + k, n: j.n, guidedDecoding: j.guide }).promise)));
  } finally {
    await ex.shutdown();
  }
}

test("masks on worker threads: the same guided outputs as in-thread, every output valid", async () => {
  const par = await runAll("2"), serial = await runAll("0");
  par.forEach((o, i) => {
    const job = JOBS[Math.floor(i / 3)]!;
    assert.equal(o.outputs.length, job.n);
    o.outputs.forEach((c, k) => {
      job.check(c.text);
      assert.equal(c.finishReason, "stop");
      assert.deepEqual(c.tokenIds, serial[i]!.outputs[k]!.tokenIds, `request ${i} output ${k}`);
    });
  });
});
