/**
 * The `dcam` command line: train, eval, calibrate, infer, export, teacher fetch/show, bench, and `demo` (the
 * built-in default run of `npm start`).
 * Known problems (bad data, bad weights, divergence, no GPU) end with one line `dcam: ...` and exit code
 * 1; the stack trace only with --verbose.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import type { Runtime } from '../graph/runtime.js';
import { generateSyntheticDataset } from '../data/synthetic.js';
import { dataRootList, discoverCategories, type Category } from '../data/mvtec.js';
import { folderCategory, groupSources, listImages } from '../data/folders.js';
import { makeTiling } from '../data/tiles.js';
import type { RunConfig } from '../train/run-config.js';
import { evaluate } from '../eval/evaluate.js';
import { writeReport } from '../eval/report.js';
import { readRunConfig, runDataDir, trainingInProgress } from '../train/run.js';
import type { Detector } from '../detector.js';
import { loadDetector, loadDetectorFromFiles } from '../node.js';
import { cacheDir, fetchTeacher, findTeacher, isShippedTeacher, SHIPPED_TEACHER } from '../train/teacher.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { collect, collectList, fraction, int, nonNegativeInt, num, portArg, progress, sizeArg, tilingChecks, tilingOf, withDevice, withProgress, type TilingFlags } from './common.js';
import { runCalibrate, saveThresholds, type CalibrateFlags } from './calibrate.js';
import { runExport, type ExportFlags } from './export.js';
import { inferImages } from './infer.js';
import type { ServeFlags } from './serve.js';
import { limits as imageLimits } from '../data/image.js';
import { DEFAULT_TEACHER_CACHE } from '../train/teacher-cache.js';

const describeTeacher = (file: string) => (isShippedTeacher(file) ? `${SHIPPED_TEACHER.description}: ${file}` : file);

interface TrainFlags {
  data?: string[]; good?: string[]; out: string; category?: string[]; method?: 'stfpm' | 'dcam'; teacher?: string; randomTeacher?: boolean;
  size?: number; epochs?: number; steps?: number; batch?: number; lr?: number; momentum?: number; weightDecay?: number;
  seed?: number; init?: string; initAttention?: string; shuffle?: boolean; balanced?: boolean; resume?: boolean; overwrite?: boolean;
  teacherCacheMb?: number; teacherCacheHostMb?: number; tile?: number; stride?: number; scale?: number;
}

/** The options the user gave (commander fills in defaults; a resume compares only what was given). */
function given<T extends object>(opts: T, cmd?: Command): Partial<T> {
  if (!cmd) return opts;
  return Object.fromEntries(Object.entries(opts).filter(([k]) => cmd.getOptionValueSource(k) !== 'default')) as Partial<T>;
}

