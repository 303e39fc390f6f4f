// Read-only access to a (possibly huge) model file without loading it into a JS array.
// `bytes(offset, length)` returns a view into a memory map when the native addon offers mmap
// (zero copy: pages are read by the OS on first touch) and otherwise reads just that range
// with a positional read (lazy: nothing is read until a tensor is asked for).
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { CheckpointError } from "../errors.js";

export interface MappedFile {
  readonly path: string;
  readonly size: number;
  /** A view of [offset, offset + length). Throws CheckpointError past the end of the file. */
  bytes(offset: number, length: number): Uint8Array;
  close(): void;
}

/** Set by the native backend loader when the addon provides mmap (see src/backends/native). */
export type MmapFn = (path: string) => { buffer: ArrayBuffer; close(): void };
let mmapImpl: MmapFn | undefined;
export function setMmapImplementation(fn: MmapFn | undefined): void {
  mmapImpl = fn;
}

export function openMappedFile(path: string): MappedFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new CheckpointError(path, "file", `cannot open: ${(e as Error).message}`);
  }
  const size = fstatSync(fd).size;
  if (mmapImpl && size > 0) {
    closeSync(fd);
    const m = mmapImpl(path);
    return new MmapFile(path, size, m.buffer, m.close);
  }
  return new PreadFile(path, size, fd);
}

function checkRange(path: string, size: number, offset: number, length: number): void {
  if (offset < 0 || length < 0 || offset + length > size) {
    throw new CheckpointError(path, "file", `truncated: needs bytes [${offset}, ${offset + length}) but the file has ${size}`);
  }
}

class MmapFile implements MappedFile {
  constructor(readonly path: string, readonly size: number, private buf: ArrayBuffer | null, private unmap: () => void) {}
  bytes(offset: number, length: number): Uint8Array {
    checkRange(this.path, this.size, offset, length);
    if (!this.buf) throw new CheckpointError(this.path, "file", "already closed");
    return new Uint8Array(this.buf, offset, length);
  }
  close(): void {
    if (this.buf) { this.buf = null; this.unmap(); }
  }
}

class PreadFile implements MappedFile {
  constructor(readonly path: string, readonly size: number, private fd: number | null) {}
  bytes(offset: number, length: number): Uint8Array {
    checkRange(this.path, this.size, offset, length);
    if (this.fd === null) throw new CheckpointError(this.path, "file", "already closed");
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n <= 0) throw new CheckpointError(this.path, "file", `short read at offset ${offset + done}`);
      done += n;
    }
    return out;
  }
  close(): void {
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
  }
}
