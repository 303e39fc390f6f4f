// Hub downloads against a local imitation of the hub's file API (test/e2e/fake-hub-server.ts):
// cache layout, offline reuse, resume after a dropped connection, bearer token for gated repos.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { downloadFromHub, type HubDownloadOptions } from "../../src/checkpoint/hub.js";
import { readGgufMetadata } from "../../src/checkpoint/gguf.js";
import { CheckpointError } from "../../src/errors.js";
import { FakeHub, etagOf } from "./fake-hub-server.js";
import { parseHubSpec, resolveModel } from "../../src/checkpoint/resolve-model.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { GgmlType } from "../../src/backends/dtypes.js";
import { LLM } from "../../src/api/llm.js";

const GGUF = readFileSync(join(import.meta.dirname, "../fixtures/vocab/ggml-vocab-llama-spm.gguf"));
const CONFIG = Buffer.from(JSON.stringify({ architectures: ["LlamaForCausalLM"], hidden_size: 64 }));
const TOKENIZER = Buffer.from(JSON.stringify({ model: { type: "BPE", vocab: {} } }));
const WEIGHTS = randomBytes(300_000);

const hub = new FakeHub();
let url = "";
const tmp = mkdtempSync(join(tmpdir(), "tllm-hub-"));

before(async () => {
  hub.addRepo({ id: "acme/tiny-gguf", files: { "tiny.gguf": GGUF, "README.md": Buffer.from("# tiny\n") } });
  hub.addRepo({
    id: "acme/tiny-hf",
    files: {
      "config.json": CONFIG, "tokenizer.json": TOKENIZER, "model.safetensors": WEIGHTS,
      "pytorch_model.bin": randomBytes(100), "original/consolidated.pth": randomBytes(100),
      "consolidated.safetensors": randomBytes(100),
    },
  });
  hub.addRepo({ id: "acme/two-ggufs", files: { "a-Q8_0.gguf": GGUF, "a-F16.gguf": GGUF } });
  hub.addRepo({ id: "acme/gated", token: "hf_secret", files: { "m.gguf": GGUF } });
  url = await hub.start();
});
after(async () => {
  await hub.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** a fresh HF_HOME per test, the hub at HF_ENDPOINT */
function env(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { HF_HOME: join(tmp, name), HF_ENDPOINT: url, ...extra };
}
function opts(o: Partial<HubDownloadOptions> & { repo: string; env: NodeJS.ProcessEnv }): HubDownloadOptions {
  return { progress: false, log: () => {}, ...o };
}
function resolveRequests(since: number): typeof hub.requests {
  return hub.requests.slice(since).filter((r) => r.url.includes("/resolve/"));
}

test("a GGUF file lands in the HF cache layout and reads back", async () => {
  const e = env("gguf");
  const r = await downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e }));
  const sha = hub.shaOf("acme/tiny-gguf");
  const repoDir = join(e["HF_HOME"]!, "hub", "models--acme--tiny-gguf");
  assert.equal(r.commit, sha);
  assert.equal(r.path, join(repoDir, "snapshots", sha, "tiny.gguf"));
  assert.equal(r.fromCache, false);
  assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), sha);
  assert.ok(lstatSync(r.path).isSymbolicLink());
  const target = resolve(dirname(r.path), readlinkSync(r.path));
  assert.equal(target, join(repoDir, "blobs", etagOf("tiny.gguf", GGUF)));
  assert.ok(readFileSync(r.path).equals(GGUF));
  assert.equal(readGgufMetadata(r.path).get("general.architecture"), "llama");
  assert.deepEqual(readdirSync(join(repoDir, "snapshots", sha)), ["tiny.gguf"], "only the named file is fetched");
  assert.ok(hub.requests.every((q) => q.authorization === undefined), "no token set, none sent");
});

test("bytes that do not match the LFS sha256 are rejected and removed", async () => {
  const e = env("corrupt");
  hub.corrupt.add("tiny.gguf");
  try {
    await assert.rejects(downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e })),
      (err: unknown) => err instanceof CheckpointError && err.field === "sha256");
  } finally {
    hub.corrupt.delete("tiny.gguf");
  }
  const blobs = join(e["HF_HOME"]!, "hub", "models--acme--tiny-gguf", "blobs");
  assert.deepEqual(readdirSync(blobs), [], "neither a blob nor a partial file is left");
  const r = await downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e }));
  assert.ok(readFileSync(r.path).equals(GGUF));
});

