/**
 * The benchmark harness: conv kernels, end-to-end inference and training steps, ours beside peers on the
 * same adapter in the same run, with a JSON record and a Markdown summary.
 *
 *   npm run bench                          # everything (long on a software adapter)
 *   npm run bench -- --quick               # every case once at tiny size (CI: the harness works)
 *   npm run bench -- --only kernels        # one or more sections: kernels, inference, training, startup
 *   npm run bench -- --no-peer --no-ort --no-ort-web   # without tfjs / onnxruntime-node / -web
 *
 * Writes bench/results/<date>-<adapter>.json and .md (--out DIR to change) and prints the summary.
 */
import { setConvPolicy } from '../src/kernels/conv2d.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';
import { createDevice, describeAdapter } from '../src/graph/device.js';
import { findTeacher } from '../src/train/trainer.js';
import type { Bench } from './lib/context.js';
import { markdown, type BenchReport, type StartupResult } from './lib/report.js';
import { installHostCounters } from './lib/host-counts.js';
import { loadTfjs } from './lib/tfjs-peer.js';
import { tryPeer } from './lib/timing.js';
import { benchKernels } from './sections/kernels.js';
import { benchInference, benchTraining, loadWeights } from './sections/model.js';

const SECTIONS = ['kernels', 'inference', 'training', 'startup'] as const;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function packageVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  // a bundled harness (scripts/device-bench.sh) has no node_modules: the versions it was built with lie beside it
  const beside = join(dirname(fileURLToPath(import.meta.url)), 'packages.json');
  const bundled = existsSync(beside) ? (JSON.parse(readFileSync(beside, 'utf8')) as Record<string, string>) : {};
  for (const name of ['webgpu', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu', 'onnxruntime-node', 'onnxruntime-web']) {
    try {
      out[name] = (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      out[name] = bundled[name] ?? 'not installed';
    }
  }
  out['dcam-webgpu'] = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  return out;
}

function startup(size: number, teacher: string | null, conv3x3: string | undefined): StartupResult {
  // A bundled build of the harness (bench/first-result.mjs beside it) runs without tsx.
  const bundled = join(root, 'bench/first-result.mjs');
  const entry = existsSync(bundled) ? [bundled] : ['--import', 'tsx', join(root, 'bench/first-result.ts')];
  const args = [...entry, '--size', String(size), ...(teacher ? ['--teacher', resolve(teacher)] : []), ...(conv3x3 ? ['--conv3x3', conv3x3] : [])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 600_000, cwd: root });
  const line = r.stdout?.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`first-result child failed (${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`);
  return { ...(JSON.parse(line) as Omit<StartupResult, 'size'>), size };
}

const USAGE = `usage: npm run bench -- [--quick] [--only kernels,inference,training,startup] [--runs N]
                     [--no-peer] [--no-ort] [--no-ort-web] [--conv3x3 direct|winograd] [--teacher FILE] [--out DIR]
  --quick     every case once at tiny size (proves the harness works; not a speed)
  --only      sections to run (default: all)
  --runs      timed runs per case after warm-up (median reported; at least 5)
  --no-peer   skip tfjs-backend-webgpu;  --no-ort  skip onnxruntime-node;  --no-ort-web  skip onnxruntime-web
              (its WebGPU EP and JSEP builds, inference only)
  --methods   training presets to time (default stfpm,dcam); --train-sizes (default 128,256)
  --teacher   teacher weights (default: $DCAM_TEACHER, else ../shared/weights; random if none)
  --conv3x3   how our engine computes 3x3 and stride-2 convs: direct or winograd (default: the adapter's,
              winograd on software adapters, direct on GPUs until a GPU run of both says otherwise)
  --host-wait how our engine waits for the GPU: sleep (default, what createDevice does in Node) or poll
              (spin as Dawn's Node binding does);  --peer-wait  the same for tfjs and onnxruntime-web (default poll:
              as they ship)
  --out       results folder (default: bench/results)`;

