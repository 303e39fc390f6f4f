// A local node:http server that imitates the parts of the Hugging Face hub API that
// src/checkpoint/hub.ts (through @huggingface/hub) calls:
//   GET /api/models/{org}/{name}/revision/{rev}?expand=...   model info JSON with `sha`
//   GET /api/models/{org}/{name}/tree/{rev}?recursive=...    file listing (oid, size, lfs{oid,size})
//   GET /{org}/{name}/resolve/{rev}/{path}                   bytes; Range, ETag, X-Repo-Commit
// Gated repos answer 401 unless the request carries `Authorization: Bearer <token>`.
// `dropOnce` makes the first full download of a path send half of its bytes and drop the socket.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";

export interface FakeRepo {
  id: string;
  files: Record<string, Uint8Array>;
  /** commit sha served for every revision; default: derived from the id */
  sha?: string;
  /** when set, every request needs this bearer token */
  token?: string;
}

export interface LoggedRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  range: string | undefined;
}

const LFS_RE = /\.(gguf|safetensors|bin)$/;

export function gitBlobOid(data: Uint8Array): string {
  return createHash("sha1").update(`blob ${data.byteLength}\0`).update(data).digest("hex");
}
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
/** the cache's blob name for a file, as the hub reports it (LFS sha256, else git oid) */
export function etagOf(path: string, data: Uint8Array): string {
  return LFS_RE.test(path) ? sha256Hex(data) : gitBlobOid(data);
}

export class FakeHub {
  readonly requests: LoggedRequest[] = [];
  readonly dropOnce = new Set<string>();
  /** paths served with their first byte flipped (the listing keeps the true sha256) */
  readonly corrupt = new Set<string>();
  private server: Server | null = null;
  private readonly repos = new Map<string, Required<Omit<FakeRepo, "token">> & { token?: string }>();

  addRepo(r: FakeRepo): void {
    const sha = r.sha ?? createHash("sha1").update(r.id).digest("hex");
    this.repos.set(r.id, { ...r, sha });
  }
  shaOf(id: string): string {
    return this.repos.get(id)!.sha;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server!.listen(0, "127.0.0.1", ok));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server!.close(() => ok()));
    this.server = null;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    this.requests.push({ method: req.method ?? "", url: url.pathname, authorization: req.headers.authorization, range: req.headers.range });
    const path = decodeURIComponent(url.pathname);
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (m) return this.withRepo(req, res, m[1]!, (r) => json(res, 200, { _id: r.sha.slice(0, 24), id: r.id, sha: r.sha, private: false, gated: r.token ? "auto" : false, downloads: 0, likes: 0, lastModified: "2024-01-01T00:00:00.000Z" }));
    m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(path);
    if (m) return this.withRepo(req, res, m[1]!, (r) => json(res, 200, treeOf(r.files)));
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) return this.withRepo(req, res, m[1]!, (r) => this.serveFile(req, res, r.sha, m![3]!, r.files[m![3]!]));
    json(res, 404, { error: "not found" });
  }

  private withRepo(req: IncomingMessage, res: ServerResponse, id: string, f: (r: Required<FakeRepo>) => void): void {
    const r = this.repos.get(id);
    if (!r) return json(res, 404, { error: "Repository not found" }, { "X-Error-Code": "RepoNotFound" });
    if (r.token && req.headers.authorization !== `Bearer ${r.token}`) {
      return json(res, 401, { error: "Access to this model is restricted. You must be authenticated." }, { "X-Error-Code": "GatedRepo" });
    }
    f(r as Required<FakeRepo>);
  }

  private serveFile(req: IncomingMessage, res: ServerResponse, sha: string, path: string, data: Uint8Array | undefined): void {
    if (!data) return json(res, 404, { error: "Entry not found" }, { "X-Error-Code": "EntryNotFound" });
    const headers = { ETag: `"${etagOf(path, data)}"`, "X-Repo-Commit": sha, "Accept-Ranges": "bytes" };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    let start = 0;
    let end = data.byteLength - 1;
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
      if (start > end) return json(res, 416, { error: "range not satisfiable" }, { "Content-Range": `bytes */${data.byteLength}` });
      res.writeHead(206, { ...headers, "Content-Length": end - start + 1, "Content-Range": `bytes ${start}-${end}/${data.byteLength}` });
    } else {
      res.writeHead(200, { ...headers, "Content-Length": data.byteLength });
    }
    let body = data.subarray(start, end + 1);
    if (this.corrupt.has(path) && start === 0 && body.byteLength > 0) {
      body = Uint8Array.from(body);
      body[0] = body[0]! ^ 0xff;
    }
    if (!range && this.dropOnce.delete(path)) {
      // send half, then cut the connection: the client sees a truncated body
      res.write(body.subarray(0, body.byteLength >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

function treeOf(files: Record<string, Uint8Array>): unknown[] {
  return Object.entries(files).map(([path, data]) => ({
    type: "file",
    path,
    size: data.byteLength,
    oid: gitBlobOid(data),
    ...(LFS_RE.test(path) ? { lfs: { oid: sha256Hex(data), size: data.byteLength, pointerSize: 134 } } : {}),
  }));
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(s), ...headers });
  res.end(s);
}