async function runTrain(all: TrainFlags, cmd?: Command): Promise<void> {
  const f = { ...given(all, cmd), data: all.data, good: all.good, out: all.out };
  if (f.resume && f.overwrite) throw new Error('--resume and --overwrite exclude each other');
  if (!f.resume && !f.data === !f.good) throw new Error('give the training images: --data DIR (MVTec layout: <category>/train/good) or --good DIR|GLOB (any folder of good images), one of the two');
  if (f.good && f.category && f.category.length > 1) throw new Error('with --good, --category names the one category of bare sources; name several as --good NAME=PATH');
  if ((f.stride !== undefined || f.scale !== undefined) && f.tile === undefined) throw new Error('--stride and --scale cut images into tiles: give --tile too');
  if (f.tile !== undefined && f.size !== undefined && f.size !== f.tile) throw new Error(`--tile ${f.tile} with --size ${f.size}: a tiled run's size is its tile (leave --size out)`);
  // plain sources by category: NAME=PATH, else --category, else the folder's name
  const good = f.good ? Object.fromEntries(groupSources(f.good, f.category?.[0])) : undefined;
  if (!f.resume) {
    // a missing or malformed data folder fails before the device starts
    const cats = good ? Object.entries(good).map(([name, sources]) => folderCategory(name, { good: sources })) : discoverCategories(f.data!, f.category ?? []);
    if (cats.length > 1) {
      const counts = cats.map((c) => `${c.name} ${c.train.length}`).join(', ');
      console.log(`categories (training images): ${counts}; batches ${f.balanced ? 'balanced across categories (--balanced)' : 'drawn uniformly over all images (--balanced draws them evenly)'}`);
    }
  }
  const teacher = f.randomTeacher ? null : findTeacher(f.teacher);
  if (!f.resume || f.teacher) console.log(`teacher: ${teacher ? describeTeacher(teacher) : 'RANDOM (--random-teacher: for testing only)'}`);
  await withDevice(async (rt) => {
    const bar = progress('train');
    let started = false;
    const opts: TrainOptions = {
      data: f.data, good, out: f.out, categories: good ? undefined : f.category, method: f.method, teacher: f.resume && !f.teacher ? null : teacher, randomTeacher: f.randomTeacher,
      size: f.tile ?? f.size, tiling: f.tile !== undefined ? { stride: f.stride, scale: f.scale } : undefined, epochs: f.epochs, steps: f.steps, batch: f.batch, lr: f.lr, momentum: f.momentum, weightDecay: f.weightDecay,
      seed: f.seed, init: f.init, initAttention: f.initAttention, shuffle: f.shuffle, balanced: f.balanced, resume: f.resume, overwrite: f.overwrite,
      // flags as parsed, or the defaults for a caller that builds them (the demo)
      teacherCache: {
        gpuBytes: all.teacherCacheMb !== undefined ? all.teacherCacheMb * 2 ** 20 : DEFAULT_TEACHER_CACHE.gpuBytes,
        hostBytes: all.teacherCacheHostMb !== undefined ? all.teacherCacheHostMb * 2 ** 20 : DEFAULT_TEACHER_CACHE.hostBytes,
      },
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
      if (r.alreadyComplete) console.log(`the run in ${f.out} is already complete at step ${r.steps} (last loss ${r.lastLoss.toFixed(4)}); pass a larger --steps or --epochs with --resume to train longer`);
      else console.log(`trained ${r.steps} steps in ${r.seconds.toFixed(1)} s, last loss ${r.lastLoss.toFixed(4)}; run in ${f.out}`);
    } finally {
      bar.stop();
    }
  });
}

interface EvalFlags extends TilingFlags {
  data?: string[]; good?: string[]; defect?: string[]; masks?: string[];
  run: string; teacher?: string; category?: string[]; out?: string; sigma: number; resolution?: 'size' | 'full'; force?: boolean;
}

/**
 * The categories to evaluate: from plain folders (--good, --defect, --masks; a bare source belongs to
 * --category, else to the run's only category, else to its folder's name), or in the MVTec layout (--data,
 * default the run's own data folders).
 */
function evalCategories(f: EvalFlags, run: RunConfig): { categories: Category[]; source: string } {
  if (f.good || f.defect || f.masks) {
    if (f.data) throw new Error('--data (MVTec layout) or --good / --defect / --masks (plain folders), not both');
    const fallback = f.category?.[0] ?? (run.categories.length === 1 ? run.categories[0] : undefined);
    const [good, defect, masks] = [f.good, f.defect, f.masks].map((s) => groupSources(s ?? [], fallback));
    for (const name of masks.keys()) if (!defect.has(name)) throw new Error(`--masks for ${name}, which has no --defect images`);
    const names = [...new Set([...good.keys(), ...defect.keys()])];
    for (const name of names) {
      if (!good.has(name) || !defect.has(name)) throw new Error(`category ${name}: evaluation needs its good images (--good) and its defect images (--defect)${good.size + defect.size > 2 ? '; name each source NAME=PATH' : ''}`);
    }
    const source = [['--good', f.good], ['--defect', f.defect], ['--masks', f.masks]].filter(([, v]) => v).map(([k, v]) => `${k} ${(v as string[]).join(' ')}`).join(' ');
    return { categories: names.map((name) => folderCategory(name, { good: good.get(name)!, defect: defect.get(name)!, masks: masks.get(name) })), source };
  }
  if (run.good && !f.data) throw new Error(`${f.run} was trained from folders of good images: evaluate it with --good DIR --defect DIR [--masks DIR] (or --data for an MVTec-layout folder)`);
  const data = f.data ?? runDataDir(run, f.run);
  return { categories: discoverCategories(data, f.category ?? run.categories), source: dataRootList(data).join(', ') };
}

