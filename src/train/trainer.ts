/**
 * Training: one model for every selected category (multi-class, as DCAM), SGD, a JSONL log, checkpoints
 * written as one unit after every epoch and at the end (checkpoint-store.ts), exact resumption from the
 * last one, and a clear stop on a non-finite loss that leaves the last good checkpoint untouched. One
 * process per run folder (run-lock.ts); an existing run is never overwritten by accident, and a resume
 * refuses changed settings by name (only the length of training may change).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BatchLoader } from '../data/loader.js';
import { discoverCategories, type DataRoots } from '../data/mvtec.js';
import { folderCategory } from '../data/folders.js';

/** The categories of a run from plain folders: each its good images. */
const folderCategories = (good: Record<string, string[]>) => Object.entries(good).map(([name, sources]) => folderCategory(name, { good: sources }));
import type { Runtime } from '../graph/runtime.js';
import { createAttention, loadAttention } from '../model/attention.js';
import { attentionSafetensors, studentSafetensors } from '../model/checkpoint.js';
import { decodeImage, probeImage } from '../data/image.js';
import { readImageFile } from '../data/mvtec.js';
import { cutTiles, makeTiling, tileGrid, type Tiling } from '../data/tiles.js';
import { cleanTemporaries, finishCheckpoint, writeCheckpoint, type CheckpointStage, type CheckpointState, type LoadedCheckpoint } from './checkpoint-store.js';
import { writeFileAtomic } from './files.js';
import { lockFolder } from './run-lock.js';
import { MAX_SIZE, MIN_SIZE, readRunConfig, runDataDir, TrainingError, type RunConfig } from './run-config.js';
import { TrainStepper } from './step.js';
import type { TeacherCacheBudget } from './teacher-cache.js';
import { preset, type MethodConfig } from '../model/config.js';
import { createOptimizer, DistillationModel } from '../model/distill.js';
import { teacherFingerprint, teacherMismatch } from '../model/fingerprint.js';
import { FoldedTrunk, ResNetTrunk } from '../model/resnet.js';
import { findTeacher, isShippedTeacher, sha256File } from './teacher.js';
import { openTeacher } from '../detector.js';
import { fromFloat32, readStateDict, toFloat32, writeSafetensors, type RawTensor } from '../model/weights/index.js';

export { TrainingError, type RunConfig, type Thresholds } from './run-config.js';

/** Absolute roots as a run records them: one folder as a string (as runs always had), several as a list. */
const absoluteRoots = (roots: DataRoots): string | string[] => (typeof roots === 'string' ? resolve(roots) : roots.length === 1 ? resolve(roots[0]) : roots.map((r) => resolve(r)));

export interface TrainOptions {
  /** The data folder, or several whose categories are trained together (MVTec layout). */
  data?: DataRoots;
  /** Or plain files, folders and globs of good images, by category (`groupSources`). */
  good?: Record<string, string[]>;
  out: string;
  categories?: string[];
  method?: 'stfpm' | 'dcam';
  /** Teacher weights (.safetensors or .pth; `findTeacher()` gives the shipped one); null with randomTeacher for a random one. */
  teacher: string | null;
  randomTeacher?: boolean;
  size?: number;
  epochs?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  seed?: number;
  init?: string;
  initAttention?: string;
  shuffle?: boolean;
  /** Draw batches evenly across categories instead of uniformly over all images. */
  balanced?: boolean;
  resume?: boolean;
  /** Replace an existing run in `out` (its checkpoints, log and reports) instead of refusing. */
  overwrite?: boolean;
  /** Extra method settings (attention kind, placement, loss weights, ...). */
  overrides?: Partial<MethodConfig>;
  /** Memory for keeping the teacher's features of the training images between epochs (train/teacher-cache.ts). */
  teacherCache?: TeacherCacheBudget;
  /** Cut images into tiles of `size` (stride, scale) at their own resolution instead of resizing them to `size`. */
  tiling?: { stride?: number; scale?: number };
  onStep?: (s: StepInfo) => void;
  /** Tests only: called at each stage of every checkpoint write (a throw simulates a crash there). */
  checkpointFault?: (stage: CheckpointStage, step: number) => void;
}

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  terms: Record<string, number>;
  imagesPerSec: number;
}

