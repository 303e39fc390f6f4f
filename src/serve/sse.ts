// Server-sent events for the streaming endpoints: the response writer (Sse) and the pre-built
// serialization of the per-token chunk (TokenChoice). Every chunk is one `data: <json>\n\n` event
// of an OpenAI text_completion / chat.completion.chunk object; the stream ends with `data: [DONE]`.
import type { ServerResponse } from "node:http";

/** What Sse needs of a ServerResponse (a narrower type so that tests can pass a recorder). */
export type SseResponse = Pick<ServerResponse, "writeHead" | "flushHeaders" | "write" | "end" | "cork" | "uncork" | "writableEnded" | "destroyed" | "socket">;

/**
 * An SSE response. Chunks of one request share everything but `choices`, so that part is
 * serialized once (`head`) and each chunk serializes only its choice (the per-token ones from
 * pre-built pieces: see TokenChoice). Writes made in one turn of the event loop leave together:
 * the first one corks the response and a setImmediate uncorks it. (node:http itself corks the
 * socket for each write until process.nextTick, which already joins the writes of one executor
 * message; this extends that to the end of the turn, so when the main thread fell behind the
 * worker and handles several step messages in one turn, a request's tokens from all of them leave
 * in one send, one syscall, instead of one per message.) Nothing waits past the current turn.
 */
export class Sse {
  private readonly head: string;
  private corked = false;
  constructor(private readonly res: SseResponse, base: Record<string, unknown>) {
    res.socket?.setNoDelay(true); // small writes: never wait for an ACK (Nagle)
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
    res.flushHeaders();
    this.head = `data: ${JSON.stringify(base).slice(0, -1)},"choices":[`;
  }
  private get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }
  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.res.uncork();
  };
  private write(s: string): void {
    if (!this.open) return;
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      setImmediate(this.uncork);
    }
    this.res.write(s);
  }
  /** `{...base, choices: [choice]}`, the choice given as JSON text */
  choiceJson(json: string): void {
    this.write(`${this.head}${json}]}\n\n`);
  }
  /** `{...base, choices: [choice]}` */
  choice(choice: Record<string, unknown>): void {
    this.choiceJson(JSON.stringify(choice));
  }
  send(obj: unknown): void {
    this.write(`data: ${JSON.stringify(obj)}\n\n`);
  }
  done(): void {
    if (!this.open) return;
    this.corked = false; // end() flushes and fully uncorks
    this.res.end("data: [DONE]\n\n");
  }
}

/**
 * The JSON of a mid-stream choice with no logprobs and no finish reason, the chunk of almost every
 * token: `{"index":i,<key>:<JSON of text>,"logprobs":null,"finish_reason":null}`, the same text
 * JSON.stringify gives for that object in that key order, built from per-choice pieces made once.
 */
export class TokenChoice {
  private readonly heads: string[] = [];
  constructor(private readonly key: string, private readonly close: string) {}
  json(index: number, text: string): string {
    const h = (this.heads[index] ??= `{"index":${index},${this.key}`);
    return `${h}${JSON.stringify(text)}${this.close}`;
  }
}
export const COMPLETION_TOKEN = new TokenChoice('"text":', ',"logprobs":null,"finish_reason":null}');
export const CHAT_TOKEN = new TokenChoice('"delta":{"content":', '},"logprobs":null,"finish_reason":null}');
