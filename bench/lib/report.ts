/** The Markdown summary of a benchmark run (every number from the run's JSON). */
import type { KernelTime } from '../../src/graph/profiler.js';
import type { KernelsResult } from '../sections/kernels.js';
import type { InferenceRow, TrainingRow } from '../sections/model.js';
import { fmtMs, type PeerResult, type Timing } from './timing.js';

export interface StartupResult {
  moduleLoadMs: number;
  deviceMs: number;
  weightsMs: number;
  firstMapMs: number;
  warmMapMs: number;
  toFirstResultMs: number;
  size: number;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  environment: Record<string, unknown>;
  kernels?: KernelsResult;
  inference?: { rows: InferenceRow[]; ortVersion: string | null; ortThreads: number | null; ortWebVersion?: string | null };
  training?: TrainingRow[];
  startup?: PeerResult<StartupResult>;
}

const peer = (p: PeerResult<Timing>, digits = 1) => ('ok' in p ? fmtMs(p.ok, digits) : `n/a (${p.na})`);
const ratio = (r: number | null) => (r === null ? '-' : `**${r.toFixed(2)}x**`);
const mib = (b: number | null) => (b === null ? '-' : `${(b / 2 ** 20).toFixed(1)} MiB`);

/** The ten kernels that took the most GPU time in `what`, or why there is no breakdown. */
function profileTable(out: string[], what: string, profile: KernelTime[] | string): void {
  if (typeof profile === 'string') {
    out.push('', `GPU time per kernel, ${what}: n/a, ${profile}.`);
    return;
  }
  const total = profile.reduce((a, k) => a + k.ms, 0);
  out.push('', `### GPU time per kernel, ${what} (timestamp queries; total ${total.toFixed(1)} ms)`, '');
  out.push('| kernel | dispatches | ms | share |', '|---|---:|---:|---:|');
  for (const k of profile.slice(0, 10)) out.push(`| ${k.kernel} | ${k.dispatches} | ${k.ms.toFixed(1)} | ${((100 * k.ms) / total).toFixed(1)}% |`);
}

