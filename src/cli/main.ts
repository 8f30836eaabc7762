/**
 * The `dcam` command line: train, eval, infer, and `demo` (the built-in default run of `npm start`).
 * Known problems (bad data, bad weights, divergence, no GPU) end with one line `dcam: ...` and exit code
 * 1; the stack trace only with --verbose.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SingleBar, Presets } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createDevice, describeAdapter } from '../graph/device.js';
import type { Runtime } from '../graph/runtime.js';
import { generateSyntheticDataset } from '../data/synthetic.js';
import { computeMaps, evaluate } from '../eval/evaluate.js';
import { overlayPng } from '../eval/heatmap.js';
import { npyFloat32 } from '../eval/npy.js';
import { writeReport } from '../eval/report.js';
import { loadFiles, loadRun } from '../train/run.js';
import { findTeacher, train, type TrainOptions } from '../train/trainer.js';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
  return n;
};
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number, got '${v}'`);
  return n;
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

function progress(label: string): SingleBar {
  return new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {info}`, hideCursor: true, noTTYOutput: true, notTTYSchedule: 5000, etaBuffer: 20 },
    Presets.shades_classic,
  );
}

async function withDevice<T>(fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await createDevice();
  console.error(`dcam: WebGPU adapter: ${describeAdapter(rt)}`);
  try {
    return await fn(rt);
  } finally {
    rt.destroy();
  }
}

interface TrainFlags {
  data: string; out: string; category?: string[]; method: 'stfpm' | 'dcam'; teacher?: string; randomTeacher?: boolean;
  size: number; epochs?: number; steps?: number; batch: number; lr?: number; momentum: number; weightDecay: number;
  seed: number; init?: string; initAttention?: string; shuffle: boolean; resume?: boolean;
}

async function runTrain(f: TrainFlags): Promise<void> {
  const teacher = f.randomTeacher ? null : findTeacher(f.teacher);
  if (!teacher && !f.randomTeacher) {
    throw new Error('no teacher weights: pass --teacher FILE or set DCAM_TEACHER to an ImageNet ResNet18 (.pth or .safetensors, torchvision names); --random-teacher runs without one, for testing only');
  }
  await withDevice(async (rt) => {
    const bar = progress('train');
    let started = false;
    const opts: TrainOptions = {
      data: f.data, out: f.out, categories: f.category, method: f.method, teacher, randomTeacher: f.randomTeacher,
      size: f.size, epochs: f.epochs, steps: f.steps, batch: f.batch, lr: f.lr, momentum: f.momentum, weightDecay: f.weightDecay,
      seed: f.seed, init: f.init, initAttention: f.initAttention, shuffle: f.shuffle, resume: f.resume,
      onStep: (s) => {
        if (!started) {
          bar.start(s.totalSteps, s.step - 1, { info: '' });
          started = true;
        }
        bar.update(s.step, { info: `epoch ${s.epoch} loss ${s.loss.toFixed(4)} ${s.imagesPerSec.toFixed(1)} img/s` });
      },
    };
    try {
      const r = await train(rt, opts);
      bar.stop();
      console.log(`trained ${r.steps} steps in ${r.seconds.toFixed(1)} s, last loss ${r.lastLoss.toFixed(4)}; run in ${f.out}`);
    } finally {
      bar.stop();
    }
  });
}

async function runEval(f: { data?: string; run: string; teacher?: string; category?: string[]; out?: string; sigma: number; resolution?: 'size' | 'full' }): Promise<{ report: string; mean: Record<string, number> }> {
  return withDevice(async (rt) => {
    const { model, size, run } = await loadRun(rt, f.run, f.teacher);
    const data = f.data ?? run?.data;
    if (!data) throw new Error('--data is needed (the run does not record its data folder)');
    const out = f.out ?? f.run;
    mkdirSync(out, { recursive: true });
    const bar = progress('eval ');
    bar.start(1, 0, { info: '' });
    const result = await evaluate(rt, model, {
      data, categories: f.category ?? run?.categories ?? [], size, out, sigma: f.sigma, resolution: f.resolution ?? 'size',
      onImage: (done, total) => {
        bar.setTotal(total);
        bar.update(done, { info: 'computing maps' });
      },
    });
    bar.stop();
    const { report, metrics } = writeReport(out, result, { run: f.run, method: model.config.method, size, sigma: f.sigma, resolution: f.resolution ?? 'size' });
    const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : ' n/a ');
    console.log('category            image-AUROC  pixel-AUROC  AU-PRO@0.3  legacy-PRO');
    for (const c of result.categories) console.log(`${c.category.padEnd(20)}${fmt(c.imageAUROC).padStart(11)}  ${fmt(c.pixelAUROC).padStart(11)}  ${fmt(c.auPRO).padStart(10)}  ${fmt(c.legacyPRO).padStart(10)}`);
    console.log(`${'mean'.padEnd(20)}${fmt(result.mean.imageAUROC).padStart(11)}  ${fmt(result.mean.pixelAUROC).padStart(11)}  ${fmt(result.mean.auPRO).padStart(10)}  ${fmt(result.mean.legacyPRO).padStart(10)}`);
    console.log(`metrics: ${metrics}\nreport:  ${report}`);
    return { report, mean: result.mean };
  });
}

async function runInfer(images: string[], f: { run?: string; student?: string; teacher?: string; method: string; size?: number; out: string; raw?: boolean }): Promise<void> {
  if (images.length === 0) throw new Error('no images given');
  await withDevice(async (rt) => {
    let loaded;
    if (f.run) loaded = await loadRun(rt, f.run, f.teacher);
    else {
      if (!f.student || !f.size) throw new Error('either --run RUN, or --student FILE with --teacher FILE, --method and --size');
      const teacher = findTeacher(f.teacher);
      if (!teacher) throw new Error('no teacher weights: pass --teacher FILE or set DCAM_TEACHER');
      loaded = await loadFiles(rt, f.student, teacher, f.method, f.size);
    }
    mkdirSync(f.out, { recursive: true });
    const { maps, inputs } = await computeMaps(rt, loaded.model, images, loaded.size);
    const scores: Record<string, number> = {};
    const S = loaded.size;
    const names = outputNames(images);
    maps.forEach((m, i) => {
      const name = names[i];
      const score = m.reduce((a, v) => (v > a ? v : a), -Infinity);
      scores[images[i]] = score;
      const lo = m.reduce((a, v) => (v < a ? v : a), Infinity);
      writeFileSync(join(f.out, `${name}.png`), overlayPng(inputs[i], m, S, lo, score));
      if (f.raw) writeFileSync(join(f.out, `${name}.npy`), npyFloat32(m, [S, S]));
    });
    writeFileSync(join(f.out, 'scores.json'), JSON.stringify(scores, null, 2));
    console.log(`wrote ${images.length} overlay(s)${f.raw ? ' and .npy maps' : ''} and scores.json to ${f.out}`);
  });
}

/** Output file stems: the image's name, prefixed with its folder where two images share a name. */
function outputNames(images: readonly string[]): string[] {
  const stems = images.map((p) => basename(p, extname(p)));
  return stems.map((s, i) => (stems.indexOf(s) !== stems.lastIndexOf(s) ? `${basename(dirname(images[i]))}_${s}` : s));
}