export async function runBench(argv: string[]): Promise<BenchReport | null> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      runs: { type: 'string' },
      'no-peer': { type: 'boolean', default: false },
      'no-ort': { type: 'boolean', default: false },
      'no-ort-web': { type: 'boolean', default: false },
      teacher: { type: 'string' },
      methods: { type: 'string', default: 'stfpm,dcam' },
      'train-sizes': { type: 'string', default: '128,256' },
      conv3x3: { type: 'string' },
      'host-wait': { type: 'string', default: 'sleep' },
      'peer-wait': { type: 'string', default: 'poll' },
      out: { type: 'string', default: join(root, 'bench/results') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (a.help) {
    console.log(USAGE);
    return null;
  }
  const only = (a.only ?? []).flatMap((s) => s.split(','));
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only ${s}: choose from ${SECTIONS.join(', ')}`);
  const want = (s: (typeof SECTIONS)[number]) => only.length === 0 || only.includes(s);
  const quick = a.quick!;
  const waitMode = (flag: 'host-wait' | 'peer-wait') => {
    const v = a[flag];
    if (v !== 'sleep' && v !== 'poll') throw new Error(`--${flag} ${v}: choose sleep or poll`);
    return v;
  };
  const hostWait = waitMode('host-wait');
  const conv3x3 = a.conv3x3;
  if (conv3x3 !== undefined && conv3x3 !== 'direct' && conv3x3 !== 'winograd') throw new Error(`--conv3x3 ${conv3x3}: choose direct or winograd`);
  const peerWait = waitMode('peer-wait');

  // Both GPU engines share one Dawn instance (tfjs finds it through navigator.gpu).
  Object.assign(globalThis, globals);
  const gpu = create([]);
  (globalThis as { navigator?: unknown }).navigator = { gpu };
  // navigator.gpu is set, so createDevice cannot tell that this is Dawn's Node binding: say how to wait.
  const rt = await createDevice({ hostWait });
  if (conv3x3) setConvPolicy(rt, { conv3x3 });
  const adapter = describeAdapter(rt);
  const teacherFile = findTeacher(a.teacher);
  const b: Bench = {
    rt,
    tfjs: a['no-peer'] ? { na: 'disabled by --no-peer' } : await tryPeer('tfjs-backend-webgpu', () => loadTfjs(peerWait)),
    quick,
    timing: { warmup: quick ? 1 : 2, runs: quick ? 1 : Math.max(5, Number(a.runs ?? 5)) },
    teacherFile,
    noOrt: a['no-ort']!,
    ortWeb: a['no-ort-web'] ? [] : ['webgpu', 'jsep'],
    gpuGlobals: globals as Record<string, unknown>,
    counters: installHostCounters(globals as Record<string, unknown>),
    peerWait,
    methods: a.methods!.split(',').map((m) => {
      if (m !== 'stfpm' && m !== 'dcam') throw new Error(`--methods ${m}: choose stfpm, dcam`);
      return m;
    }),
    trainSizes: a['train-sizes']!.split(',').map(Number),
  };
  const report: BenchReport = {
    date: new Date().toISOString(),
    quick,
    environment: {
      adapter,
      adapterInfo: rt.adapter,
      limits: { maxStorageBufferBindingSize: rt.limits.maxStorageBufferBindingSize, maxBufferSize: rt.limits.maxBufferSize, maxComputeWorkgroupSizeX: rt.limits.maxComputeWorkgroupSizeX },
      cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
      node: process.version,
      packages: packageVersions(),
      teacher: teacherFile ?? 'random (no weights found)',
      timing: b.timing,
      hostWait: { ours: hostWait, tfjs: peerWait, ortWeb: peerWait },
      conv3x3: { algorithm: conv3x3 ?? (rt.adapter.isSoftware ? 'winograd' : 'direct'), chosen: conv3x3 ? '--conv3x3' : "the adapter's default (conv-plan.ts: RULES.winogradOnSoftware)" },
    },
  };
  console.log(`adapter: ${adapter}\nCPU: ${report.environment.cpu}; timing: ${b.timing.warmup} warm-up, median of ${b.timing.runs}`);

  if (want('inference') || want('training')) {
    const weights = await loadWeights(b);
    if (want('inference')) report.inference = await benchInference(b, weights);
    if (want('training')) report.training = await benchTraining(b, weights);
    weights.teacher.dispose();
  }
  if (want('kernels')) report.kernels = await benchKernels(b);
  if (want('startup')) {
    console.log('\n## time to first result (fresh process)');
    report.startup = await tryPeer('first result', async () => startup(quick ? 32 : 256, teacherFile, conv3x3));
  }
  checkFinite(report);
  checkSameWork(report);

  const md = markdown(report);
  mkdirSync(a.out!, { recursive: true });
  const name = (rt.adapter.description || rt.adapter.architecture || rt.adapter.vendor || 'adapter').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  const base = join(a.out!, `${report.date.slice(0, 19).replace(/[:T]/g, '-')}-${name}${quick ? '-quick' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2));
  writeFileSync(`${base}.md`, md);
  console.log(`\n${md}\nwrote ${base}.json and ${base}.md`);
  rt.destroy();
  return report;
}

/** Every timing and rate in the report must be a finite number (what --quick in CI checks). */
function checkFinite(report: BenchReport): void {
  const bad: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'number' && !Number.isFinite(v)) bad.push(`${path} = ${v}`);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk({ kernels: report.kernels, inference: report.inference, training: report.training, startup: report.startup }, 'report');
  if (bad.length) throw new Error(`non-finite results: ${bad.join(', ')}`);
}

/**
 * The comparison means something only if the peers compute what we compute: their anomaly maps must
 * match ours, and with the same weights (student and attention) the first loss of each method must match.
 */
function checkSameWork(report: BenchReport): void {
  const bad: string[] = [];
  for (const r of report.inference?.rows ?? []) {
    const { ortWeb, ...others } = r.agreement;
    for (const [peer, d] of [...Object.entries(others), ...Object.entries(ortWeb ?? {}).map(([k, v]) => [`onnxruntime-web ${k}`, v] as const)]) {
      if (d !== null && !(d < 1e-3)) bad.push(`${peer} map at batch ${r.batch} differs by ${d}`);
    }
  }
  for (const r of report.training ?? []) {
    const { ours, tfjs } = r.firstLoss;
    if (tfjs !== null && !(Math.abs(ours - tfjs) <= 1e-3 * Math.abs(ours))) bad.push(`tfjs ${r.method} loss ${tfjs} vs ours ${ours}`);
  }
  if (bad.length) throw new Error(`the peers do not compute the same thing: ${bad.join('; ')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await runBench(process.argv.slice(2));
    process.exit(0); // tfjs keeps its own device alive
  } catch (e) {
    console.error(`bench: ${(e as Error).stack ?? e}`);
    process.exit(1);
  }
}