export function markdown(r: BenchReport): string {
  const env = r.environment as {
    adapter: string;
    cpu: string;
    node: string;
    packages: Record<string, string>;
    teacher: string;
    hostWait?: { ours: string; tfjs: string; ortWeb?: string };
    conv3x3?: { algorithm: string; chosen: string };
  };
  const out: string[] = [
    `# dcam-webgpu benchmark${r.quick ? ' (--quick: tiny sizes, one run; proves the harness, not a speed)' : ''}`,
    '',
    `${r.date} · adapter: ${env.adapter} · CPU: ${env.cpu} · Node ${env.node}`,
    `peers: tfjs-backend-webgpu ${env.packages['@tensorflow/tfjs-backend-webgpu'] ?? '?'} (same Dawn adapter), onnxruntime-web ${env.packages['onnxruntime-web'] ?? '?'} (same Dawn adapter: its C++ WebGPU EP and JSEP, inference), onnxruntime-node ${env.packages['onnxruntime-node'] ?? '?'} (CPU) · teacher: ${env.teacher}`,
    '',
    'Times in ms: median (min-max) after warm-up, GPU queue drained around each run. Ratio = peer time / our time (above 1: dcam-webgpu is faster).',
  ];
  if (env.hostWait) {
    const how = (m: string) => (m === 'sleep' ? 'sleeps between polls' : "spins (Dawn's Node binding polls from setImmediate)");
    out.push(`While waiting for the GPU the Node thread: ours ${how(env.hostWait.ours)}; tfjs ${how(env.hostWait.tfjs)}${env.hostWait.ortWeb ? `; onnxruntime-web ${how(env.hostWait.ortWeb)}` : ''}.`);
  }
  if (env.conv3x3) out.push(`Our 3x3 and stride-2 convs: ${env.conv3x3.algorithm} (${env.conv3x3.chosen}; the kernels table marks the passes that run by Winograd).`);
  if (r.inference) {
    out.push('', '## End-to-end inference (image batch in, anomaly map read back; dcam preset)', '');
    out.push('| batch | size | GFLOP/image | ours ms | ours ms/image | tfjs-webgpu ms | vs tfjs | onnxruntime CPU ms | vs onnxruntime | map agreement (tfjs / ort) |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const x of r.inference.rows) {
      out.push(
        `| ${x.batch} | ${x.size} | ${x.gflopPerImage.toFixed(2)} | ${fmtMs(x.ours)} | ${x.oursMsPerImage.toFixed(1)} | ${peer(x.tfjs)} | ${ratio(x.ratioTfjs)} | ${peer(x.ort)} | ${ratio(x.ratioOrt)} | ` +
          `${x.agreement.tfjs?.toExponential(1) ?? '-'} / ${x.agreement.ort?.toExponential(1) ?? '-'} |`,
      );
    }
    if (r.inference.ortThreads) out.push('', `onnxruntime-node ${r.inference.ortVersion}, ${r.inference.ortThreads} intra-op threads, graph optimisation 'all'.`);
    const builds = [...new Set(r.inference.rows.flatMap((x) => Object.keys(x.ortWeb ?? {})))] as Array<keyof InferenceRow['ortWeb']>;
    if (builds.length) {
      const name = { webgpu: 'ort-web WebGPU EP (C++)', jsep: 'ort-web JSEP' } as const;
      out.push('', `### Beside onnxruntime-web ${r.inference.ortWebVersion ?? ''} on the same adapter (the same ONNX model; its wasm run by Liftoff only, one wasm thread)`, '');
      out.push(`| batch | size | ours ms | ${builds.map((k) => `${name[k]} ms | vs ${name[k]}`).join(' | ')} | map agreement (${builds.join(' / ')}) |`, `|---:|---:|---:|${builds.map(() => '---:|---:').join('|')}|---|`);
      for (const x of r.inference.rows) {
        out.push(`| ${x.batch} | ${x.size} | ${fmtMs(x.ours)} | ${builds.map((k) => `${x.ortWeb[k] ? peer(x.ortWeb[k]!) : '-'} | ${ratio(x.ratioOrtWeb[k] ?? null)}`).join(' | ')} | ${builds.map((k) => x.agreement.ortWeb?.[k]?.toExponential(1) ?? '-').join(' / ')} |`);
      }
    }
    for (const x of r.inference.rows) profileTable(out, `one inference batch of ${x.batch} at ${x.size}x${x.size}`, x.profile);
  }
  if (r.training) {
    out.push('', '## One training step (upload, loss, backward, SGD with momentum and weight decay, loss read back)', '');
    out.push('| method | batch | size | GFLOP/image | ours ms | ours ms/image | tfjs-webgpu ms | vs tfjs | first loss ours / tfjs | peak GPU (ours) | tfjs GPU allocated |', '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|');
    for (const x of r.training) {
      out.push(
        `| ${x.method} | ${x.batch} | ${x.size} | ${x.gflopPerImage.toFixed(2)} | ${fmtMs(x.ours, 0)} | ${x.oursMsPerImage.toFixed(1)} | ${peer(x.tfjs, 0)} | ${ratio(x.ratioTfjs)} | ` +
          `${x.firstLoss.ours.toFixed(5)} / ${x.firstLoss.tfjs?.toFixed(5) ?? '-'} | ${mib(x.peakBytes)} | ${mib(x.tfjsAllocatedBytes)} |`,
      );
    }
    if (r.training.some((x) => x.host)) {
      out.push('', '### The host side of a step (what our engine asks of WebGPU, counted at the API; the same on any adapter)', '');
      out.push('Replayed: a step as training runs it (recorded once, replayed; the teacher\'s features computed by the engine each step here, as for an image seen the first time). Through autograd: the first steps of a shape. Host ms: the Node thread\'s busy time (wall time minus its sleep while the GPU works): what a GPU faster than that would wait on.', '');
      out.push('| method | size | step | dispatches | submits | bind groups created | buffers created | KiB written | host ms | wall ms |', '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const x of r.training) {
        if (!x.host) continue;
        for (const [kind, h] of [['replayed', x.host.replayed], ['through autograd', x.host.autograd]] as const) {
          out.push(`| ${x.method} | ${x.size} | ${kind} | ${h.dispatches.toFixed(0)} | ${h.submits.toFixed(0)} | ${h.bindGroups.toFixed(0)} | ${h.buffers.toFixed(0)} | ${(h.bytesWritten / 1024).toFixed(0)} | ${h.hostMs.toFixed(1)} | ${h.wallMs.toFixed(1)} |`);
        }
      }
    }
    for (const x of r.training) profileTable(out, `one ${x.method} step at batch ${x.batch}, ${x.size}x${x.size}`, x.profile);
  }
  if (r.kernels) {
    const k = r.kernels;
    out.push('', `## conv2d kernels (batch ${k.batch}, input ${k.size}x${k.size})`, '');
    out.push(`Ceiling (best large-matmul rate of the engine on this adapter, same run): **${k.ceiling.gflops.toFixed(2)} GFLOP/s** (${k.ceiling.shape}).`);
    if (k.rows.some((x) => x.algorithm !== 'direct')) out.push('Passes marked Winograd do fewer multiply-adds; their GFLOP/s are direct-equivalent (the direct convolution\'s FLOPs over the time), so they can pass the ceiling.');
    out.push('');
    out.push('| conv | pass | GFLOP | ours ms | ours GFLOP/s | of ceiling | tfjs-webgpu ms | tfjs GFLOP/s | ratio |', '|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of k.rows) {
      const t = 'ok' in x.tfjs ? x.tfjs.ok : null;
      out.push(
        `| ${x.conv} | ${x.pass}${x.algorithm !== 'direct' ? ` (${x.algorithm})` : ''} | ${x.gflop.toFixed(3)} | ${fmtMs(x.ours, 2)} | ${x.oursGflops.toFixed(2)} | ${(100 * x.fractionOfCeiling).toFixed(0)}% | ` +
          `${peer(x.tfjs, 2)} | ${t ? (x.gflop / (t.median / 1000)).toFixed(2) : '-'} | ${ratio(x.ratio)} |`,
      );
    }
    if (k.summary.geomeanRatio !== null) out.push('', `tfjs/ours over ${k.summary.cases} cases: geometric mean ${k.summary.geomeanRatio.toFixed(2)}x, min ${k.summary.minRatio!.toFixed(2)}x.`);
  }
  if (r.startup) {
    out.push('', '## Time to first result (fresh process, inference at batch 1)', '');
    if ('na' in r.startup) out.push(`n/a (${r.startup.na})`);
    else {
      const s = r.startup.ok;
      out.push(
        `size ${s.size}: **${s.toFirstResultMs.toFixed(0)} ms** from process start to the first map read back: module loading ${s.moduleLoadMs.toFixed(0)} ms, ` +
          `device ${s.deviceMs.toFixed(0)} ms, weights ${s.weightsMs.toFixed(0)} ms, first map ${s.firstMapMs.toFixed(0)} ms (a warm map takes ${s.warmMapMs.toFixed(0)} ms: ` +
          `pipeline compilation and first-use cost ~${Math.max(0, s.firstMapMs - s.warmMapMs).toFixed(0)} ms).`,
      );
    }
  }
  return out.join('\n') + '\n';
}

/** The command that ran this script, as given, with a `--note` text elided (reports print the note below their tables). */
export function commandLine(script: string): string {
  const args = process.argv.slice(2).map((x, i, all) => (all[i - 1] === '--note' ? '"..."' : x));
  return `npx tsx ${script} ${args.join(' ')}`;
}
