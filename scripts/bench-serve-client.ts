// The HTTP client side of scripts/bench-serve.ts, in a process of its own (started by it with
// fork()), as a real server's clients are: their SSE parsing never runs on the server's event loop.
// It still shares the machine's cores with the server, so its CPU time is reported too.
//
// IPC protocol: the parent sends {url, prompts: string[], concurrency, maxTokens}; this process runs
// every prompt as one streaming /v1/completions request, at most `concurrency` in flight, and
// replies {tokens, seconds, cpu} (completion tokens from each stream's usage event, wall seconds
// from the first request sent to the last stream ended, this process's CPU seconds) or {error}.
import { Agent, request } from "node:http";

export interface ClientJob { url: string; prompts: string[]; concurrency: number; maxTokens: number }
export interface ClientReply { tokens: number; seconds: number; cpu: number; error?: string }

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

/** One streaming client (node:http, keep-alive): reads every SSE event as it arrives; only the
 *  usage event (the last before [DONE]) is parsed, as a client that only counts tokens would do.
 *  (undici's fetch costs several times more CPU per event.) */
function stream(url: string, prompt: string, maxTokens: number): Promise<number> {
  const body = JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  return new Promise((ok, fail) => {
    const req = request(`${url}/v1/completions`, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      res.setEncoding("utf8");
      let tail = "", events = 0, usage = -1, text = "";
      res.on("data", (d: string) => {
        tail += d;
        for (let k = tail.indexOf("\n\n"); k >= 0; k = tail.indexOf("\n\n")) {
          const ev = tail.slice(0, k);
          tail = tail.slice(k + 2);
          events++;
          if (ev.startsWith('data: {"id"') && ev.includes('"usage":')) usage = (JSON.parse(ev.slice(6)) as { usage: { completion_tokens: number } }).usage.completion_tokens;
          else if (res.statusCode !== 200) text += ev;
        }
      });
      res.on("end", () => {
        if (res.statusCode !== 200 || usage < 0) fail(new Error(`HTTP ${res.statusCode}, ${events} events, no usage ${text.slice(0, 200)}`));
        else ok(usage);
      });
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end(body);
  });
}

async function run(job: ClientJob): Promise<ClientReply> {
  let next = 0, tokens = 0;
  const t0 = performance.now(), cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.prompts.length) {
      const n = await stream(job.url, job.prompts[next++]!, job.maxTokens); // not `tokens += await ...`: that reads `tokens` first
      tokens += n;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { tokens, seconds: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

process.on("message", (job: ClientJob) => {
  run(job).then((r) => process.send!(r), (e: Error) => process.send!({ tokens: 0, seconds: 0, cpu: 0, error: e.message }));
});
process.on("disconnect", () => {
  agent.destroy();
  process.exit(0);
});
