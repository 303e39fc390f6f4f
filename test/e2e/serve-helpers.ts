// Shared by the serve e2e tests: a tiny random-weight Llama (the real Llama-2 SPM vocabulary), a
// ChatML chat template with Hermes-style tools, and `tllm serve` started as a real child process on
// 127.0.0.1 with a random port, parsed from its startup line.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GgmlType } from "../../src/backends/dtypes.js";
import { ensureFixture, type RandomModelSpec } from "../../src/checkpoint/random-model.js";
import { parsePrometheusText, type PromSample } from "../../src/bench/openai-client.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CACHE = join(ROOT, ".cache", "fixtures");

/** Small enough that the reference backend generates hundreds of tokens per second on one core. */
export const SERVE_SPEC: RandomModelSpec = {
  arch: "llama", vocab: join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), hidden: 64, layers: 2, heads: 4,
  kvHeads: 2, headDim: 16, ffn: 128, tieEmbeddings: false, qkvBias: false, qkNorm: false, ropeTheta: 10000,
  rmsEps: 1e-5, maxPositions: 512, seed: 777, weightTypes: GgmlType.F32,
};

export const CHATML = `{%- if tools %}<|im_start|>system
You may call functions. Tools:
{%- for t in tools %}
{{ t.function | tojson }}
{%- endfor %}
Reply with <tool_call>{"name": ..., "arguments": ...}</tool_call>.<|im_end|>
{% endif %}
{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content if m.content else "" }}<|im_end|>
{% endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}`;

export async function fixtureModel(): Promise<string> {
  return (await ensureFixture(SERVE_SPEC, CACHE)).gguf;
}

/** Writes the ChatML template and a YAML config (reference backend: exact, batch-invariant). */
export function writeServeFiles(dir: string, yaml = "backend: reference\nmax_seq_len: 256\nmax_beam_width: 4\n"): { template: string; config: string } {
  mkdirSync(dir, { recursive: true });
  const template = join(dir, "chatml.jinja"), config = join(dir, "llm_args.yaml");
  writeFileSync(template, CHATML);
  writeFileSync(config, yaml);
  return { template, config };
}

export interface ServerProc {
  url: string;
  proc: ChildProcess;
  /** everything written to stderr so far */
  log: () => string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
  stop: () => Promise<number | null>;
}

/** Spawns `tllm serve MODEL --port 0 ...args` and waits for its "listening on URL" line. */
export async function startServer(model: string, args: string[], timeoutMs = 60_000): Promise<ServerProc> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "serve", model, "--port", "0", "--log-level", "info", ...args], {
    cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TLLM_LOG_LEVEL: "warn" },
  });
  let err = "";
  const exited = new Promise<number | null>((ok) => proc.on("exit", (code) => ok(code)));
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start in ${timeoutMs} ms:\n${err}`)), timeoutMs);
    proc.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); ok(m[1]!); }
    });
    void exited.then((code) => { clearTimeout(timer); fail(new Error(`server exited (${code}) before listening:\n${err}`)); });
  });
  proc.stdout!.resume();
  const stop = async () => {
    if (proc.exitCode === null) proc.kill("SIGTERM");
    return exited;
  };
  return { url, proc, log: () => err, exited, stop };
}

export async function scrape(url: string): Promise<PromSample[]> {
  const r = await fetch(`${url}/metrics`);
  if (!r.ok) throw new Error(`/metrics: HTTP ${r.status}`);
  return parsePrometheusText(await r.text());
}

export function metric(samples: PromSample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (s.length === 0) throw new Error(`metric ${name} ${JSON.stringify(labels)} not exposed`);
  return s.reduce((a, x) => a + x.value, 0);
}

export async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
  const r = await fetch(url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await r.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

/** Reads an SSE completion stream; returns the parsed chunks (without [DONE]) and whether [DONE] came. */
export async function readSse(res: Response): Promise<{ chunks: any[]; done: boolean }> {
  const text = await res.text();
  const chunks: any[] = [];
  let done = false;
  for (const ev of text.split("\n\n")) {
    const line = ev.trim();
    if (!line.startsWith("data: ")) continue;
    const d = line.slice(6);
    if (d === "[DONE]") done = true;
    else chunks.push(JSON.parse(d));
  }
  return { chunks, done };
}