export { findTeacher } from './teacher.js';

/** The teacher in `file`, or (null) the random teacher of a run trained without one. */
export function loadTeacher(rt: Runtime, file: string | null, seed: number): Promise<FoldedTrunk> {
  return openTeacher(rt, file ? { bytes: readFileSync(file), name: file } : { randomSeed: seed });
}

/** The teacher file a run uses: `override`, else its own if unchanged, else the default; null for a random teacher. */
export function runTeacherFile(run: RunConfig, override?: string): string | null {
  const rec = run.teacher;
  if (override) return findTeacher(override);
  if (!rec.file) return null;
  if (existsSync(rec.file) && sha256File(rec.file) === rec.sha256) return rec.file;
  return findTeacher();
}

/**
 * The teacher of a run: `override` if given, else the recorded file if it is still there unchanged, else the
 * default teacher (shipped, or $DCAM_TEACHER); a random-teacher run gets its random teacher back. Whatever
 * file is used must compute the network the run was trained with (fingerprint), unless `force`.
 */
export async function openRunTeacher(rt: Runtime, run: RunConfig, runDir: string, override?: string, force = false): Promise<FoldedTrunk> {
  const rec = run.teacher;
  const file = runTeacherFile(run, override);
  const teacher = await loadTeacher(rt, file, run.seed);
  const what = file ?? 'the random teacher';
  let problem: string | null = null;
  if (rec.fingerprint) {
    problem = await teacherMismatch(rt, teacher, rec.fingerprint);
  } else if (file !== rec.file && (!file || sha256File(file) !== rec.sha256)) {
    problem = 'the run records no teacher fingerprint and the file is not the one it was trained with';
  }
  if (problem && !force) {
    teacher.dispose();
    throw new TrainingError(`${what} is not the teacher ${runDir} was trained with: ${problem}; pass --teacher with the run's teacher, or --force to use this one anyway`);
  }
  if (problem) console.error(`dcam: WARNING: --force: using ${what} although ${problem}`);
  return teacher;
}

export interface TrainResult {
  config: RunConfig;
  steps: number;
  lastLoss: number;
  seconds: number;
  /** True when a resumed run had already done all its steps (nothing was trained). */
  alreadyComplete: boolean;
}

/** Files a run folder holds (what --overwrite removes; nothing else in the folder is touched). */
const RUN_FILES = ['config.json', 'checkpoint.json', 'checkpoints', 'state.json', 'student.safetensors', 'attention.safetensors', 'optimizer.safetensors', 'train.jsonl', 'metrics.json', 'report.html', 'maps'];

/** The run's tiling from the options: tiles of the run's size, half a tile apart by default, at native scale. */
function tilingOf(o: TrainOptions): Tiling {
  try {
    return makeTiling(o.size ?? 256, o.tiling?.stride, o.tiling?.scale);
  } catch (e) {
    throw new TrainingError((e as Error).message);
  }
}

/** Settings a resume must not change, with how each is read from the options and from the run. */
function changedSettings(o: TrainOptions, c: RunConfig): string[] {
  const diffs: string[] = [];
  const check = (flag: string, given: unknown, recorded: unknown) => {
    if (given !== undefined && JSON.stringify(given) !== JSON.stringify(recorded)) diffs.push(`${flag} ${JSON.stringify(given)} (the run has ${JSON.stringify(recorded)})`);
  };
  check('--method', o.method, c.method.method);
  check('--size', o.size, c.size);
  check('--batch', o.batch, c.batch);
  check('--lr', o.lr, c.method.lr);
  check('--momentum', o.momentum, c.method.momentum);
  check('--weight-decay', o.weightDecay, c.method.weightDecay);
  check('--seed', o.seed, c.seed);
  check('--shuffle', o.shuffle, c.shuffle);
  check('--balanced', o.balanced, c.balanced ?? false);
  check('--data', o.data === undefined ? undefined : absoluteRoots(o.data), c.data);
  check('--good', o.good, c.good);
  check('--tile', o.tiling === undefined ? undefined : tilingOf(o), c.tiling);
  check('--category', o.categories?.length ? [...new Set(o.categories)].sort() : undefined, [...c.categories].sort());
  if (o.randomTeacher && c.teacher.file) diffs.push('--random-teacher (the run has a teacher)');
  if (o.init) diffs.push('--init (only a new run starts from given weights)');
  if (o.initAttention) diffs.push('--init-attention (only a new run starts from given weights)');
  return diffs;
}