async function runEval(f: EvalFlags): Promise<{ report: string; mean: Record<string, number> }> {
  const run = readRunConfig(f.run);
  const busy = trainingInProgress(f.run);
  if (busy) throw new Error(`${busy}: its weights change every epoch, and thresholds set from them would not fit the finished model; evaluate it once the training has finished or stopped`);
  // a missing folder, category or mask fails before the device starts
  const { categories, source } = evalCategories(f, run);
  return withDevice(async (rt) => {
    const det = await loadDetector({ run: f.run, runtime: rt, teacher: f.teacher, force: f.force, tiling: tilingOf(f) });
    const size = det.size;
    const out = f.out ?? f.run;
    mkdirSync(out, { recursive: true });
    const result = await withProgress('eval ', (bar) => {
      bar.start(1, 0, { info: '' });
      return evaluate(det, {
        categories, source, out, sigma: f.sigma, resolution: f.resolution ?? 'size',
        onImage: (done, total) => {
          bar.setTotal(total);
          bar.update(done, { info: 'computing maps' });
        },
      });
    });
    for (const k of result.skipped) console.error(`dcam: category ${k.category}: nothing to evaluate (${k.reason})`);
    if (result.categories.length === 0) throw new Error(`nothing to evaluate: ${result.skipped.map((k) => `${k.category} has ${k.reason}`).join('; ')}`);
    det.dispose();
    const { report, metrics } = writeReport(out, result, { run: f.run, method: det.method.method, size, sigma: f.sigma, resolution: f.resolution ?? 'size', thresholds: result.thresholds });
    const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : ' n/a ');
    console.log('category            image-AUROC  pixel-AUROC  AU-PRO@0.3  legacy-PRO');
    for (const c of result.categories) console.log(`${c.category.padEnd(20)}${fmt(c.imageAUROC).padStart(11)}  ${fmt(c.pixelAUROC).padStart(11)}  ${fmt(c.auPRO).padStart(10)}  ${fmt(c.legacyPRO).padStart(10)}${c.pixelNote ? `   (pixel metrics n/a: ${c.pixelNote})` : ''}`);
    console.log(`${'mean'.padEnd(20)}${fmt(result.mean.imageAUROC).padStart(11)}  ${fmt(result.mean.pixelAUROC).padStart(11)}  ${fmt(result.mean.auPRO).padStart(10)}  ${fmt(result.mean.legacyPRO).padStart(10)}`);
    const t = result.thresholds;
    if (t) {
      saveThresholds(f.run, t);
      console.log(`thresholds (F1-optimal, in ${join(f.run, 'config.json')}): image ${t.image.toPrecision(6)} (F1 ${t.f1!.toFixed(4)}), pixel ${t.pixel.toPrecision(6)}${t.pixelF1 !== undefined ? ` (F1 ${t.pixelF1.toFixed(4)})` : ' (the image threshold: no masks)'}; scores normalised from [${t.min.toPrecision(4)}, ${t.max.toPrecision(4)}]`);
      for (const [name, c] of Object.entries(t.categories ?? {})) console.log(`  ${name.padEnd(18)} its own: image ${c.image.toPrecision(6)} (F1 ${c.f1!.toFixed(4)}), pixel ${c.pixel.toPrecision(6)}, normalised from [${c.min.toPrecision(4)}, ${c.max.toPrecision(4)}]`);
      if (t.categories) console.log('infer, serve and the package judge an image by its category\'s thresholds: given (--category, ?category=), else the category whose training images it is nearest to');
    } else console.log('thresholds: not computed (the evaluated set needs good and defect images); dcam calibrate sets one from good images');
    console.log(`metrics: ${metrics}\nreport:  ${report}`);
    return { report, mean: result.mean };
  });
}

interface LoadFlags extends TilingFlags { run?: string; student?: string; teacher?: string; method: string; size?: number; force?: boolean }

