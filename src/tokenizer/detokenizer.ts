// Incremental detokenizer: token ids in, newly completed text out.
// Bytes go through one streaming TextDecoder, which holds back an incomplete UTF-8 sequence until
// its last byte arrives and replaces invalid bytes exactly as a one-shot decode would; so the
// concatenation of every delta plus flush() equals Tokenizer.decode(all ids).
// The SentencePiece dummy-prefix rule (drop the first space of the whole text) is applied to the
// first non-empty delta, as decode applies it to the start of the whole string.
import type { DecodeOptions, Tokenizer } from "./tokenizer.js";

export class IncrementalDetokenizer {
  private readonly dec = new TextDecoder("utf-8", { fatal: false });
  private started = false;
  private out = "";
  private count = 0;

  constructor(private readonly tok: Tokenizer, private readonly opts: DecodeOptions = {}) {}

  /** Feeds one or more ids; returns the text they completed ("" while a character is still partial). */
  push(ids: number | readonly number[]): string {
    const list = typeof ids === "number" ? [ids] : ids;
    let text = "";
    for (const id of list) {
      const bytes = this.tok.tokenBytes(id); // validates the id before anything is consumed
      this.count++;
      if (this.opts.skipSpecialTokens && this.tok.specialTokenIds.has(id)) continue;
      text += this.dec.decode(bytes, { stream: true });
    }
    return this.emit(text);
  }

  /** Ends the stream: a dangling partial character becomes U+FFFD. */
  flush(): string {
    return this.emit(this.dec.decode());
  }

  /** All text emitted so far. */
  get text(): string {
    return this.out;
  }

  /** Number of ids fed so far. */
  get tokenCount(): number {
    return this.count;
  }

  private emit(text: string): string {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (this.tok.stripLeadingSpace && text.startsWith(" ")) text = text.slice(1);
    }
    this.out += text;
    return text;
  }
}
