// Drives any target through a `send` function and records each request's timeline.
// Arrivals follow vLLM's benchmark_serving: requestRate "inf" sends everything at t = 0; a finite
// rate draws inter-arrival gaps from Gamma(burstiness, 1 / (rate * burstiness)) (burstiness 1 is a
// Poisson process), seeded. A concurrency limit, when given, holds a request until a slot frees
// (its start time is taken when it is actually sent). Warmup requests run first and are dropped.
import { ValidationError } from "../errors.js";
import type { DatasetItem } from "./dataset.js";
import type { RequestRecord } from "./metrics.js";
import { Prng } from "./prng.js";

/** Called by `send` once per streamed chunk; `tokens` is how many tokens the chunk held if known. */
export type OnToken = (tokens?: number) => void;

export interface SendResult {
  /** output tokens as the target reports them (e.g. usage.completion_tokens); else chunks are counted */
  outputTokens?: number;
  /** prompt tokens as the target reports them; else the dataset item's input_ids length */
  inputTokens?: number;
}

export type SendFn = (item: DatasetItem, onToken: OnToken) => Promise<SendResult>;

export interface RunBenchmarkOptions {
  dataset: readonly DatasetItem[];
  send: SendFn;
  /** max requests in flight (default: unlimited) */
  concurrency?: number;
  /** requests per second, or "inf" (default) */
  requestRate?: number | "inf";
  /** gamma shape of inter-arrival times; 1 = Poisson (default) */
  burstiness?: number;
  /** arrivals seed (default 0, vLLM's) */
  seed?: number;
  /** requests sent (and dropped) before the measured run, taken from the start of the dataset */
  warmup?: number;
  /** measured requests (default / 0: the whole dataset) */
  numRequests?: number;
  /** called after each measured request completes */
  onRequestDone?: (record: RequestRecord, done: number, total: number) => void;
  /** clock in ns (default process.hrtime.bigint); injectable for tests */
  nowNs?: () => number;
  /** sleep (default setTimeout); injectable for tests */
  sleepMs?: (ms: number) => Promise<void>;
}

export interface BenchmarkRun {
  /** one per measured request, in dataset order; times in ns from the start of the measured run */
  records: RequestRecord[];
  /** wall time of the measured run, s (vLLM's dur_s) */
  durationS: number;
}

const defaultNow = (): number => Number(process.hrtime.bigint());
const defaultSleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** A counting semaphore (FIFO). */
class Slots {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((res) => this.waiters.push(res));
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.free++;
  }
}

async function sendOne(item: DatasetItem, send: SendFn, now: () => number, t0: number): Promise<RequestRecord> {
  const startNs = now() - t0;
  const tokenTimesNs: number[] = [];
  let counted = 0;
  const onToken: OnToken = (tokens = 1) => {
    tokenTimesNs.push(now() - t0);
    counted += tokens;
  };
  const rec: RequestRecord = {
    startNs, firstTokenNs: startNs, endNs: startNs, tokenTimesNs,
    numInputTokens: item.inputIds?.length ?? 0, numOutputTokens: 0,
  };
  try {
    const res = await send(item, onToken);
    rec.endNs = now() - t0;
    rec.numOutputTokens = res.outputTokens ?? counted;
    if (res.inputTokens !== undefined) rec.numInputTokens = res.inputTokens;
    if (tokenTimesNs.length === 0) {
      // Non-streaming target: the whole answer arrives at the end.
      tokenTimesNs.push(rec.endNs);
    }
    rec.firstTokenNs = tokenTimesNs[0]!;
    if (rec.numOutputTokens === 0) rec.error = "no output tokens";
  } catch (e) {
    rec.endNs = now() - t0;
    rec.firstTokenNs = tokenTimesNs[0] ?? rec.endNs;
    rec.error = e instanceof Error ? e.message : String(e);
  }
  return rec;
}

/** Scheduled send offsets (ms from the start) for n requests. */
export function arrivalOffsetsMs(n: number, rate: number | "inf", burstiness = 1, seed = 0): number[] {
  if (rate === "inf") return new Array<number>(n).fill(0);
  const rng = new Prng(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    out.push(t);
    t += rng.gamma(burstiness, 1 / (rate * burstiness)) * 1000;
  }
  return out;
}

function validate(o: RunBenchmarkOptions): { warmup: number; n: number } {
  const warmup = o.warmup ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) throw new ValidationError("warmup", warmup, "must be an integer >= 0");
  const avail = o.dataset.length - warmup;
  const n = o.numRequests && o.numRequests > 0 ? o.numRequests : avail;
  if (!Number.isInteger(n) || n > avail || n < 1) {
    throw new ValidationError("numRequests", o.numRequests, `dataset has ${o.dataset.length} items, ${warmup} used for warmup`);
  }
  if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1)) {
    throw new ValidationError("concurrency", o.concurrency, "must be an integer >= 1");
  }
  const r = o.requestRate ?? "inf";
  if (r !== "inf" && !(typeof r === "number" && r > 0 && Number.isFinite(r))) {
    throw new ValidationError("requestRate", r, "must be 'inf' or a number of requests per second > 0");
  }
  if (o.burstiness !== undefined && !(o.burstiness > 0)) throw new ValidationError("burstiness", o.burstiness, "must be > 0");
  return { warmup, n };
}

/** Runs warmup, then the measured requests; never throws for a failed request (see record.error). */
export async function runBenchmark(o: RunBenchmarkOptions): Promise<BenchmarkRun> {
  const { warmup, n } = validate(o);
  const now = o.nowNs ?? defaultNow;
  const sleep = o.sleepMs ?? defaultSleep;
  const slots = new Slots(o.concurrency ?? Number.MAX_SAFE_INTEGER);
  const limited = async (item: DatasetItem, t0: number): Promise<RequestRecord> => {
    await slots.acquire();
    try {
      return await sendOne(item, o.send, now, t0);
    } finally {
      slots.release();
    }
  };
  await Promise.all(o.dataset.slice(0, warmup).map((it) => limited(it, 0)));

  const items = o.dataset.slice(warmup, warmup + n);
  const offsets = arrivalOffsetsMs(n, o.requestRate ?? "inf", o.burstiness ?? 1, o.seed ?? 0);
  const t0 = now();
  let done = 0;
  const pending: Promise<RequestRecord>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = offsets[i]! - (now() - t0) / 1e6;
    if (wait > 0) await sleep(wait);
    pending.push(limited(items[i]!, t0).then((rec) => {
      o.onRequestDone?.(rec, ++done, n);
      return rec;
    }));
  }
  const records = await Promise.all(pending);
  return { records, durationS: (now() - t0) / 1e9 };
}