/** The built-in default: synthetic data, a short DCAM training, evaluation, report. */
async function runDemo(f: { dir: string; steps: number; size: number }): Promise<void> {
  const data = join(f.dir, 'data');
  const run = join(f.dir, 'run');
  if (!existsSync(join(data, 'synth_disc'))) {
    console.log(`generating a synthetic dataset (two categories, ${f.size}x${f.size}) in ${data}`);
    generateSyntheticDataset(data, { seed: 0, size: f.size, train: 32, testGood: 8, testPerDefect: 6 });
  }
  const teacher = findTeacher();
  if (!teacher) {
    console.log('dcam: NOTE: no ImageNet teacher found (DCAM_TEACHER or ../shared/weights); running with a RANDOM teacher.\n' +
      '      Real use needs the ImageNet ResNet18: torchvision resnet18-f37072fd.pth or timm resnet18.tv_in1k; pass it with --teacher or DCAM_TEACHER.');
  } else console.log(`teacher: ${teacher}`);
  await runTrain({
    data, out: run, method: 'dcam', teacher: teacher ?? undefined, randomTeacher: !teacher, size: f.size, steps: f.steps, batch: 8,
    momentum: 0.9, weightDecay: 1e-4, seed: 0, shuffle: true,
  });
  await runEval({ run, data, sigma: 0 });
}

