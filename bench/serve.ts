/**
 * Serving throughput and latency of `dcam serve` (a real worker process, as users start it) under a
 * closed-loop load from autocannon, at batch windows 1 (no batching) and 8, against the CLI's
 * per-process inference (`dcam infer` on one image, a fresh process each time) on the same machine.
 *
 *   npx tsx bench/serve.ts [--size 64] [--seconds 20] [--connections 16] [--out DIR]
 *
 * Writes serve-<adapter>.json and .md into --out (default bench/results).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Command } from 'commander';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { startServeWorker } from '../test/serve-worker.mjs';

const repo = join(import.meta.dirname, '..');
const dcamBin = join(repo, 'bin/dcam.mjs');

interface ServeCase {
  window: string;
  maxBatch: number;
  maxWaitMs: number;
  connections: number;
  requests: number;
  imagesPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  meanBatch: number;
  non2xx: number;
}

function dcamSync(args: string[]): string {
  const r = spawnSync(process.execPath, [dcamBin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dcam ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout + r.stderr;
}

/** The adapter line the last worker printed. */
let adapter = 'unknown adapter';

async function withWorker<T>(run: string, args: string[], fn: (url: string) => Promise<T>): Promise<T> {
  const w = await startServeWorker(dcamBin, run, args);
  adapter = /WebGPU adapter: (.*)/.exec(w.log())?.[1] ?? adapter;
  try {
    return await fn(w.url);
  } finally {
    w.proc.kill('SIGTERM');
    await w.exit;
  }
}

async function load(url: string, body: Buffer, connections: number, seconds: number): Promise<autocannon.Result> {
  // a short warm-up, then the measured run
  await autocannon({ url: `${url}/v1/inspect`, method: 'POST', headers: { 'content-type': 'image/png' }, body, connections, duration: 2 });
  return autocannon({ url: `${url}/v1/inspect`, method: 'POST', headers: { 'content-type': 'image/png' }, body, connections, duration: seconds });
}

function meanBatch(metrics: string): number {
  const sum = Number(/dcam_batch_size_sum\{run="[^"]+"\} ([\d.e+]+)/.exec(metrics)?.[1] ?? NaN);
  const count = Number(/dcam_batch_size_count\{run="[^"]+"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
  return sum / count;
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--size <px>', 'model image size', '64')
    .option('--seconds <s>', 'measured load per case', '20')
    .option('--connections <n>', 'concurrent clients of the loaded cases', '16')
    .option('--cli-runs <n>', 'dcam infer processes timed', '3')
    .option('--out <dir>', 'output folder', 'bench/results')
    .parse()
    .opts<{ size: string; seconds: string; connections: string; cliRuns: string; out: string }>();
  const size = Number(o.size);
  const seconds = Number(o.seconds);
  const connections = Number(o.connections);
  const tmp = mkdtempSync(join(tmpdir(), 'dcam-bench-serve-'));
  try {
    const data = join(tmp, 'data');
    generateSyntheticDataset(data, { seed: 3, size, train: 8, testGood: 2, testPerDefect: 1, categories: { synth_disc: 'object' } });
    const run = join(tmp, 'run');
    dcamSync(['train', '--data', data, '--out', run, '--method', 'stfpm', '--size', String(size), '--steps', '2', '--batch', '4']);
    const image = join(data, 'synth_disc', 'test', 'good', '000.png');
    const body = readFileSync(image);

    // The CLI: one process per call, as a script calling `dcam infer` per part would.
    const cliSeconds: number[] = [];
    for (let i = 0; i < Number(o.cliRuns); i++) {
      const t0 = performance.now();
      dcamSync(['infer', '--run', run, '--out', join(tmp, `infer-${i}`), image]);
      cliSeconds.push((performance.now() - t0) / 1000);
    }
    cliSeconds.sort((a, b) => a - b);
    const cliPerImage = cliSeconds[Math.floor(cliSeconds.length / 2)];

    const cases: ServeCase[] = [];
    // One client alone (the latency of a single request), then the full load without and with batching.
    for (const [maxBatch, maxWaitMs, clients] of [[1, 0, 1], [1, 0, connections], [8, 5, connections]] as const) {
      const c = await withWorker(run, ['--max-batch', String(maxBatch), '--max-wait-ms', String(maxWaitMs), '--queue-limit', String(4 * connections)], async (url) => {
        const r = await load(url, body, clients, seconds);
        const metrics = await (await fetch(`${url}/metrics`)).text();
        return {
          window: maxBatch === 1 ? 'batch 1 (no batching)' : `up to ${maxBatch} per batch, ${maxWaitMs} ms window`,
          maxBatch, maxWaitMs, connections: clients,
          requests: r.requests.total,
          imagesPerSec: r.requests.total / r.duration,
          p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99,
          meanBatch: meanBatch(metrics),
          non2xx: r.non2xx + r.errors,
        };
      });
      cases.push(c);
      console.log(`${c.window}, ${c.connections} connection(s): ${c.imagesPerSec.toFixed(1)} images/s, p50 ${c.p50} ms, p99 ${c.p99} ms, mean batch ${c.meanBatch.toFixed(2)}, failed ${c.non2xx}`);
    }
    const result = { date: new Date().toISOString(), size, seconds, connections, cli: { secondsPerImage: cliPerImage, runs: cliSeconds }, cases };
    console.log(`dcam infer, a process per image: ${cliPerImage.toFixed(2)} s per image (${(1 / cliPerImage).toFixed(2)} images/s)`);
    mkdirSync(o.out, { recursive: true });
    const name = `serve-${size}px`;
    writeFileSync(join(o.out, `${name}.json`), JSON.stringify({ ...result, adapter }, null, 2) + '\n');
    const md = [
      `# dcam serve: throughput and latency (${size} px, ${connections} connections, ${seconds} s per case)`,
      '',
      'Command: `npx tsx bench/serve.ts ' + process.argv.slice(2).join(' ') + '`. A `dcam serve` worker process; load from',
      `autocannon (closed loop: each connection sends its next request when the last is answered); one image`,
      'per request (PNG). The CLI row is `dcam infer` on one image in a fresh process (median of ' + o.cliRuns + ').',
      '',
      `Adapter: ${adapter}.`,
      '',
      '| serving | connections | images/s | p50 ms | p90 ms | p99 ms | mean batch | failed | vs CLI per process |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...cases.map((c) => `| ${c.window} | ${c.connections} | ${c.imagesPerSec.toFixed(1)} | ${c.p50} | ${c.p90} | ${c.p99} | ${c.meanBatch.toFixed(2)} | ${c.non2xx} | **${(c.imagesPerSec * cliPerImage).toFixed(0)}x** |`),
      `| dcam infer, a process per image | 1 | ${(1 / cliPerImage).toFixed(2)} | ${(cliPerImage * 1000).toFixed(0)} | | | 1 | 0 | 1x |`,
      '',
    ];
    writeFileSync(join(o.out, `${name}.md`), md.join('\n'));
    console.log(`wrote ${join(o.out, name)}.json and .md`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
