// Second-byte guard for multi-byte UTF-8 characters split across tokens. XGrammar 0.1.27 checks
// UTF-8 structure (lead byte + continuation bytes) but lets through sequences that are not valid
// UTF-8: overlong E0 80-9F / F0 80-8F, surrogates ED A0-BF, and F4 90-BF (> U+10FFFF). When the
// output so far ends with such a lead byte alone, the guard clears the bits of tokens whose first
// byte is a continuation byte outside the lead's valid range (Unicode Table 3-7).
import type { GuidedVocab } from "./vocab.js";

/** Valid second-byte range [lo, hi] after each restricted lead. */
const SECOND: ReadonlyMap<number, readonly [number, number]> = new Map([
  [0xe0, [0xa0, 0xbf]], [0xed, [0x80, 0x9f]], [0xf0, [0x90, 0xbf]], [0xf4, [0x80, 0x8f]],
]);

export class Utf8Guard {
  /** ids of the tokens whose first byte is 0x80 + i, i in [0, 64) */
  private readonly byFirst: Int32Array[];
  /** per token: the restricted lead it leaves pending at its end (0: none), given no pending lead before */
  private readonly endsWithLead: Uint8Array;

  constructor(private readonly vocab: GuidedVocab) {
    const lists: number[][] = Array.from({ length: 64 }, () => []);
    this.endsWithLead = new Uint8Array(vocab.vocabSize);
    for (let id = 0; id < vocab.vocabSize; id++) {
      const b = vocab.tokenBytes(id);
      if (b.length === 0) continue;
      if (b[0]! >= 0x80 && b[0]! < 0xc0) lists[b[0]! - 0x80]!.push(id);
      const last = b[b.length - 1]!;
      if (SECOND.has(last)) this.endsWithLead[id] = last;
    }
    this.byFirst = lists.map((l) => Int32Array.from(l));
  }

  /** The pending restricted lead after `token` (0 when none). */
  after(token: number): number {
    return token < this.endsWithLead.length ? this.endsWithLead[token]! : 0;
  }

  /** Clears, in `mask`, the tokens that would put an invalid second byte after `lead`. */
  restrict(mask: Int32Array, lead: number): void {
    const r = SECOND.get(lead);
    if (!r) return;
    for (let b = 0x80; b < 0xc0; b++) {
      if (b >= r[0] && b <= r[1]) continue;
      for (const id of this.byFirst[b - 0x80]!) mask[id >>> 5]! &= ~(1 << (id & 31));
    }
  }
}
