// A progress bar on stderr. On a TTY it redraws one line in place ("\r", at most every 100 ms);
// otherwise it prints a plain line at each 10% step (and at the end), so logs stay readable.

export interface ProgressOptions {
  total: number;
  label?: string;
  /** default process.stderr */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** overrides the stream's isTTY */
  tty?: boolean;
  /** clock, ms (default Date.now) */
  nowMs?: () => number;
}

export class ProgressBar {
  private done = 0;
  private readonly start: number;
  private lastDraw = -Infinity;
  private lastStep = -1;
  private readonly tty: boolean;
  private readonly stream: NonNullable<ProgressOptions["stream"]>;
  private readonly now: () => number;
  private extra = "";

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = o.tty ?? Boolean(this.stream.isTTY);
    this.now = o.nowMs ?? Date.now;
    this.start = this.now();
  }

  /** Advances by n; `note` (e.g. "12.3 tok/s") is shown after the counters. */
  tick(n = 1, note?: string): void {
    this.done = Math.min(this.o.total, this.done + n);
    if (note !== undefined) this.extra = note;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= 100 || this.done === this.o.total) {
        this.lastDraw = t;
        this.stream.write(`\r${this.line(true)}\x1b[K`);
      }
      return;
    }
    const step = this.o.total > 0 ? Math.floor((this.done * 10) / this.o.total) : 10;
    if (step > this.lastStep) {
      this.lastStep = step;
      this.stream.write(`${this.line(false)}\n`);
    }
  }

  /** Ends the bar (a newline on a TTY). */
  finish(): void {
    if (this.tty) this.stream.write(`\r${this.line(true)}\x1b[K\n`);
  }

  /** The text of the bar now (no control characters). */
  line(withBar: boolean): string {
    const total = this.o.total;
    const frac = total > 0 ? this.done / total : 1;
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (total - this.done) / rate : NaN;
    const label = this.o.label ? `${this.o.label} ` : "";
    const pct = `${(frac * 100).toFixed(0).padStart(3)}%`;
    let bar = "";
    if (withBar) {
      const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 60));
      const full = Math.round(frac * width);
      bar = ` |${"█".repeat(full)}${"░".repeat(width - full)}|`;
    }
    const etaS = Number.isFinite(eta) ? ` eta ${fmtSec(eta)}` : "";
    const note = this.extra ? ` ${this.extra}` : "";
    return `${label}${pct}${bar} ${this.done}/${total} [${fmtSec(elapsed)}, ${rate.toFixed(2)} req/s${etaS}]${note}`;
  }
}

function fmtSec(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s - m * 60)).padStart(2, "0")}s`;
}