test("an HF directory: config, tokenizer and HF-named safetensors only, other weight copies skipped", async () => {
  const e = env("hfdir");
  const r = await downloadFromHub(opts({ repo: "acme/tiny-hf", env: e }));
  const snap = join(e["HF_HOME"]!, "hub", "models--acme--tiny-hf", "snapshots", hub.shaOf("acme/tiny-hf"));
  assert.equal(r.path, snap);
  assert.deepEqual(readdirSync(snap).sort(), ["config.json", "model.safetensors", "tokenizer.json"]);
  assert.ok(readFileSync(join(snap, "model.safetensors")).equals(WEIGHTS));
  assert.ok(readFileSync(join(snap, "config.json")).equals(CONFIG));
  const blobs = readdirSync(join(e["HF_HOME"]!, "hub", "models--acme--tiny-hf", "blobs")).sort();
  assert.deepEqual(blobs, [etagOf("config.json", CONFIG), etagOf("model.safetensors", WEIGHTS), etagOf("tokenizer.json", TOKENIZER)].sort());
});

test("a deleted blob is fetched again (its dangling snapshot link is replaced)", async () => {
  const e = env("dangling");
  const r = await downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e }));
  rmSync(resolve(dirname(r.path), readlinkSync(r.path)));
  const again = await downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e }));
  assert.equal(again.fromCache, false);
  assert.ok(readFileSync(again.path).equals(GGUF));
});

test("a second run is served from the cache: online without downloads, offline without requests", async () => {
  const e = env("again");
  await downloadFromHub(opts({ repo: "acme/tiny-hf", env: e }));
  let n = hub.requests.length;
  const online = await downloadFromHub(opts({ repo: "acme/tiny-hf", env: e }));
  assert.equal(online.fromCache, true);
  assert.equal(resolveRequests(n).length, 0, "no file bytes fetched again");
  n = hub.requests.length;
  const offline = await downloadFromHub(opts({ repo: "acme/tiny-hf", env: { ...e, HF_HUB_OFFLINE: "1" } }));
  assert.equal(hub.requests.length, n, "HF_HUB_OFFLINE=1 makes no request");
  assert.equal(offline.path, online.path);
  assert.deepEqual(offline.files, ["config.json", "model.safetensors", "tokenizer.json"]);
});

test("when the hub is unreachable, the cached snapshot is used; nothing cached is a CheckpointError", async () => {
  const e = env("unreachable");
  const first = await downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e }));
  const dead = { ...e, HF_ENDPOINT: "http://127.0.0.1:9" }; // discard port: connection refused
  const lines: string[] = [];
  const again = await downloadFromHub({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: dead, progress: false, log: (l) => lines.push(l) });
  assert.equal(again.path, first.path);
  assert.equal(again.fromCache, true);
  assert.match(lines.join("\n"), /unreachable/);
  await assert.rejects(downloadFromHub(opts({ repo: "acme/tiny-hf", env: dead })),
    (err: unknown) => err instanceof CheckpointError && err.field === "cache");
  await assert.rejects(downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "other.gguf", env: { ...e, HF_HUB_OFFLINE: "1" } })),
    (err: unknown) => err instanceof CheckpointError && err.field === "cache");
});

test("a download cut halfway resumes with a Range request and ends byte-exact", async () => {
  const e = env("resume");
  hub.dropOnce.add("model.safetensors");
  const n = hub.requests.length;
  const r = await downloadFromHub(opts({ repo: "acme/tiny-hf", env: e }));
  assert.ok(readFileSync(join(r.path, "model.safetensors")).equals(WEIGHTS));
  const gets = resolveRequests(n).filter((q) => q.url.endsWith("/model.safetensors"));
  assert.equal(gets.length, 2, "one cut request, one resumed request");
  assert.equal(gets[0]!.range, undefined);
  const from = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? "")?.[1]);
  assert.ok(from > 0 && from <= WEIGHTS.byteLength / 2, `resumed from byte ${from}, after the bytes already written`);
  const blobDir = join(e["HF_HOME"]!, "hub", "models--acme--tiny-hf", "blobs");
  assert.equal(readdirSync(blobDir).filter((f) => f.endsWith(".incomplete")).length, 0);
});

test("a partial file left by an earlier run is resumed, not restarted", async () => {
  const e = env("resume-run");
  const blob = join(e["HF_HOME"]!, "hub", "models--acme--tiny-gguf", "blobs", etagOf("tiny.gguf", GGUF));
  mkdirSync(dirname(blob), { recursive: true });
  writeFileSync(`${blob}.incomplete`, GGUF.subarray(0, 12345));
  const n = hub.requests.length;
  const r = await downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "tiny.gguf", env: e }));
  assert.ok(readFileSync(r.path).equals(GGUF));
  assert.deepEqual(resolveRequests(n).map((q) => q.range), ["bytes=12345-"]);
  assert.equal(existsSync(`${blob}.incomplete`), false);
});

