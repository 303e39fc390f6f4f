// The OpenAI-compatible HTTP server (`tllm serve`), after trtllm-serve.
//
// HTTP layer: node:http, not fastify. Reasons: (1) SSE is the hot path and is nothing but
// `res.write("data: ...\n\n")` per token; fastify would hand us `reply.raw` for it anyway (its
// serializers and hooks do not apply to a hijacked stream), so it would add a layer only to the
// non-streaming routes; (2) every request body is validated by hand (src/serve/protocol.ts) so that
// errors come back in OpenAI's shape naming the exact parameter, which a JSON-schema validator
// would have to be re-mapped to; (3) body-size limits (413), invalid UTF-8, auth, 429 and draining
// are a few lines each on node:http; (4) no dependency. The cost of the layer is measured by
// scripts/bench-serve.ts (HTTP+SSE vs the same load in-process).
//
// Routes: POST /v1/completions, /v1/chat/completions, /tokenize, /detokenize; GET /v1/models,
// /health, /health_generate, /version, /metrics. An API key (when set) guards /v1/* only.
// Shutdown (close()): stop accepting, let in-flight requests finish (bounded by a timeout, then
// abort them), close connections.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type { LLM } from "../api/llm.js";
import { ServeEngine } from "./engine.js";
import { badRequest, errorBody, HttpError, toHttpError } from "./errors.js";
import type { ServeContext } from "./generate.js";
import { handleChat, handleCompletion } from "./handlers.js";
import { ServerMetrics } from "./metrics.js";
import { parseChatRequest, parseCompletionRequest } from "./protocol.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface ServeOptions {
  host?: string;
  /** 0 picks a free port */
  port?: number;
  /** required as `Authorization: Bearer KEY` on /v1/* when set */
  apiKey?: string | null;
  /** the model id clients use; default: the model argument */
  servedModelName?: string;
  /** chat template text overriding the model's */
  chatTemplate?: string;
  /** requests that may wait beyond maxBatchSize running ones before 429 */
  maxQueueSize?: number;
  /** request bodies above this are refused with 413 (bytes) */
  bodyLimitBytes?: number;
  /** how long close() lets in-flight requests run before aborting them (ms) */
  shutdownTimeoutMs?: number;
  logLevel?: LogLevel;
  /** where log lines go (default stderr) */
  logSink?: (line: string) => void;
}