/** The last loss in the run's log, for a run resumed after it had finished. */
function lastLoggedLoss(logPath: string): number {
  if (!existsSync(logPath)) return NaN;
  const lines = readFileSync(logPath, 'utf8').trim().split('\n').filter(Boolean);
  return lines.length ? (JSON.parse(lines[lines.length - 1]) as { loss: number }).loss : NaN;
}

/** Reads every training image's header before the first step: a bad file fails now, not an epoch later. */
function checkTrainingImages(paths: readonly string[]): Map<string, { width: number; height: number }> {
  const headers = new Map<string, { width: number; height: number }>();
  for (const p of paths) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(p);
    } catch (e) {
      throw new TrainingError(`cannot read ${p}: ${(e as Error).message}`);
    }
    headers.set(p, probeImage(bytes, p));
  }
  return headers;
}

/** An image a tile fits in (after the run's scale), or an error naming it. */
function checkTileable(path: string, h: { width: number; height: number }, t: Tiling): void {
  try {
    tileGrid(h.width, h.height, t, path);
  } catch (e) {
    throw new TrainingError(`${(e as Error).message}: use a ${/smaller than/.test((e as Error).message) ? 'smaller --tile or a larger --scale' : 'larger --stride or a smaller --scale'}`);
  }
}

/** The tiles of a training image, keyed `path#k` (the loader keeps them all for the batches that want them). */
function tilesOf(path: string, t: Tiling): Map<string, Float32Array> {
  const cut = cutTiles(decodeImage(readImageFile(path), path), t, path);
  return new Map(cut.tiles.map((tile, k) => [`${path}#${k}`, tile]));
}

export async function train(rt: Runtime, o: TrainOptions): Promise<TrainResult> {
  if (!o.resume && !o.teacher && !o.randomTeacher) {
    throw new TrainingError('no teacher weights: pass --teacher FILE (or set DCAM_TEACHER); --random-teacher runs without one, for testing only');
  }
  const runDir = o.out;
  mkdirSync(runDir, { recursive: true });
  const unlock = lockFolder(runDir);
  try {
    cleanTemporaries(runDir);
    return await trainLocked(rt, o, runDir, o.resume ? finishCheckpoint(runDir) : null);
  } finally {
    unlock();
  }
}

