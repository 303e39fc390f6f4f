// The HTML bench report in a real browser: Debian's headless chromium loads the page from a file,
// (1) with an injected probe script, `--dump-dom` shows no script error and gives each chart's
// bounding box; (2) a `--screenshot` of the same window size is decoded here (PNG: zlib-inflated
// IDAT, scanline filters undone) and each chart box must hold coloured (non-grey) pixels.
// Skipped with a stated reason when /usr/bin/chromium is absent (CI installs it: apt-get install -y chromium).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { inflateSync } from "node:zlib";
import { computeTrtllmStats, computeVllmStats, type RequestRecord } from "../../src/bench/metrics.js";
import { renderHtmlReport } from "../../src/bench/report-html.js";
import { Prng } from "../../src/bench/prng.js";

const CHROMIUM = "/usr/bin/chromium";
const WIDTH = 1280;
const HEIGHT = 2000;

/** 120 requests arriving as a Poisson process at 20 req/s with a server that slows as load grows. */
function syntheticRecords(): RequestRecord[] {
  const rng = new Prng(7);
  const out: RequestRecord[] = [];
  let t = 0;
  for (let i = 0; i < 120; i++) {
    t += rng.exponential(20) * 1e9;
    const isl = 100 + rng.intBelow(400);
    const osl = 20 + rng.intBelow(100);
    const first = t + (30 + isl * 0.2 + rng.exponential(1 / 40)) * 1e6;
    const times = [first];
    for (let k = 1; k < osl; k++) times.push(times[k - 1]! + (8 + rng.exponential(1 / 4)) * 1e6);
    const rec: RequestRecord = { startNs: t, firstTokenNs: first, endNs: times[osl - 1]!, tokenTimesNs: times, numInputTokens: isl, numOutputTokens: osl };
    if (i === 60) rec.error = "HTTP 503";
    out.push(rec);
  }
  return out;
}

function chromium(args: string[], dir: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(CHROMIUM, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    `--user-data-dir=${join(dir, "profile")}`, `--window-size=${WIDTH},${HEIGHT}`, "--enable-logging=stderr", "--v=0", ...args],
  { encoding: "utf8", timeout: 90_000, maxBuffer: 64 << 20 });
  return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", status: r.status };
}

/** Decodes an 8-bit RGB/RGBA non-interlaced PNG into RGBA pixels. */
function decodePng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  assert.equal(buf.subarray(0, 8).toString("hex"), "89504e470d0a1a0a", "PNG signature");
  let pos = 8;
  let width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, "bit depth 8");
      colorType = data[9]!;
      assert.equal(data[12], 0, "not interlaced");
    } else if (type === "IDAT") idat.push(data);
    pos += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  assert.ok(bpp > 0, `colour type ${colorType} is RGB or RGBA`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= bpp ? px[y * stride + x - bpp]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + x]! : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = (v + pred) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(px.subarray(i * bpp, i * bpp + 3), i * 4);
    rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3]! : 255;
  }
  return { width, height, rgba };
}

/** Records script errors into the DOM and writes each chart's box (CSS px) after load. */
const PROBE = `<script>
window.__errors=[];window.addEventListener("error",function(e){window.__errors.push(String(e.message))});
window.addEventListener("load",function(){var out=[].map.call(document.querySelectorAll("[data-chart] svg"),function(s){
var r=s.getBoundingClientRect();return{name:s.closest("[data-chart]").getAttribute("data-chart"),x:r.x,y:r.y+scrollY,w:r.width,h:r.height}});
var pre=document.createElement("pre");pre.id="probe";pre.textContent=JSON.stringify({errors:window.__errors,charts:out});document.body.appendChild(pre)});
</script>`;

const noChromium = existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (apt-get install -y chromium)`;

test("HTML report renders in headless chromium with no errors and non-blank charts", { skip: noChromium }, () => {
  const records = syntheticRecords();
  const last = Math.max(...records.map((r) => r.endNs));
  const html = renderHtmlReport({
    title: "tllm bench: synthetic run", records, trt: computeTrtllmStats(records), vllm: computeVllmStats(records, last / 1e9, { percentiles: [50, 90, 99] }),
    info: { engine: { model: "synthetic-model", target: "fake target" }, concurrency: 16, requestRate: 20, prefixCacheHitRate: 0.42, kvCacheUsage: 0.63 }, generatedAt: "2026-01-01T00:00:00Z",
  });
  assert.ok(!/https?:\/\//.test(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")), "no network URL in the page");
  const dir = mkdtempSync(join(tmpdir(), "tllm-report-"));
  try {
    const page = join(dir, "report.html");
    writeFileSync(page, html);
    writeFileSync(join(dir, "probe.html"), html.replace("<head>", `<head>${PROBE}`));
    const dom = chromium(["--dump-dom", `file://${join(dir, "probe.html")}`], dir);
    assert.equal(dom.status, 0, dom.stderr.slice(-2000));
    // chromium logs page console output as "...:INFO:CONSOLE:<line>] "message", source: ..." (older: CONSOLE(<line>))
    assert.doesNotMatch(dom.stderr, /Uncaught|:CONSOLE[:(]/, "no console messages or uncaught errors");
    const m = /<pre id="probe">(.*?)<\/pre>/s.exec(dom.stdout);
    assert.ok(m, "probe ran (scripts load and the DOM is complete)");
    const probe = JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, "&")) as { errors: string[]; charts: { name: string; x: number; y: number; w: number; h: number }[] };
    assert.deepEqual(probe.errors, []);
    assert.deepEqual(probe.charts.map((c) => c.name), ["Time to first token", "Time per output token", "Output throughput over time",
      "Requests in flight", "Latency percentiles", "Request timeline"]);

    const shot = join(dir, "shot.png");
    const sr = chromium([`--screenshot=${shot}`, `file://${page}`], dir);
    assert.equal(sr.status, 0, sr.stderr.slice(-2000));
    const png = decodePng(readFileSync(shot));
    assert.equal(png.width, WIDTH);
    if (process.env.TLLM_KEEP_SCREENSHOT) writeFileSync(process.env.TLLM_KEEP_SCREENSHOT, readFileSync(shot));
    for (const c of probe.charts) {
      assert.ok(c.w > 300 && c.h > 100, `${c.name}: chart box ${c.w}x${c.h}`);
      assert.ok(c.y + c.h <= png.height, `${c.name}: chart inside the ${png.height}px screenshot`);
      let colored = 0;
      for (let y = Math.floor(c.y); y < c.y + c.h; y++) {
        for (let x = Math.floor(c.x); x < c.x + c.w; x++) {
          const i = (y * png.width + x) * 4;
          const r = png.rgba[i]!, g = png.rgba[i + 1]!, b = png.rgba[i + 2]!;
          if (Math.max(r, g, b) - Math.min(r, g, b) > 40) colored++; // saturated: drawn data, not grid or text
        }
      }
      // A chart with only axes and grey text has ~0 saturated pixels; the sparsest data chart here
      // (a 2 px line) still covers well over 1% of its box.
      assert.ok(colored / (c.w * c.h) > 0.01, `${c.name}: ${colored} coloured pixels in ${Math.round(c.w * c.h)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