async function loadForInference(rt: Runtime, f: LoadFlags): Promise<Detector> {
  if (f.run) return loadDetector({ run: f.run, runtime: rt, teacher: f.teacher, force: f.force, tiling: tilingOf(f) });
  // loose files record no tiling: --tile (with --stride, --scale) sets it
  if (f.tile !== undefined && f.size !== undefined && f.size !== f.tile) throw new Error(`--tile ${f.tile} with --size ${f.size}: the tile is the network's size (leave --size out)`);
  const size = f.tile ?? f.size;
  if (!f.student || !size) throw new Error('either --run RUN, or --student FILE with --method and --size (or --tile) (and --teacher FILE unless the shipped teacher)');
  if ((f.stride !== undefined || f.scale !== undefined) && f.tile === undefined) throw new Error('--stride and --scale cut images into tiles: give --tile too');
  const tiling = f.tile !== undefined ? makeTiling(f.tile, f.stride, f.scale) : undefined;
  return loadDetectorFromFiles({ student: f.student, method: f.method, size, teacher: f.teacher, runtime: rt, tiling });
}

async function runInfer(args: string[], f: LoadFlags & { out: string; raw?: boolean; category?: string }): Promise<void> {
  if (args.length === 0) throw new Error('no images given');
  if (f.run) readRunConfig(f.run); // a wrong run fails before the device starts
  const inputs = listImages(args);
  await withDevice(async (rt) => {
    const busy = f.run ? trainingInProgress(f.run) : null;
    if (busy) console.error(`dcam: WARNING: ${busy}: inspecting with its latest checkpoint, which the training will replace`);
    const det = await loadForInference(rt, f);
    if (!det.thresholds) console.error('dcam: NOTE: the run has no thresholds (run dcam eval, or dcam calibrate with good images): scores only, no labels');
    const records = await withProgress('infer', (bar) => {
      bar.start(inputs.length, 0, { info: '' });
      if (f.category !== undefined && !det.categories.includes(f.category)) throw new Error(`--category ${f.category}: the run has no thresholds for it (${det.categories.length ? `it has ${det.categories.join(', ')}` : 'it has one threshold for all its images; dcam eval on several categories sets one per category'})`);
      return inferImages(det, inputs, { out: f.out, raw: f.raw, category: f.category, onProgress: (done, _, defects) => bar.update(done, { info: det.thresholds ? `${defects} defect(s)` : '' }) });
    }).finally(() => det.dispose());
    const failed = records.filter((r) => r.error);
    const defects = records.filter((r) => r.label === 'defect').length;
    const verdict = det.thresholds ? `: ${defects} defect, ${records.length - failed.length - defects} ok` : '';
    console.log(`inspected ${records.length - failed.length} image(s)${verdict}; overlays${det.thresholds ? ', defect masks' : ''}${f.raw ? ', .npy maps' : ''}, scores.json and scores.csv in ${f.out}`);
    if (failed.length) throw new Error(`${failed.length} image(s) could not be read, e.g. ${failed[0].error} (all listed in ${join(f.out, 'scores.csv')})`);
  });
}

async function runTeacherFetch(f: { from: string; sha256?: string; offline?: boolean }): Promise<void> {
  const got = await withProgress('fetch', (bar) => {
    let started = false;
    return fetchTeacher({
      from: f.from, sha256: f.sha256, offline: f.offline,
      onProgress: (received, total) => {
        if (!started) bar.start(total ?? 0, 0, { info: '' });
        started = true;
        bar.update(received, { info: total ? '' : `${(received / 2 ** 20).toFixed(1)} MiB` });
      },
    });
  });
  console.log(`${got.file}\nverified sha256 ${got.sha256} (${got.origin}); use it with --teacher ${got.file}`);
}