test("HF_TOKEN is sent as a bearer; a gated repo without it is a CheckpointError on 'access'", async () => {
  await assert.rejects(downloadFromHub(opts({ repo: "acme/gated", file: "m.gguf", env: env("gated-no") })),
    (err: unknown) => err instanceof CheckpointError && err.field === "access" && /HF_TOKEN/.test(err.message));
  const n = hub.requests.length;
  const r = await downloadFromHub(opts({ repo: "acme/gated", file: "m.gguf", env: env("gated-yes", { HF_TOKEN: "hf_secret" }) }));
  assert.ok(readFileSync(r.path).equals(GGUF));
  const sent = hub.requests.slice(n);
  assert.ok(sent.length >= 3, "info, tree and file requests");
  for (const q of sent) assert.equal(q.authorization, "Bearer hf_secret", q.url);
});

test("a repo with several GGUFs asks for one by name; unknown repo and file are CheckpointErrors", async () => {
  await assert.rejects(downloadFromHub(opts({ repo: "acme/two-ggufs", env: env("two") })),
    (err: unknown) => err instanceof CheckpointError && err.field === "file" && /a-Q8_0\.gguf/.test(err.message));
  const r = await downloadFromHub(opts({ repo: "acme/two-ggufs", file: "a-F16.gguf", env: env("two") }));
  assert.ok(r.path.endsWith("a-F16.gguf"));
  await assert.rejects(downloadFromHub(opts({ repo: "acme/nope", env: env("nope") })),
    (err: unknown) => err instanceof CheckpointError && err.field === "repo");
  await assert.rejects(downloadFromHub(opts({ repo: "acme/tiny-gguf", file: "x.gguf", env: env("nofile") })),
    (err: unknown) => err instanceof CheckpointError && err.field === "file");
});

test("model specs: org/name[:file] parse as hub ids; local paths do not reach the hub", async () => {
  assert.deepEqual(parseHubSpec("acme/tiny"), { repo: "acme/tiny" });
  assert.deepEqual(parseHubSpec("acme/tiny:sub/m-Q8_0.gguf"), { repo: "acme/tiny", file: "sub/m-Q8_0.gguf" });
  assert.equal(parseHubSpec("acme"), null);
  assert.equal(parseHubSpec("acme/tiny:"), null);
  assert.equal(parseHubSpec("a/b/c"), null);
  const dir = join(tmp, "local-one");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "only.gguf"), GGUF);
  const n = hub.requests.length;
  assert.deepEqual(await resolveModel(dir, { env: env("local") }), { path: join(dir, "only.gguf"), format: "gguf", source: "local" });
  assert.equal(hub.requests.length, n, "a local path makes no request");
  const empty = join(tmp, "local-empty");
  mkdirSync(empty, { recursive: true });
  await assert.rejects(resolveModel(empty, { env: env("local") }), (e: unknown) => e instanceof CheckpointError && e.field === "path");
  await assert.rejects(resolveModel("./missing.gguf", { env: env("local") }), (e: unknown) => e instanceof CheckpointError && e.field === "model");
});

test("LLM loads a hub GGUF (org/name:file) through HF_ENDPOINT and generates; offline it reuses the cache", async () => {
  const spec: RandomModelSpec = {
    arch: "llama", vocab: join(import.meta.dirname, "../fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 1,
    heads: 4, kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: true, qkvBias: false, qkNorm: false, ropeTheta: 10000,
    rmsEps: 1e-5, maxPositions: 128, seed: 99, weightTypes: GgmlType.Q8_0,
  };
  const bytes = readFileSync((await ensureFixture(spec, join(tmpdir(), "tllm-test-fixtures"))).gguf);
  hub.addRepo({ id: "acme/rand", files: { "rand-Q8_0.gguf": bytes, "README.md": Buffer.from("hi") } });
  const home = join(tmp, "llm-home");
  const saved = { HF_HOME: process.env["HF_HOME"], HF_ENDPOINT: process.env["HF_ENDPOINT"] };
  process.env["HF_HOME"] = home;
  process.env["HF_ENDPOINT"] = url;
  try {
    const llm = await LLM.create({ model: "acme/rand:rand-Q8_0.gguf" });
    assert.equal(llm.source.source, "hub");
    assert.equal(llm.source.commit, hub.shaOf("acme/rand"));
    assert.ok(llm.source.path.startsWith(join(home, "hub", "models--acme--rand", "snapshots")));
    const out = await llm.generate("Hello", { maxTokens: 4, ignoreEos: true });
    await llm.shutdown();
    assert.equal(out.outputs[0]!.tokenIds.length, 4);
    const n = hub.requests.length;
    const again = await LLM.create({ model: "acme/rand:rand-Q8_0.gguf", offline: true });
    assert.equal(hub.requests.length, n, "offline: no request");
    assert.deepEqual((await again.generate("Hello", { maxTokens: 4, ignoreEos: true })).outputs[0]!.tokenIds, out.outputs[0]!.tokenIds);
    await again.shutdown();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