export function buildProgram(): Command {
  const program = new Command('dcam')
    .description('distillation anomaly detection (DCAM, STFPM) on WebGPU')
    .option('--verbose', 'print stack traces of errors')
    .exitOverride() // inherited by the subcommands added below
    .showHelpAfterError('(dcam <command> --help lists the options)');

  program.command('train')
    .description('train one model on every category under --data (or the --category ones)')
    .requiredOption('--data <dir>', 'MVTec-style data folder')
    .requiredOption('--out <run>', 'run folder (config, checkpoints, log)')
    .option('--category <name>', 'category to use (repeatable)', collect)
    .addOption(new Option('--method <m>', 'method preset').choices(['stfpm', 'dcam']).default('dcam'))
    .option('--teacher <file>', 'ImageNet ResNet18 weights (.pth or .safetensors); default $DCAM_TEACHER')
    .option('--random-teacher', 'allow a random teacher (testing only)')
    .option('--size <px>', 'image size', int('--size'), 256)
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--steps <n>', 'optimiser steps (instead of epochs)', int('--steps'))
    .option('--batch <n>', 'batch size', int('--batch'), 32)
    .option('--lr <x>', 'learning rate (default: the preset, 0.1 dcam / 0.4 stfpm)', num('--lr'))
    .option('--momentum <x>', 'SGD momentum', num('--momentum'), 0.9)
    .option('--weight-decay <x>', 'SGD weight decay', num('--weight-decay'), 1e-4)
    .option('--seed <n>', 'seed', (v) => Number(v), 0)
    .option('--init <file>', 'initial student weights (safetensors / pth)')
    .option('--init-attention <file>', 'initial attention weights')
    .option('--no-shuffle', 'batches in sorted path order')
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .action((opts: TrainFlags) => runTrain(opts));

  program.command('eval')
    .description('evaluate a run: image/pixel AUROC, AU-PRO@0.3, legacy PRO; metrics.json, report.html, maps/')
    .requiredOption('--run <run>', 'run folder')
    .option('--data <dir>', 'data folder (default: the one the run trained on)')
    .option('--category <name>', 'category (repeatable)', collect)
    .option('--teacher <file>', "teacher weights (default: the run's own, else $DCAM_TEACHER)")
    .option('--out <dir>', 'output folder (default: the run folder)')
    .option('--sigma <x>', 'Gaussian smoothing of the maps (0 = off)', num('--sigma'), 0)
    .addOption(new Option('--resolution <r>', "pixel metrics at the training size or at the ground truth's full resolution (maps upsampled bilinearly)").choices(['size', 'full']).default('size'))
    .action(async (opts) => {
      await runEval(opts);
    });

  program.command('infer')
    .description('anomaly maps and scores for images')
    .argument('<images...>', 'image files')
    .option('--run <run>', 'run folder')
    .option('--student <file>', 'student weights')
    .option('--teacher <file>', 'teacher weights')
    .addOption(new Option('--method <m>', 'method preset').choices(['stfpm', 'dcam']).default('dcam'))
    .option('--size <px>', 'image size', int('--size'))
    .requiredOption('--out <dir>', 'output folder')
    .option('--raw', 'also write the maps as .npy (float32, size x size)')
    .action((images: string[], opts) => runInfer(images, opts));

  program.command('bench')
    .description('the benchmark harness (needs the dev dependencies: npm ci in a checkout); options as npm run bench')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[options...]', 'e.g. --quick, --only kernels,inference, --no-peer, --no-ort, --runs 7, --out DIR')
    .action(async (args: string[]) => {
      const here = dirname(fileURLToPath(import.meta.url));
      const { runBench } = (await import(join(here, '../../bench/run.ts'))) as { runBench: (argv: string[]) => Promise<unknown> };
      await runBench(args);
      process.exit(0); // the tfjs peer keeps its own device alive
    });

  program.command('demo')
    .description('the built-in default: synthetic data, a short DCAM training, evaluation and report')
    .option('--dir <dir>', 'working folder', 'runs/demo')
    .option('--steps <n>', 'training steps', int('--steps'), 120)
    .option('--size <px>', 'image size', int('--size'), 64)
    .action((opts) => runDemo(opts));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed the message
    const err = e as Error;
    console.error(`dcam: ${err.message}`);
    if (verbose) console.error(err.stack);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv);
}
