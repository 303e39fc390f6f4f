// Hugging Face hub downloads into the standard HF cache layout, shared with huggingface_hub (Python)
// and @huggingface/hub:
//   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//     models--org--name/refs/<revision>            text file: the commit sha
//     models--org--name/blobs/<etag>                 file bytes (etag = LFS sha256 or git blob oid)
//     models--org--name/snapshots/<commit>/<path>    relative symlink to the blob
// Repository metadata (commit sha, file list) comes from @huggingface/hub's `modelInfo` and
// `listFiles`; the bytes are fetched here so that a partial `<blob>.incomplete` resumes with a Range
// request (the library restarts from zero). HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured;
// when the hub cannot be reached, an already cached snapshot is used.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, open, rename, rm, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";
import { listFiles, modelInfo, type ListFileEntry } from "@huggingface/hub";
import { CheckpointError, ValidationError } from "../errors.js";

export const DEFAULT_HUB_URL = "https://huggingface.co";

export interface HubDownloadOptions {
  /** `org/name` */
  repo: string;
  /** one file of the repo (e.g. a .gguf); omitted: the files needed to load an HF directory */
  file?: string;
  /** branch, tag or commit; default "main" */
  revision?: string;
  /** HF hub cache directory; default from HF_HUB_CACHE / HF_HOME */
  cacheDir?: string;
  /** default HF_ENDPOINT or https://huggingface.co */
  hubUrl?: string;
  /** bearer token; default HF_TOKEN */
  token?: string | null;
  /** use the cache only; default HF_HUB_OFFLINE */
  offline?: boolean;
  /** draw a progress bar on stderr; default: when stderr is a terminal */
  progress?: boolean;
  /** resume attempts after a dropped connection, per file; default 5 */
  maxRetries?: number;
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  /** one-line notices (cache fallback, resume); default: stderr */
  log?: (line: string) => void;
}

export interface HubModel {
  /** the requested file, or the snapshot directory */
  path: string;
  commit: string;
  /** true when no byte (and, offline, no request) went over the network */
  fromCache: boolean;
  /** repo-relative paths now present in the snapshot */
  files: string[];
}

const REPO_RE = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const COMMIT_RE = /^[0-9a-f]{40}$/;
/** weights in formats we do not load: never downloaded for an HF directory */
const SKIP_RE = /\.(bin|pt|pth|h5|msgpack|onnx|ot|tflite|gguf|ckpt|mlmodel|npz)$/i;

export function isRepoId(s: string): boolean {
  return REPO_RE.test(s);
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env["HF_HUB_CACHE"]) return env["HF_HUB_CACHE"];
  if (env["HUGGINGFACE_HUB_CACHE"]) return env["HUGGINGFACE_HUB_CACHE"];
  const home = env["HF_HOME"] ?? join(env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "huggingface");
  return join(home, "hub");
}

