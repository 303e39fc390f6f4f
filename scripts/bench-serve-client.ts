// The HTTP client side of scripts/bench-serve.ts, in a process of its own (started by it with
// fork()), as a real server's clients are: their reading and parsing never run on the server's
// event loop. It still shares the machine's cores with the server, so its CPU time is reported.
//
// A load generator should cost as little as it can (what it costs is taken from the server's
// cores on this machine), so each of the C clients is a minimal HTTP/1.1 client on one keep-alive
// net.Socket (node:http's client costs ~1.6x the CPU per SSE event: its parser and stream
// machinery): it reads every packet as it arrives, and when the response ends it checks the status,
// decodes the chunked body, checks that it is SSE ending in `data: [DONE]` and parses the usage
// event before it (completion tokens), as a client that only counts tokens would do.
//
// IPC protocol: the parent sends {url, prompts, concurrency, maxTokens}; this process runs every
// prompt as one streaming /v1/completions request, at most `concurrency` in flight, and replies
// {tokens, seconds, cpu} (completion tokens summed from the usage events, wall seconds from the first
// request sent to the last response ended, this process's CPU seconds) or {error}.
import { connect, type Socket } from "node:net";

export interface ClientJob { url: string; prompts: string[]; concurrency: number; maxTokens: number }
export interface ClientReply { tokens: number; seconds: number; cpu: number; error?: string }

const CRLF2 = Buffer.from("\r\n\r\n");
const LAST_CHUNK = Buffer.from("\r\n0\r\n\r\n"); // the end of a chunked body: last data chunk's CRLF, size 0, empty trailer

/** One keep-alive connection; one request at a time. */
class Connection {
  private socket: Socket | null = null;
  private parts: Buffer[] = [];
  private size = 0;
  /** bytes of the head (status line + headers + blank line), once seen; body framing */
  private head: { length: number; status: number; contentLength: number | null } | null = null;
  private settle: { ok: (r: { status: number; body: Buffer }) => void; fail: (e: Error) => void } | null = null;

  constructor(private readonly host: string, private readonly port: number) {}

  private open(): Promise<Socket> {
    return new Promise((ok, fail) => {
      const s = connect(this.port, this.host, () => { s.off("error", fail); ok(s); });
      s.setNoDelay(true);
      s.on("error", fail);
      s.on("data", (d: Buffer) => this.onData(d));
      s.on("error", (e) => this.failed(e));
      s.on("close", () => { this.socket = null; this.failed(new Error("connection closed mid-response")); });
    });
  }

  private failed(e: Error): void {
    const s = this.settle;
    this.settle = null;
    s?.fail(e);
  }

  private onData(d: Buffer): void {
    this.parts.push(d);
    this.size += d.length;
    if (!this.head) {
      const all = Buffer.concat(this.parts);
      this.parts = [all];
      const end = all.indexOf(CRLF2);
      if (end < 0) return;
      const lines = all.subarray(0, end).toString("latin1").split("\r\n");
      const cl = lines.find((l) => /^content-length:/i.test(l));
      this.head = { length: end + 4, status: Number(lines[0]!.split(" ")[1]), contentLength: cl ? Number(cl.split(":")[1]) : null };
    }
    const h = this.head;
    const done = h.contentLength !== null ? this.size >= h.length + h.contentLength : this.tailIsLastChunk();
    if (!done) return;
    const all = Buffer.concat(this.parts);
    const body = h.contentLength !== null ? all.subarray(h.length) : dechunk(all.subarray(h.length));
    this.parts = [];
    this.size = 0;
    this.head = null;
    const s = this.settle;
    this.settle = null;
    s?.ok({ status: h.status, body });
  }

  private tailIsLastChunk(): boolean {
    if (this.size < LAST_CHUNK.length) return false;
    let last = this.parts[this.parts.length - 1]!;
    if (last.length < LAST_CHUNK.length) last = Buffer.concat(this.parts).subarray(-LAST_CHUNK.length);
    return last.subarray(last.length - LAST_CHUNK.length).equals(LAST_CHUNK);
  }

  async post(path: string, body: string): Promise<{ status: number; body: Buffer }> {
    this.socket ??= await this.open();
    const req = `POST ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return new Promise((ok, fail) => {
      this.settle = { ok, fail };
      this.socket!.write(req);
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}

const CRLF = Buffer.from("\r\n");

/** A chunked body (`size CRLF data CRLF` ... `0 CRLF CRLF`) -> its data. */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; ;) {
    const eol = b.indexOf(CRLF, at);
    const n = eol < 0 ? NaN : parseInt(b.toString("latin1", at, eol), 16);
    if (!Number.isInteger(n)) throw new Error(`bad chunk header at byte ${at}`);
    if (n === 0) return Buffer.concat(out);
    out.push(b.subarray(eol + 2, eol + 2 + n));
    at = eol + 2 + n + 2;
  }
}

/** One streaming completion; returns its completion tokens (from the usage event). */
async function stream(c: Connection, prompt: string, maxTokens: number): Promise<number> {
  const body = JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  const r = await c.post("/v1/completions", body);
  const text = r.body.toString("utf8");
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${text.slice(0, 200)}`);
  if (!text.startsWith("data: {") || !text.endsWith("\n\ndata: [DONE]\n\n")) throw new Error(`not an SSE stream ending in data: [DONE]: ${text.slice(-200)}`);
  // the usage event is the last before [DONE]
  const before = text.lastIndexOf("\n\ndata: ", text.length - 17);
  const start = before < 0 ? 6 : before + 8;
  const ev = JSON.parse(text.slice(start, text.length - 16)) as { usage?: { completion_tokens: number } };
  if (!ev.usage) throw new Error(`no usage event before [DONE]: ${text.slice(-200)}`);
  return ev.usage.completion_tokens;
}

async function run(job: ClientJob): Promise<ClientReply> {
  const u = new URL(job.url);
  const conns = Array.from({ length: job.concurrency }, () => new Connection(u.hostname, Number(u.port)));
  let next = 0, tokens = 0;
  const t0 = performance.now(), cpu0 = process.cpuUsage();
  try {
    await Promise.all(conns.map(async (c) => {
      while (next < job.prompts.length) {
        const n = await stream(c, job.prompts[next++]!, job.maxTokens); // not `tokens += await ...`: that reads `tokens` first
        tokens += n;
      }
    }));
  } finally {
    conns.forEach((c) => c.close());
  }
  const cpu = process.cpuUsage(cpu0);
  return { tokens, seconds: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

process.on("message", (job: ClientJob) => {
  run(job).then((r) => process.send!(r), (e: Error) => process.send!({ tokens: 0, seconds: 0, cpu: 0, error: e.message }));
});
process.on("disconnect", () => process.exit(0));