/** The built-in default: synthetic data, a short training of the default preset, evaluation, report. */
async function runDemo(f: { dir: string; steps: number; size: number }): Promise<void> {
  const data = join(f.dir, 'data');
  const run = join(f.dir, 'run');
  if (!existsSync(join(data, 'synth_disc'))) {
    console.log(`generating a synthetic dataset (two categories, ${f.size}x${f.size}) in ${data}`);
    generateSyntheticDataset(data, { seed: 0, size: f.size, train: 32, testGood: 8, testPerDefect: 6 });
  }
  await runTrain({
    data: [data], out: run, method: 'stfpm', size: f.size, steps: f.steps, batch: 8, momentum: 0.9, weightDecay: 1e-4, seed: 0, shuffle: true,
    overwrite: true, // the demo's own earlier run
  });
  await runEval({ run, data: [data], sigma: 0 });
  console.log(`next: npx dcam infer --run ${run} --out ${join(f.dir, 'inspected')} ${join(data, 'synth_disc', 'test')}   (OK / defect per image)`);
}

export function buildProgram(): Command {
  const program = new Command('dcam')
    .description('distillation anomaly detection (DCAM, STFPM) on WebGPU')
    .option('--verbose', 'print stack traces of errors')
    .exitOverride() // inherited by the subcommands added below
    // commander's own errors (unknown option, missing value) as one `dcam: ...` line, like every other error
    .configureOutput({ outputError: (str, write) => write(`dcam: ${str.trim().replace(/^error: /, '')} (dcam <command> --help lists the options)\n`) });

  program.command('train')
    .description('train one model on folders of good images (--good), or on every category under --data (or the --category ones)')
    .option('--good <path>', 'good images: a folder (searched recursively), file or glob; NAME=PATH puts them in category NAME (repeatable)', collect)
    .option('--data <dir>', 'MVTec-layout data folder: <category>/train/good (repeatable: categories from several folders train one model)', collect)
    .requiredOption('--out <run>', 'run folder (config, checkpoints, log)')
    .option('--category <name>', 'with --data: categories to use (repeatable, or comma-separated); with --good: the name of bare sources (default: the folder name)', collectList)
    .option('--balanced', 'draw each batch evenly across categories (default: uniformly over all images)')
    .addOption(new Option('--method <m>', 'method preset (stfpm: the best measured on real multi-class data, README "Results")').choices(['stfpm', 'dcam']).default('stfpm'))
    .option('--teacher <file>', 'ImageNet ResNet18 weights (.pth or .safetensors); default $DCAM_TEACHER, else the shipped one')
    .option('--random-teacher', 'allow a random teacher (testing only)')
    .option('--size <px>', 'image size (a multiple of 16, at least 32)', sizeArg('--size'), 256)
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--steps <n>', 'optimiser steps (instead of epochs)', int('--steps'))
    .option('--batch <n>', 'batch size', int('--batch'), 32)
    .option('--lr <x>', 'learning rate (default: the preset, 0.1 dcam / 0.4 stfpm)', num('--lr'))
    .option('--momentum <x>', 'SGD momentum', num('--momentum'), 0.9)
    .option('--weight-decay <x>', 'SGD weight decay', num('--weight-decay'), 1e-4)
    .option('--seed <n>', 'seed', nonNegativeInt('--seed'), 0)
    .option('--init <file>', 'initial student weights (safetensors / pth)')
    .option('--init-attention <file>', 'initial attention weights')
    .option('--no-shuffle', 'batches in sorted path order')
    .option('--resume', 'continue the run in --out from its last checkpoint (only --steps / --epochs may change)')
    .option('--overwrite', 'replace the run already in --out')
    .option('--tile <px>', 'cut each image into tiles of this size at its own resolution (each a training sample; inspection stitches their maps at the image\'s size) instead of resizing it to --size', sizeArg('--tile'))
    .option('--stride <px>', 'tiles this far apart (default: half a tile)', int('--stride'))
    .option('--scale <x>', 'downscale images by this factor before tiling (default 1: native resolution)', num('--scale'))
    .option('--teacher-cache-mb <n>', "GPU memory for keeping the teacher's features of the training images after the first epoch (0: none)", nonNegativeInt('--teacher-cache-mb'), DEFAULT_TEACHER_CACHE.gpuBytes / 2 ** 20)
    .option('--teacher-cache-host-mb <n>', 'host memory for the features the GPU budget leaves out (0: compute those every epoch)', nonNegativeInt('--teacher-cache-host-mb'), DEFAULT_TEACHER_CACHE.hostBytes / 2 ** 20)
    .action((opts: TrainFlags, cmd: Command) => runTrain(opts, cmd));

  tilingChecks(program.command('eval'))
    .description('evaluate a run: image/pixel AUROC, AU-PRO@0.3, legacy PRO; metrics.json, report.html, maps/')
    .requiredOption('--run <run>', 'run folder')
    .option('--data <dir>', 'MVTec-layout data folder (repeatable; default: the one(s) the run trained on)', collect)
    .option('--good <path>', 'good test images: a folder, file or glob, or NAME=PATH for category NAME (repeatable)', collect)
    .option('--defect <path>', 'defect test images, as --good', collect)
    .option('--masks <dir>', 'their masks, matched by file stem (x.png or x_mask.png); without: image metrics only', collect)
    .option('--category <name>', 'category (repeatable, or comma-separated; with --good, the name of bare sources)', collectList)
    .option('--teacher <file>', "teacher weights (default: the run's own, else $DCAM_TEACHER, else the shipped one)")
    .option('--force', "use --teacher even if it is not the network the run was trained with")
    .option('--out <dir>', 'output folder (default: the run folder)')
    .option('--sigma <x>', 'Gaussian smoothing of the maps (0 = off)', num('--sigma'), 0)
    .addOption(new Option('--resolution <r>', "pixel metrics at the training size or at the ground truth's full resolution (maps upsampled bilinearly)").choices(['size', 'full']).default('size'))
    .action(async (opts) => {
      await runEval(opts);
    });

  tilingChecks(program.command('infer'), "with --run, must be the run's (applied without it); with --student, the tiling to apply")
    .description("anomaly maps, scores and, with the run's thresholds, an OK / defect verdict and defect mask per image")
    .argument('<images...>', 'image files, folders (searched recursively) or glob patterns')
    .option('--run <run>', 'run folder')
    .option('--student <file>', 'student weights')
    .option('--teacher <file>', "teacher weights (default: the run's own, else the shipped one)")
    .option('--force', "use --teacher even if it is not the network the run was trained with")
    .addOption(new Option('--method <m>', 'method preset (with --student)').choices(['stfpm', 'dcam']).default('stfpm'))
    .option('--size <px>', 'image size (a multiple of 16, at least 32)', sizeArg('--size'))
    .requiredOption('--out <dir>', 'output folder')
    .option('--raw', 'also write the maps as .npy (float32, size x size)')
    .option('--category <name>', "the images' category, when the line knows it (a run evaluated on several categories has thresholds per category; unset: the nearest category's)")
    .action((images: string[], opts) => runInfer(images, opts));

  program.command('export')
    .description('the run as one ONNX model (teacher + student + anomaly map), thresholds in its metadata')
    .requiredOption('--run <run>', 'run folder')
    .addOption(new Option('--format <f>', 'model format').choices(['onnx']).default('onnx'))
    .option('--out <file>', 'output file (default RUN/model.onnx)')
    .option('--teacher <file>', "teacher weights (default: the run's own, else the shipped one)")
    .option('--force', "use --teacher even if it is not the network the run was trained with")
    .action(async (opts: ExportFlags) => {
      await runExport(opts);
    });

  tilingChecks(program.command('calibrate'))
    .description('set the image threshold from good images alone (at most --fpr of them flagged)')
    .requiredOption('--run <run>', 'run folder')
    .requiredOption('--good <dir>', 'good images: files, folders or glob patterns (repeatable)', collect)
    .option('--fpr <x>', 'target false-positive rate on good parts', fraction('--fpr'), 0.01)
    .option('--category <name>', "set this category's own threshold (a run trained on several; also what routes its parts to it)")
    .option('--teacher <file>', "teacher weights (default: the run's own, else the shipped one)")
    .option('--force', "use --teacher even if it is not the network the run was trained with")
    .action((opts: CalibrateFlags) => runCalibrate(opts));

  tilingChecks(program.command('serve'), "must be every run's (each applies its own without it); a run tiled otherwise is refused")
    .description('an HTTP inspection service: runs kept on the GPU, requests batched, OK / defect per image (POST /v1/inspect)')
    .requiredOption('--run <run>', 'run folder (repeatable; requests choose one with ?run=NAME, the folder name)', collect)
    .option('--host <addr>', 'address to listen on (loopback unless told otherwise)', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', portArg, 8080)
    .option('--max-batch <n>', 'most images per GPU batch', int('--max-batch'), 8)
    .option('--max-wait-ms <ms>', 'how long the first request of a batch waits for others', num('--max-wait-ms'), 5)
    .option('--queue-limit <n>', 'requests waiting per run before new ones get 503 + Retry-After', int('--queue-limit'), 64)
    .option('--timeout-ms <ms>', 'answer 504 after this long', num('--timeout-ms'), 30_000)
    .option('--max-body-mb <mb>', 'largest request body (413 beyond)', num('--max-body-mb'), 32)
    .option('--max-pixels <n>', "largest image by its header's size, checked before decoding (413 beyond)", int('--max-pixels'), imageLimits.maxPixels)
    .option('--token <secret>', 'require Authorization: Bearer <secret> on every route but /healthz and /readyz (default $DCAM_TOKEN)')
    .option('--decode-workers <n>', 'threads that decode uploaded images (off the event loop)', int('--decode-workers'), 2)
    .option('--decode-timeout-ms <ms>', 'an image not decoded within this long is refused (400) and its worker replaced', int('--decode-timeout-ms'), 5000)
    .option('--decode-heap-mb <mb>', "a decoding worker's heap limit (an image that needs more is refused, 413)", int('--decode-heap-mb'), 256)
    .option('--teacher <file>', "teacher weights (default: the run's own, else the shipped one)")
    .option('--force', "use --teacher even if it is not the network the run was trained with")
    // loaded when used: the HTTP stack is not needed by the other commands
    .action(async (opts: ServeFlags) => (await import('./serve.js')).runServe(opts));

  const teacher = program.command('teacher').description('the ImageNet teacher: the shipped one, or a full torchvision / timm file');
  teacher.command('fetch')
    .description(`download a full ImageNet ResNet18 into ${cacheDir()} (verified by sha256; reuses torch.hub's and Hugging Face's caches; offline once cached)`)
    .option('--from <source>', 'torchvision (resnet18-f37072fd.pth), timm (resnet18.tv_in1k) or an http(s) URL', 'torchvision')
    .option('--sha256 <hex>', 'expected sha256 (needed for a URL of an unknown file)')
    .option('--offline', 'only look in the caches')
    .action((opts) => runTeacherFetch(opts));
  teacher.command('show')
    .description('where the default teacher is')
    .action(() => {
      console.log(`default teacher: ${describeTeacher(findTeacher())}${process.env.DCAM_TEACHER ? ' (from DCAM_TEACHER)' : ''}\ncache for fetched teachers: ${cacheDir()}`);
    });

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
    .description('the built-in default: synthetic data, a short training (the default preset, stfpm), evaluation and report')
    .option('--dir <dir>', 'working folder', 'runs/demo')
    .option('--steps <n>', 'training steps', int('--steps'), 120)
    .option('--size <px>', 'image size (a multiple of 16, at least 32)', sizeArg('--size'), 64)
    .action((opts) => runDemo(opts));
  return program;
}

/**
 * An unknown long option of the chosen subcommand, if any. Commander reports a missing required option
 * before an unknown one, so a mistyped flag would otherwise hide behind "required option ... not specified".
 */
function unknownOption(program: Command, args: readonly string[]): string | null {
  let cmd: Command = program;
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i]);
    if (!sub) break;
    cmd = sub;
  }
  if (cmd === program || cmd.name() === 'bench') return null;
  const known = new Set(['--help', '--verbose', ...cmd.options.map((o) => o.long).filter((x): x is string => !!x)]);
  for (const a of args.slice(i)) {
    if (a === '--') break;
    if (a.startsWith('--') && !known.has(a.split('=')[0])) return a.split('=')[0];
  }
  return null;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  const unknown = unknownOption(program, argv.slice(2));
  if (unknown) {
    console.error(`dcam: unknown option '${unknown}' (dcam ${argv[2]} --help lists the options)`);
    return 2;
  }
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
