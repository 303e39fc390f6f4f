// Per-request logitsProcessor callbacks across the thread boundary. Functions cannot be sent to
// the executor worker, so they stay on the caller's thread and the worker calls them through a
// SharedArrayBuffer, synchronously (the sampler needs the processed row before it can go on):
//   worker  writes the row [vocab] f32 and the token ids (prompt + output) into the buffer, sets
//           the call's state to PENDING, posts a `logits` message (the buffer is shared, not copied)
//           and blocks in Atomics.wait;
//   caller  (WorkerExecutor.onMessage) runs the request's callbacks in order on a copy of the row,
//           writes the row back (or the error text), sets DONE (or FAILED) and Atomics.notify.
// The step stalls while the caller's thread runs the callbacks (TensorRT-LLM's PyTorch flow runs
// them inline in its loop too). A callback that throws fails only its request, with the error
// text; no answer within CALLBACK_TIMEOUT_MS (the caller's thread blocked or gone) fails it too.
// Buffer layout (bytes): ctl Int32[4] = [state, errorBytes, callId, 0] | row f32[vocab] | ids i32[cap]
// (the ids area also carries the error text).
import type { LogitsProcessorFn } from "../api/sampling-params.js";
import { TllmError } from "../errors.js";

export const CALLBACK_TIMEOUT_MS = 60_000;
const PENDING = 1, DONE = 2, FAILED = 3;
const HEADER = 16;
/** the ids area is at least this many bytes (room for an error message) */
const MIN_TAIL = 4096;

/** worker -> caller: run the callbacks of `requestId` on the row in `buffer` */
export interface LogitsCallMsg {
  type: "logits";
  requestId: number;
  callId: number;
  /** output tokens generated so far (the callbacks' ctx.step) */
  step: number;
  vocab: number;
  numIds: number;
  buffer: SharedArrayBuffer;
}

/** Worker side: makes the stand-in LogitsProcessorFn that calls the caller's thread. */
export class LogitsCallbackBridge {
  private sab: SharedArrayBuffer | null = null;
  private nextCallId = 1;

  constructor(private readonly post: (m: LogitsCallMsg) => void, private readonly timeoutMs = CALLBACK_TIMEOUT_MS) {}

  /** one function standing for all of the request's callbacks (they run in order on the other side) */
  processor(requestId: number): LogitsProcessorFn {
    return (row, ids, ctx) => this.call(requestId, row, ids, ctx.step);
  }

  private call(requestId: number, row: Float32Array, ids: readonly number[], step: number): void {
    const vocab = row.length;
    const sab = this.buffer(HEADER + 4 * vocab + Math.max(MIN_TAIL, 4 * ids.length));
    const ctl = new Int32Array(sab, 0, 4);
    new Float32Array(sab, HEADER, vocab).set(row);
    new Int32Array(sab, HEADER + 4 * vocab, ids.length).set(ids);
    const callId = this.nextCallId++;
    Atomics.store(ctl, 2, callId);
    Atomics.store(ctl, 0, PENDING);
    this.post({ type: "logits", requestId, callId, step, vocab, numIds: ids.length, buffer: sab });
    Atomics.wait(ctl, 0, PENDING, this.timeoutMs);
    const state = Atomics.compareExchange(ctl, 0, PENDING, 0); // still PENDING: timed out, abandon the call
    if (state === DONE) {
      row.set(new Float32Array(sab, HEADER, vocab));
      return;
    }
    if (state === FAILED) {
      const text = new TextDecoder().decode(new Uint8Array(sab, HEADER + 4 * vocab, Atomics.load(ctl, 1)).slice());
      throw new TllmError(`logitsProcessor of request ${requestId} threw: ${text}`);
    }
    this.sab = null; // a late answer must not land in the next call's buffer
    throw new TllmError(`logitsProcessor of request ${requestId}: no answer from the caller's thread within ${this.timeoutMs} ms`);
  }

  private buffer(bytes: number): SharedArrayBuffer {
    if (!this.sab || this.sab.byteLength < bytes) this.sab = new SharedArrayBuffer(Math.max(bytes, 2 * (this.sab?.byteLength ?? 0)));
    return this.sab;
  }
}

/** Caller side: runs `fns` on the call's row and wakes the worker (never throws). */
export function answerLogitsCall(m: LogitsCallMsg, fns: readonly LogitsProcessorFn[] | undefined): void {
  const ctl = new Int32Array(m.buffer, 0, 4);
  if (Atomics.load(ctl, 2) !== m.callId || Atomics.load(ctl, 0) !== PENDING) return; // timed out on the other side
  const rowAt = HEADER, tailAt = HEADER + 4 * m.vocab;
  try {
    if (!fns) throw new TllmError("no logitsProcessor is registered for this request on the caller's thread");
    const view = new Float32Array(m.buffer, rowAt, m.vocab);
    const row = view.slice(); // the callbacks get their own copy (they may keep it)
    const ids = Array.from(new Int32Array(m.buffer, tailAt, m.numIds));
    for (const fn of fns) fn(row, ids, { requestId: m.requestId, step: m.step });
    view.set(row);
    Atomics.store(ctl, 0, DONE);
  } catch (e) {
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const room = m.buffer.byteLength - tailAt;
    const bytes = new TextEncoder().encode(text).subarray(0, room);
    new Uint8Array(m.buffer, tailAt, bytes.length).set(bytes);
    Atomics.store(ctl, 1, bytes.length);
    Atomics.store(ctl, 0, FAILED);
  }
  Atomics.notify(ctl, 0);
}