function packageVersion(): string {
  try {
    const pkg = fileURLToPath(new URL("../../package.json", import.meta.url)); // src/serve or dist/serve
    return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: unknown, signal: AbortSignal, arrival: number) => Promise<void>;

export class TllmServer {
  readonly ctx: ServeContext;
  private readonly http: Server;
  private readonly aborts = new Set<AbortController>();
  private readonly opts: Required<Omit<ServeOptions, "apiKey" | "servedModelName" | "chatTemplate" | "logSink">> & ServeOptions;
  private readonly routes: Record<string, { method: "GET" | "POST"; run: Handler; auth: boolean }>;
  private draining: Promise<void> | null = null;
  private readonly version = packageVersion();
  private readonly created = Math.floor(Date.now() / 1000);

  private constructor(readonly llm: LLM, engine: ServeEngine, opts: ServeOptions) {
    this.opts = { host: "127.0.0.1", port: 8000, maxQueueSize: 1024, bodyLimitBytes: 4 << 20, shutdownTimeoutMs: 30_000, logLevel: "info", ...opts };
    const sink = opts.logSink ?? ((l: string) => process.stderr.write(l + "\n"));
    const min = LEVELS[this.opts.logLevel];
    const tpl = opts.chatTemplate ?? llm.tokenizer.chatTemplate;
    this.ctx = {
      engine, metrics: new ServerMetrics(() => engine.stats()),
      modelNames: [opts.servedModelName ?? llm.args.model], chatTemplate: tpl,
      log: (level, line) => { if (LEVELS[level] >= min) sink(`tllm serve [${level}] ${line}`); },
    };
    this.routes = {
      "/v1/completions": { method: "POST", auth: true, run: (_q, res, b, s, t) => handleCompletion(this.ctx, parseCompletionRequest(b), res, s, t) },
      "/v1/chat/completions": { method: "POST", auth: true, run: (_q, res, b, s, t) => handleChat(this.ctx, parseChatRequest(b), res, s, t) },
      "/v1/models": { method: "GET", auth: true, run: async (_q, res) => json(res, 200, this.models()) },
      "/health": { method: "GET", auth: false, run: async (_q, res) => this.health(res) },
      "/health_generate": { method: "GET", auth: false, run: (_q, res, _b, s) => this.healthGenerate(res, s) },
      "/version": { method: "GET", auth: false, run: async (_q, res) => json(res, 200, { version: this.version }) },
      "/metrics": { method: "GET", auth: false, run: async (_q, res) => this.metrics(res) },
      "/tokenize": { method: "POST", auth: true, run: async (_q, res, b) => json(res, 200, await this.tokenize(b)) },
      "/detokenize": { method: "POST", auth: true, run: async (_q, res, b) => json(res, 200, this.detokenize(b)) },
    };
    this.http = createServer({ requestTimeout: 0, headersTimeout: 60_000 }, (req, res) => { void this.dispatch(req, res); });
    this.http.keepAliveTimeout = 5_000;
  }

  /** Starts listening; `llm` must be loaded (LLM.create). */
  static async start(llm: LLM, opts: ServeOptions = {}): Promise<TllmServer> {
    const engine = new ServeEngine(llm, opts.maxQueueSize ?? 1024, await ServeEngine.detectGuided(llm));
    const s = new TllmServer(llm, engine, opts);
    await new Promise<void>((ok, fail) => {
      s.http.once("error", fail);
      s.http.listen(s.opts.port, s.opts.host, () => { s.http.off("error", fail); ok(); });
    });
    return s;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get url(): string {
    const h = this.opts.host.includes(":") ? `[${this.opts.host}]` : this.opts.host;
    return `http://${h}:${this.port}`;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrival = performance.now();
    const ac = new AbortController();
    this.aborts.add(ac);
    res.on("close", () => {
      if (!res.writableFinished) ac.abort(); // the client went away before the response ended
      this.aborts.delete(ac);
    });
    try {
      const path = (req.url ?? "/").split("?")[0]!;
      const route = this.routes[path];
      if (!route) throw new HttpError(404, `no route ${req.method} ${path.slice(0, 100)}`, null, "NotFoundError");
      if (req.method !== route.method) throw new HttpError(405, `${path} accepts ${route.method} only`, null, "MethodNotAllowed", { allow: route.method });
      if (route.auth) this.checkAuth(req);
      if (this.draining && route.method === "POST") throw new HttpError(503, "the server is shutting down");
      const body = route.method === "POST" ? await this.readJson(req) : undefined;
      await route.run(req, res, body, ac.signal, arrival);
    } catch (e) {
      try {
        this.fail(req, res, e);
      } catch (e2) {
        this.ctx.log("error", `could not send an error response: ${(e2 as Error).message}`);
        res.destroy();
      }
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const he = toHttpError(e);
    this.ctx.log(he.status >= 500 ? "error" : "debug", `${req.method} ${req.url} -> ${he.status}: ${he.message}${he.status >= 500 ? `\n${(e as Error)?.stack}` : ""}`);
    if (res.headersSent) {
      if (!res.writableEnded) res.end();
      return;
    }
    // a 413 leaves the rest of the body to be read and discarded (req.resume()): closing the socket
    // while the client still writes would turn the answer into a connection reset on its side
    json(res, he.status, errorBody(he), he.headers);
  }

  private checkAuth(req: IncomingMessage): void {
    const key = this.opts.apiKey;
    if (!key) return;
    const h = req.headers.authorization ?? "";
    if (h !== `Bearer ${key}`) throw new HttpError(401, h ? "invalid API key" : "missing API key (Authorization: Bearer KEY)", null, "AuthenticationError");
  }

  /** The body as JSON: 413 over the limit, 400 for invalid UTF-8 or JSON. */
  private async readJson(req: IncomingMessage): Promise<unknown> {
    const limit = this.opts.bodyLimitBytes;
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > limit) {
      req.resume();
      throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) {
        req.resume();
        throw new HttpError(413, `request body exceeds the limit of ${limit} bytes`);
      }
      chunks.push(c as Buffer);
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
    } catch {
      throw badRequest(null, "the request body is not valid UTF-8");
    }
    if (text.trim() === "") throw badRequest(null, "the request body is empty (expected a JSON object)");
    try {
      return JSON.parse(text);
    } catch (e) {
      throw badRequest(null, `the request body is not valid JSON: ${(e as Error).message}`);
    }
  }

  private models(): unknown {
    const c = this.llm.config;
    return { object: "list", data: this.ctx.modelNames.map((id) => ({ id, object: "model", created: this.created, owned_by: "tllm", max_model_len: c.maxSeqLen })) };
  }

  private health(res: ServerResponse): void {
    if (this.ctx.engine.healthy()) json(res, 200, { status: "ok" });
    else json(res, 503, errorBody(new HttpError(503, "the engine is unavailable")));
  }

  /** A real 1-token generation (TensorRT-LLM's /health_generate). */
  private async healthGenerate(res: ServerResponse, signal: AbortSignal): Promise<void> {
    try {
      if (!this.ctx.engine.healthy()) throw new Error("the engine is unavailable");
      const tok = this.llm.tokenizer;
      const ids = await tok.encode("ping", { addSpecialTokens: true });
      const out = await this.llm.generateAsync(ids, { maxTokens: 1, temperature: 0 }, { signal }).result;
      json(res, 200, { status: "ok", tokens: out.outputs[0]!.tokenIds.length });
    } catch (e) {
      json(res, 503, errorBody(new HttpError(503, `generation failed: ${(e as Error).message}`)));
    }
  }

  private async metrics(res: ServerResponse): Promise<void> {
    const text = await this.ctx.metrics.text();
    res.writeHead(200, { "content-type": this.ctx.metrics.contentType, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  /** {prompt} or {messages} -> {count, tokens, max_model_len} (vLLM's /tokenize). */
  private async tokenize(b: unknown): Promise<unknown> {
    if (typeof b !== "object" || b === null || Array.isArray(b)) throw badRequest(null, "the request body must be a JSON object");
    const o = b as Record<string, unknown>;
    const tok = this.llm.tokenizer;
    const addSpecial = o["add_special_tokens"];
    if (addSpecial !== undefined && typeof addSpecial !== "boolean") throw badRequest("add_special_tokens", "must be a boolean");
    let ids: number[];
    if (typeof o["prompt"] === "string") {
      ids = await tok.encode(o["prompt"], { addSpecialTokens: addSpecial ?? true });
    } else if (o["messages"] !== undefined) {
      const req = parseChatRequest({ messages: o["messages"], add_generation_prompt: o["add_generation_prompt"] ?? true });
      const template = this.ctx.chatTemplate;
      if (!template) throw badRequest("messages", "the model has no chat template");
      try {
        ids = await tok.encode(tok.applyChatTemplate(req.messages, { template, addGenerationPrompt: req.addGenerationPrompt }), { addSpecialTokens: addSpecial ?? false });
      } catch (e) {
        throw toHttpError(e);
      }
    } else {
      throw badRequest("prompt", "give 'prompt' (a string) or 'messages'");
    }
    return { count: ids.length, tokens: ids, max_model_len: this.llm.config.maxSeqLen };
  }

  private detokenize(b: unknown): unknown {
    const t = typeof b === "object" && b !== null ? (b as Record<string, unknown>)["tokens"] : undefined;
    const vocab = this.llm.modelConfig.vocabSize;
    if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x) && x >= 0 && x < vocab)) {
      throw badRequest("tokens", `must be an array of token ids in [0, ${vocab})`);
    }
    return { prompt: this.llm.tokenizer.decode(t as number[]) };
  }

  /** Stops accepting, waits for in-flight requests (up to shutdownTimeoutMs, then aborts them), closes. */
  close(): Promise<void> {
    this.draining ??= this.drain();
    return this.draining;
  }

  private async drain(): Promise<void> {
    const closed = new Promise<void>((ok) => this.http.close(() => ok()));
    this.ctx.engine.close();
    const deadline = Date.now() + this.opts.shutdownTimeoutMs;
    while (this.ctx.engine.inflight > 0 && Date.now() < deadline) {
      this.http.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const ac of this.aborts) ac.abort();
    const grace = Date.now() + 2_000;
    while (this.ctx.engine.inflight > 0 && Date.now() < grace) await new Promise((r) => setTimeout(r, 20));
    this.http.closeIdleConnections();
    setTimeout(() => this.http.closeAllConnections(), 500).unref();
    await closed;
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(s), ...headers });
  res.end(s);
}