async function trainLocked(rt: Runtime, o: TrainOptions, runDir: string, saved: LoadedCheckpoint | null): Promise<TrainResult> {
  const hasRun = existsSync(join(runDir, 'config.json'));
  let config: RunConfig;
  if (o.resume) {
    if (!hasRun) throw new TrainingError(`nothing to resume in ${runDir} (no config.json): start the run without --resume`);
    config = readRunConfig(runDir);
    if (!config.good) config.data = runDataDir(config, runDir);
    const diffs = changedSettings(o, config);
    if (diffs.length) throw new TrainingError(`--resume keeps the run's settings, but these differ: ${diffs.join('; ')}. Only --steps or --epochs may change; start a new run (another --out, or --overwrite) for the rest`);
    if (o.steps !== undefined || o.epochs !== undefined) {
      config = { ...config, steps: o.steps ?? null, epochs: o.steps !== undefined ? null : (o.epochs ?? null) };
      writeFileAtomic(join(runDir, 'config.json'), JSON.stringify(config, null, 2));
    }
  } else {
    if (hasRun && !o.overwrite) {
      throw new TrainingError(`${runDir} already holds a run (config.json): --resume continues it, --overwrite replaces it, or choose another --out`);
    }
    if (hasRun) for (const f of RUN_FILES) rmSync(join(runDir, f), { recursive: true, force: true });
    const method = preset(o.method ?? 'stfpm', {
      ...o.overrides,
      ...(o.lr !== undefined ? { lr: o.lr } : {}),
      ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
      ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    });
    const size = o.size ?? 256;
    if (!Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE || size % 16 !== 0) throw new TrainingError(`size ${size}: must be a multiple of 16 from ${MIN_SIZE} to ${MAX_SIZE}`);
    if (!o.good === !o.data) throw new TrainingError('give the training images as --data (MVTec layout) or as --good (plain folders), one of the two');
    const cats = o.good ? folderCategories(o.good) : discoverCategories(o.data!, [...new Set(o.categories ?? [])]);
    const teacherFile = o.teacher ? resolve(o.teacher) : null;
    config = {
      method, size, batch: o.batch ?? 32, epochs: o.steps ? null : (o.epochs ?? 100), steps: o.steps ?? null, seed: o.seed ?? 0,
      shuffle: o.shuffle ?? true, balanced: o.balanced ?? false, categories: cats.map((c) => c.name), data: o.good ? [] : absoluteRoots(o.data!), ...(o.good ? { good: o.good } : {}), ...(o.tiling ? { tiling: tilingOf(o) } : {}),
      teacher: { file: teacherFile, sha256: teacherFile ? sha256File(teacherFile) : null, shipped: isShippedTeacher(teacherFile) },
      trainImages: cats.reduce((a, c) => a + c.train.length, 0),
    };
  }
  const seed = config.seed;
  const cats = config.good ? folderCategories(config.good) : discoverCategories(config.data, config.categories);
  const paths = cats.flatMap((c) => c.train).sort();
  const headers = checkTrainingImages(paths);
  // the samples: each image, or each tile of each image (`path#k`), which the loader cuts when it decodes
  const tiling = config.tiling;
  if (tiling) for (const p of paths) checkTileable(p, headers.get(p)!, tiling);
  const samplesOf = (p: string) => (tiling ? tileGrid(headers.get(p)!.width, headers.get(p)!.height, tiling).map((_, k) => `${p}#${k}`) : [p]);
  const samples = paths.flatMap(samplesOf);
  const balanced = config.balanced && cats.length > 1 ? cats.map((c) => c.train.flatMap(samplesOf)) : undefined;
  const load = tiling ? (key: string) => tilesOf(key.slice(0, key.lastIndexOf('#')), tiling) : undefined;
  const loader = new BatchLoader(samples, { batch: config.batch, size: config.size, shuffle: config.shuffle, seed, balanced, load });
  const totalSteps = config.steps ?? (config.epochs ?? 1) * loader.batchesPerEpoch;
  let state: CheckpointState = saved ? { step: saved.step, epoch: saved.epoch, index: saved.index } : { step: 0, epoch: 0, index: 0 };
  const logPath = join(runDir, 'train.jsonl');
  if (state.step >= totalSteps && saved) {
    return { config, steps: state.step, lastLoss: lastLoggedLoss(logPath), seconds: 0, alreadyComplete: true };
  }

  let teacher: FoldedTrunk;
  if (o.resume) teacher = await openRunTeacher(rt, config, runDir, o.teacher ?? undefined);
  else {
    teacher = await loadTeacher(rt, config.teacher.file, seed);
    config.teacher.fingerprint = await teacherFingerprint(rt, teacher);
    writeFileAtomic(join(runDir, 'config.json'), JSON.stringify(config, null, 2));
  }
  let student: ResNetTrunk;
  const attention = createAttention(rt, config.method.attention, seed + 1, config.method.reduction);
  try {
    if (saved) student = ResNetTrunk.fromStateDict(rt, readStateDict(saved.student, saved.studentFile), saved.studentFile);
    else if (o.init) student = ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(o.init), o.init), o.init);
    else student = ResNetTrunk.random(rt, seed);
    if (attention.length && saved?.attention) loadAttention(attention, readStateDict(saved.attention, saved.attentionFile), saved.attentionFile);
    else if (attention.length && !saved && o.initAttention) loadAttention(attention, readStateDict(readFileSync(o.initAttention), o.initAttention), o.initAttention);
  } catch (e) {
    teacher.dispose();
    throw e;
  }
  const model = new DistillationModel(teacher, student, attention, config.method);
  const opt = createOptimizer(model);
  const params = opt.params;
  if (saved) {
    const momenta = readStateDict(saved.optimizer, saved.optimizerFile);
    opt.loadState(params.map((_, i) => (momenta.has(`momentum.${i}`) ? toFloat32(momenta.get(`momentum.${i}`)!) : null)));
  }
  let lastCheckpoint: number | null = saved ? saved.step : null;
  // records a step once and replays it from then on (train/step.ts)
  const stepper = new TrainStepper(rt, model, opt, { teacherCache: o.teacherCache });

  const checkpoint = async (s: CheckpointState) => {
    const momentum: Array<[string, RawTensor]> = [];
    const buffers = opt.state();
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i];
      if (b) momentum.push([`momentum.${i}`, fromFloat32(await b.read(), [...b.shape])]);
    }
    const files = {
      student: await studentSafetensors(student),
      attention: attention.length ? await attentionSafetensors(attention) : null,
      optimizer: writeSafetensors(momentum),
    };
    writeCheckpoint(runDir, s, files, o.checkpointFault && ((stage) => o.checkpointFault!(stage, s.step)));
    lastCheckpoint = s.step;
  };

  if (o.resume && existsSync(logPath)) {
    // Steps after the checkpoint are redone: drop their log lines so the log reads as one run.
    const kept = readFileSync(logPath, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= state.step);
    writeFileAtomic(logPath, kept.map((l) => l + '\n').join(''));
  } else {
    writeFileAtomic(logPath, '');
  }
  const t0 = performance.now();
  let lastLoss = NaN;
  let stepTimer = performance.now();
  try {
    for await (const batch of loader.batches(state.epoch, state.index)) {
      if (state.step >= totalSteps) break;
      const B = batch.paths.length;
      const values = await stepper.step(batch.data, B, config.size, batch.paths);
      lastLoss = values.loss;
      if (!Number.isFinite(lastLoss)) {
        const kept = lastCheckpoint !== null ? `The last good checkpoint (step ${lastCheckpoint}) in ${runDir} is kept` : 'No checkpoint had been written yet';
        throw new TrainingError(`the loss became ${lastLoss} at step ${state.step + 1} (epoch ${batch.epoch + 1}); stopped. ${kept}; try a lower --lr`);
      }
      const now = performance.now();
      const imagesPerSec = (B * 1000) / (now - stepTimer);
      stepTimer = now;
      state = { step: state.step + 1, epoch: batch.epoch, index: batch.index + 1 };
      if (state.index >= loader.batchesPerEpoch) state = { ...state, epoch: state.epoch + 1, index: 0 };
      const { loss, ...terms } = values;
      appendFileSync(logPath, JSON.stringify({ step: state.step, epoch: batch.epoch + 1, loss, ...terms, lr: config.method.lr, imagesPerSec: +imagesPerSec.toFixed(2) }) + '\n');
      o.onStep?.({ step: state.step, totalSteps, epoch: batch.epoch + 1, loss, terms, imagesPerSec });
      const epochDone = state.index === 0;
      if (epochDone || state.step >= totalSteps) await checkpoint(state);
    }
  } finally {
    stepper.dispose();
    opt.dispose();
    for (const p of params) p.dispose();
    student.dispose();
    teacher.dispose();
  }
  return { config, steps: state.step, lastLoss, seconds: (performance.now() - t0) / 1000, alreadyComplete: false };
}
