// Byte tables used to turn vocabulary pieces back into raw bytes without the async HF decoder.

/** GPT-2's byte -> printable char map (bytes_to_unicode): printable Latin-1 maps to itself,
 *  the other 68 bytes map to U+0100.. in byte order. */
export function gpt2ByteToChar(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = keep(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return out;
}

let charToByte: Map<string, number> | undefined;

/** Inverse of gpt2ByteToChar. */
export function gpt2CharToByte(): Map<string, number> {
  if (!charToByte) {
    charToByte = new Map();
    gpt2ByteToChar().forEach((c, b) => charToByte!.set(c, b));
  }
  return charToByte;
}

const utf8 = new TextEncoder();

/** Raw bytes of a byte-level BPE piece; undefined if a char is outside the GPT-2 alphabet. */
export function byteLevelPieceBytes(piece: string): Uint8Array | undefined {
  const m = gpt2CharToByte();
  const out = new Uint8Array(piece.length);
  let i = 0;
  for (const ch of piece) {
    const b = m.get(ch);
    if (b === undefined) return undefined;
    out[i++] = b;
  }
  return out.subarray(0, i);
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** SentencePiece piece -> bytes: `<0xNN>` is one raw byte, `▁` is a space. */
export function spmPieceBytes(piece: string, isByteToken: boolean): Uint8Array {
  const m = isByteToken ? BYTE_PIECE.exec(piece) : null;
  if (m) return Uint8Array.of(parseInt(m[1]!, 16));
  return utf8.encode(piece.replaceAll("\u2581", " "));
}

export function textBytes(s: string): Uint8Array {
  return utf8.encode(s);
}

export function isBytePiece(piece: string): boolean {
  return BYTE_PIECE.test(piece);
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