export function repoFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.split("/").join("--")}`);
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());
}

interface Ctx {
  repo: string;
  revision: string;
  storage: string;
  hubUrl: string;
  fetch: typeof fetch;
  progress: boolean;
  maxRetries: number;
  log: (line: string) => void;
}

/** Downloads (or finds in the cache) a repo snapshot or one file of it. */
export async function downloadFromHub(opts: HubDownloadOptions): Promise<HubModel> {
  if (!isRepoId(opts.repo)) throw new ValidationError("model", opts.repo, "not a hub repo id of the form org/name");
  const env = opts.env ?? process.env;
  const token = opts.token === undefined ? env["HF_TOKEN"] ?? null : opts.token;
  const ctx: Ctx = {
    repo: opts.repo,
    revision: opts.revision ?? "main",
    storage: repoFolder(opts.cacheDir ?? hubCacheDir(env), opts.repo),
    hubUrl: (opts.hubUrl ?? env["HF_ENDPOINT"] ?? DEFAULT_HUB_URL).replace(/\/+$/, ""),
    fetch: withBearer(opts.fetch ?? fetch, token),
    progress: opts.progress ?? process.stderr.isTTY === true,
    maxRetries: opts.maxRetries ?? 5,
    log: opts.log ?? ((l) => process.stderr.write(l + "\n")),
  };
  if (opts.offline ?? truthy(env["HF_HUB_OFFLINE"])) return fromCacheOrThrow(ctx, opts.file, "offline mode (HF_HUB_OFFLINE)");
  let remote: { commit: string; entries: ListFileEntry[] };
  try {
    remote = await fetchRepoListing(ctx);
  } catch (e) {
    if (!isNetworkError(e)) throw mapHubError(e, ctx.repo);
    ctx.log(`hub: ${ctx.hubUrl} unreachable (${(e as Error).message}); using the local cache`);
    return fromCacheOrThrow(ctx, opts.file, "hub unreachable");
  }
  return downloadSnapshot(ctx, remote.commit, selectFiles(ctx.repo, remote.entries, opts.file), opts.file);
}

/** Adds `Authorization: Bearer <token>` to every request (any token format; the library insists on hf_). */
function withBearer(f: typeof fetch, token: string | null): typeof fetch {
  if (!token) return f;
  return (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set("Authorization", `Bearer ${token}`);
    return f(input, { ...init, headers });
  };
}

async function fetchRepoListing(ctx: Ctx): Promise<{ commit: string; entries: ListFileEntry[] }> {
  const info = await modelInfo({
    name: ctx.repo, revision: ctx.revision, hubUrl: ctx.hubUrl, fetch: ctx.fetch, additionalFields: ["sha"],
  });
  const commit = (info as { sha?: string }).sha;
  if (!commit || !COMMIT_RE.test(commit)) {
    throw new CheckpointError(ctx.repo, "sha", `hub answered no commit sha for revision '${ctx.revision}'`);
  }
  const entries: ListFileEntry[] = [];
  for await (const e of listFiles({ repo: ctx.repo, revision: commit, recursive: true, hubUrl: ctx.hubUrl, fetch: ctx.fetch })) {
    if (e.type === "file") entries.push(e);
  }
  if (ctx.revision !== commit) {
    const ref = join(ctx.storage, "refs", ctx.revision);
    await mkdir(dirname(ref), { recursive: true });
    await writeFile(ref, commit);
  }
  return { commit, entries };
}

/** The files to fetch: the named one, or an HF directory's top-level files (safetensors weights),
 *  or the repo's only .gguf. */
export function selectFiles(repo: string, entries: ListFileEntry[], file?: string): ListFileEntry[] {
  if (file !== undefined) {
    const hit = entries.find((e) => e.path === file);
    if (!hit) {
      const ggufs = entries.filter((e) => e.path.endsWith(".gguf")).map((e) => e.path);
      throw new CheckpointError(`${repo}:${file}`, "file", `not in the repo${ggufs.length ? ` (gguf files: ${ggufs.join(", ")})` : ""}`);
    }
    return [hit];
  }
  if (entries.some((e) => e.path.endsWith(".safetensors"))) {
    const top = entries.filter((e) => !e.path.includes("/") && !SKIP_RE.test(e.path));
    // Mistral repos hold the weights twice: HF-named shards and a `consolidated` copy in Mistral's names
    const hfNamed = top.some((e) => e.path.endsWith(".safetensors") && !e.path.startsWith("consolidated"));
    return hfNamed ? top.filter((e) => !/^consolidated.*\.safetensors$/.test(e.path)) : top;
  }
  const ggufs = entries.filter((e) => e.path.endsWith(".gguf"));
  if (ggufs.length === 1) return ggufs;
  if (ggufs.length > 1) {
    throw new CheckpointError(repo, "file", `the repo holds several .gguf files; pick one as ${repo}:<file> (${ggufs.map((e) => e.path).join(", ")})`);
  }
  throw new CheckpointError(repo, "weights", "the repo has neither .safetensors nor .gguf weights");
}

async function downloadSnapshot(ctx: Ctx, commit: string, files: ListFileEntry[], file?: string): Promise<HubModel> {
  const snapshot = join(ctx.storage, "snapshots", commit);
  let fromCache = true;
  for (const e of files) {
    if (await fetchToCache(ctx, commit, e)) fromCache = false;
  }
  const path = file !== undefined || files.length === 1 && files[0]!.path.endsWith(".gguf") ? join(snapshot, files[0]!.path) : snapshot;
  return { path, commit, fromCache, files: files.map((e) => e.path) };
}

/** Ensures snapshots/<commit>/<path> exists; returns true when bytes were downloaded. */
async function fetchToCache(ctx: Ctx, commit: string, e: ListFileEntry): Promise<boolean> {
  const etag = e.lfs?.oid ?? e.oid ?? e.xetHash;
  if (!etag) throw new CheckpointError(`${ctx.repo}/${e.path}`, "etag", "hub listing gave no oid for the file");
  const pointer = join(ctx.storage, "snapshots", commit, e.path);
  const blob = join(ctx.storage, "blobs", etag);
  if (existsSync(pointer)) return false;
  let downloaded = false;
  if (!existsSync(blob)) {
    const url = `${ctx.hubUrl}/${ctx.repo}/resolve/${commit}/${e.path.split("/").map(encodeURIComponent).join("/")}`;
    const size = e.lfs?.size ?? e.size;
    await downloadBlob(ctx, url, blob, size, e.lfs ? e.lfs.oid : null, e.path);
    downloaded = true;
  }
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true }); // a dangling link whose blob was deleted
  await symlink(relative(dirname(pointer), blob), pointer);
  return downloaded;
}

/** Downloads `url` to `blob` through `<blob>.incomplete`, resuming with Range after a dropped
 *  connection (and across runs). `sha256`: the LFS oid, checked at the end. */
async function downloadBlob(ctx: Ctx, url: string, blob: string, size: number, sha256: string | null, name: string): Promise<void> {
  const partial = `${blob}.incomplete`;
  await mkdir(dirname(blob), { recursive: true });
  const bar = new ProgressBar(name, size, ctx.progress, ctx.log);
  for (let attempt = 0; ; attempt++) {
    let have = existsSync(partial) ? statSync(partial).size : 0;
    if (have > size) { await rm(partial); have = 0; }
    if (have === size) break;
    if (attempt > ctx.maxRetries) {
      throw new CheckpointError(`${ctx.repo}/${name}`, "download", `incomplete after ${attempt} attempts (${have}/${size} bytes)`);
    }
    if (have > 0) ctx.log(`hub: ${name}: resuming at ${have}/${size} bytes`);
    try {
      await fetchRange(ctx, url, partial, have, bar);
    } catch (e) {
      if (e instanceof CheckpointError || attempt >= ctx.maxRetries) throw mapHubError(e, ctx.repo);
      ctx.log(`hub: ${name}: connection lost (${(e as Error).message})`);
    }
  }
  bar.done();
  if (sha256 && (await sha256File(partial)) !== sha256) {
    await rm(partial);
    throw new CheckpointError(`${ctx.repo}/${name}`, "sha256", "downloaded bytes do not match the hub's LFS oid; removed, run again");
  }
  await rename(partial, blob);
}

async function fetchRange(ctx: Ctx, url: string, partial: string, from: number, bar: ProgressBar): Promise<void> {
  const headers: Record<string, string> = from > 0 ? { Range: `bytes=${from}-` } : {};
  const resp = await ctx.fetch(url, { headers, redirect: "follow" });
  if (resp.status === 401 || resp.status === 403) throw accessError(ctx.repo, resp.status);
  if (resp.status === 416) { await rm(partial, { force: true }); return; }
  if (!resp.ok || !resp.body) throw new CheckpointError(url, "http", `hub answered ${resp.status} ${resp.statusText}`);
  const resumed = from > 0 && resp.status === 206;
  const fh = await open(partial, resumed ? "a" : "w");
  let written = resumed ? from : 0;
  bar.update(written);
  try {
    for await (const chunk of resp.body as AsyncIterable<Uint8Array>) {
      await fh.write(chunk);
      written += chunk.byteLength;
      bar.update(written);
    }
  } finally {
    await fh.close();
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  const fh = await open(path, "r");
  try {
    for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  } finally {
    await fh.close();
  }
  return h.digest("hex");
}

// ---- the cache, offline ----

/** The cached snapshot for `revision` (a ref or a commit), or null. */
export function findCachedCommit(storage: string, revision: string): string | null {
  if (COMMIT_RE.test(revision) && existsSync(join(storage, "snapshots", revision))) return revision;
  const ref = join(storage, "refs", revision);
  if (!existsSync(ref)) return null;
  const commit = readFileSync(ref, "utf8").trim();
  return existsSync(join(storage, "snapshots", commit)) ? commit : null;
}

function fromCacheOrThrow(ctx: Ctx, file: string | undefined, why: string): HubModel {
  const commit = findCachedCommit(ctx.storage, ctx.revision);
  if (commit === null) {
    throw new CheckpointError(ctx.repo, "cache", `${why}, and revision '${ctx.revision}' is not in the cache at ${ctx.storage}`);
  }
  const snapshot = join(ctx.storage, "snapshots", commit);
  const files = listTree(snapshot);
  if (file !== undefined) {
    if (!files.includes(file)) throw new CheckpointError(`${ctx.repo}:${file}`, "cache", `${why}, and the file is not in the cached snapshot ${commit}`);
    return { path: join(snapshot, file), commit, fromCache: true, files };
  }
  const ggufs = files.filter((f) => f.endsWith(".gguf"));
  const path = files.includes("config.json") || ggufs.length !== 1 ? snapshot : join(snapshot, ggufs[0]!);
  return { path, commit, fromCache: true, files };
}

function listTree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...listTree(p, `${prefix}${name}/`));
    else if (existsSync(p)) out.push(prefix + name); // a dangling symlink is not a cached file
  }
  return out;
}

// ---- errors ----

function isNetworkError(e: unknown): boolean {
  if (!(e instanceof TypeError)) return false;
  const code = (e.cause as { code?: string } | undefined)?.code ?? "";
  return e.message === "fetch failed" || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ENETUNREACH|ECONNRESET/.test(code);
}

function accessError(repo: string, status: number): CheckpointError {
  return new CheckpointError(repo, "access", `hub answered ${status}: the repo is gated or private; accept its terms on the hub and set HF_TOKEN`);
}

function mapHubError(e: unknown, repo: string): Error {
  if (e instanceof CheckpointError || e instanceof ValidationError) return e;
  const status = (e as { statusCode?: number }).statusCode;
  if (status === 401 || status === 403) return accessError(repo, status);
  if (status === 404) return new CheckpointError(repo, "repo", "not found on the hub (check the id and the revision)");
  return new CheckpointError(repo, "download", (e as Error)?.message ?? String(e));
}

// ---- progress on stderr ----

class ProgressBar {
  private last = 0;
  private readonly t0 = Date.now();
  constructor(private readonly name: string, private readonly total: number, private readonly tty: boolean,
    private readonly log: (l: string) => void) {
    if (!tty) log(`hub: downloading ${name} (${mb(total)} MB)`);
  }
  update(n: number): void {
    const now = Date.now();
    if (!this.tty || now - this.last < 100) return;
    this.last = now;
    const pct = this.total > 0 ? Math.floor((100 * n) / this.total) : 100;
    const width = 30;
    const fill = Math.round((width * pct) / 100);
    const rate = n / Math.max(1e-3, (now - this.t0) / 1000);
    process.stderr.write(`\r${this.name} [${"#".repeat(fill)}${" ".repeat(width - fill)}] ${pct}% ${mb(n)}/${mb(this.total)} MB ${mb(rate)} MB/s`);
  }
  done(): void {
    if (this.tty) process.stderr.write(`\r${this.name} done, ${mb(this.total)} MB in ${((Date.now() - this.t0) / 1000).toFixed(1)} s\x1b[K\n`);
  }
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}
