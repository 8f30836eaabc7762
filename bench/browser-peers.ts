/**
 * Our inference beside onnxruntime-web in a browser: headless Chromium (its WebGPU on SwiftShader here, a
 * GPU where it has one), both engines on the browser's adapter, the same ONNX network (`dcam export`) on
 * the same input, maps compared. One page load per onnxruntime-web build (the C++ WebGPU EP and JSEP),
 * each timing ours too, so a ratio is always from one page. The page is bench/browser/main.ts, built by
 * Vite; onnxruntime-web is served as its own files, as an app would deploy it.
 *
 *   npx tsx bench/browser-peers.ts [--size 128] [--batches 1,8] [--runs 3] [--builds webgpu,jsep] [--out bench/results]
 *
 * `--conv3x3 direct|winograd` sets how our 3x3 and stride-2 convs run (default: the planner's choice).
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH). Writes <date>-browser-ort-web.json / .md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { openBrowser, repo, serveStatic } from '../test/e2e/browser.js';
import type { KernelTime } from '../src/graph/profiler.js';
import { fmtMs, type Timing } from './lib/timing.js';

const { values: a } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    batches: { type: 'string', default: '1,8' },
    runs: { type: 'string', default: '3' },
    builds: { type: 'string', default: 'webgpu,jsep' },
    conv3x3: { type: 'string' },
    out: { type: 'string', default: join(repo, 'bench/results') },
    name: { type: 'string' },
  },
});
const size = Number(a.size);
const builds = a.builds!.split(',');
const TIMEOUT_MS = 20 * 60_000;

interface PageResult {
  build: string;
  conv3x3: string;
  version: string;
  adapter: string;
  userAgent: string;
  size: number;
  timing: { warmup: number; runs: number };
  rows: Array<{ batch: number; size: number; ours: Timing; ortWeb: Timing; ratio: number; agreement: number; profile: KernelTime[] | string }>;
}

const tmp = mkdtempSync(join(tmpdir(), 'dcam-browser-bench-'));
const dist = join(tmp, 'dist');
await build({
  root: join(repo, 'bench/browser'),
  base: '/',
  configFile: false,
  logLevel: 'warn',
  build: { outDir: dist, emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096 },
  esbuild: { target: 'es2022' },
});
const { server, base } = await serveStatic([
  ['/ort/', join(repo, 'node_modules/onnxruntime-web/dist')],
  ['/weights/', join(repo, 'weights')],
  ['/', dist],
]);
const { browser, page } = await openBrowser();
page.on('console', (m) => {
  if (process.env.DEBUG && m.type() !== 'error') console.log(`[page] ${m.text()}`);
});
const results: PageResult[] = [];
try {
  for (const b of builds) {
    const url = `${base}/index.html?build=${b}&size=${size}&batches=${a.batches}&runs=${a.runs}${a.conv3x3 ? `&conv3x3=${a.conv3x3}` : ''}`;
    console.log(`${b}: ${url}`);
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { benchResult?: unknown }).benchResult, null, { timeout: TIMEOUT_MS, polling: 1000 });
    const r = await page.evaluate(() => (window as unknown as { benchResult: PageResult | { error: string } }).benchResult);
    if ('error' in r) throw new Error(`the page failed (${b}): ${r.error}`);
    for (const row of r.rows) console.log(`  batch ${row.batch}: ours ${fmtMs(row.ours)} ms, onnxruntime-web ${fmtMs(row.ortWeb)} ms (x${row.ratio.toFixed(2)}), maps ${row.agreement.toExponential(1)}`);
    results.push(r);
  }
} finally {
  await browser.close();
  server.close();
  rmSync(tmp, { recursive: true, force: true });
}

/** Our GPU time per kernel in the page, as a Markdown table (largest first). */
function profileTable(batch: number, profile: KernelTime[] | string): string[] {
  if (typeof profile === 'string') return [`Our GPU time per kernel, batch ${batch}: not measured (${profile}).`, ''];
  const total = profile.reduce((t, k) => t + k.ms, 0);
  return [
    `Our GPU time per kernel, one batch of ${batch} (timestamp queries in the page, the first build's; total ${total.toFixed(1)} ms):`,
    '',
    '| kernel | dispatches | ms | share |',
    '|---|---:|---:|---:|',
    ...[...profile].sort((p, q) => q.ms - p.ms).map((k) => `| ${k.kernel} | ${k.dispatches} | ${k.ms.toFixed(1)} | ${((100 * k.ms) / total).toFixed(1)}% |`),
    '',
  ];
}

const date = new Date().toISOString().slice(0, 10);
const name = a.name ?? `${date}-browser-ort-web`;
mkdirSync(a.out!, { recursive: true });
const first = results[0];
const md = [
  `# Inference in the browser: dcam-webgpu vs onnxruntime-web ${first.version}`,
  '',
  `Chromium: \`${first.userAgent}\`; its WebGPU adapter: ${first.adapter}. CPU: ${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}.`,
  `Teacher + student (ResNet18 conv1..layer3, the shipped teacher, a seeded student) + anomaly map at ${size} x ${size}, the same ONNX network for onnxruntime-web (what \`dcam export\` writes); ` +
    `${first.timing.warmup} warm-up, median of ${first.timing.runs} (min-max), maps read back to the CPU in every run; onnxruntime-web with one wasm thread, graph optimisation 'all', loaded as its own files. ` +
    `One page load per build, each timing ours as well: a ratio is from one page. Ratio: onnxruntime-web / ours (above 1: we are faster). Our 3x3 and stride-2 convs: ${first.conv3x3}.`,
  `Command: \`npx tsx bench/browser-peers.ts --size ${size} --batches ${a.batches} --runs ${a.runs} --builds ${a.builds}${a.conv3x3 ? ` --conv3x3 ${a.conv3x3}` : ''}\`.`,
  '',
  '| build | batch | ours (ms) | onnxruntime-web (ms) | ratio | map difference (relative) |',
  '|---|---:|---:|---:|---:|---:|',
  ...results.flatMap((r) => r.rows.map((x) => `| ${r.build === 'webgpu' ? 'C++ WebGPU EP' : 'JSEP'} | ${x.batch} | ${fmtMs(x.ours)} | ${fmtMs(x.ortWeb)} | ${x.ratio.toFixed(2)}x | ${x.agreement.toExponential(1)} |`)),
  '',
  ...first.rows.flatMap((x) => profileTable(x.batch, x.profile)),
].join('\n');
writeFileSync(join(a.out!, `${name}.md`), md);
writeFileSync(join(a.out!, `${name}.json`), JSON.stringify({ date, size, batches: a.batches, cpu: cpus()[0]?.model, results }, null, 2));
console.log(`\nwrote ${join(a.out!, `${name}.md`)} and .json`);
