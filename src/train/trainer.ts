/**
 * Training: one model for every selected category (multi-class, as DCAM), SGD, a JSONL log, atomic
 * checkpoints after every epoch (and at the end), exact resumption from the last checkpoint, and a
 * clear stop on a non-finite loss that leaves the last good checkpoint untouched.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BatchLoader } from '../data/loader.js';
import { discoverCategories } from '../data/mvtec.js';
import type { Runtime } from '../graph/runtime.js';
import { SGD } from '../optim/sgd.js';
import { createAttention, loadAttention } from '../model/attention.js';
import { attentionSafetensors, studentSafetensors } from '../model/checkpoint.js';
import { writeFileAtomic } from './files.js';
import { readRunConfig, runDataDir, TrainingError, type RunConfig } from './run-config.js';
import { trainStep } from './step.js';
import { preset, type MethodConfig } from '../model/config.js';
import { DistillationModel } from '../model/distill.js';
import { FINGERPRINT_TOLERANCE, fingerprintDistance, teacherFingerprint } from '../model/fingerprint.js';
import { FoldedTrunk, ResNetTrunk } from '../model/resnet.js';
import { findTeacher, isShippedTeacher, sha256File } from './teacher.js';
import { fromFloat32, readStateDict, toFloat32, writeSafetensors, type RawTensor } from '../model/weights/index.js';

export { TrainingError, type RunConfig, type Thresholds } from './run-config.js';

export interface TrainOptions {
  data: string;
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
  resume?: boolean;
  /** Extra method settings (attention kind, placement, loss weights, ...). */
  overrides?: Partial<MethodConfig>;
  onStep?: (s: StepInfo) => void;
}

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  terms: Record<string, number>;
  imagesPerSec: number;
}

interface RunState {
  /** Optimiser steps done. */
  step: number;
  /** Next batch to run: epoch and index within it. */
  epoch: number;
  index: number;
}

export { findTeacher } from './teacher.js';

export function loadTeacher(rt: Runtime, file: string | null, seed: number): Promise<FoldedTrunk> {
  const trunk = file ? ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(file), file), file, false) : ResNetTrunk.random(rt, seed + 7919);
  return FoldedTrunk.fromTrunk(trunk).finally(() => trunk.dispose());
}

/**
 * The teacher of a run: `override` if given, else the recorded file if it is still there unchanged, else the
 * default teacher (shipped, or $DCAM_TEACHER); a random-teacher run gets its random teacher back. Whatever
 * file is used must compute the network the run was trained with (fingerprint), unless `force`.
 */
export async function openRunTeacher(rt: Runtime, run: RunConfig, runDir: string, override?: string, force = false): Promise<FoldedTrunk> {
  const rec = run.teacher;
  let file: string | null;
  if (override) file = findTeacher(override);
  else if (!rec.file) file = null;
  else if (existsSync(rec.file) && sha256File(rec.file) === rec.sha256) file = rec.file;
  else file = findTeacher();
  const teacher = await loadTeacher(rt, file, run.seed);
  const what = file ?? 'the random teacher';
  let problem: string | null = null;
  if (rec.fingerprint) {
    const d = fingerprintDistance(await teacherFingerprint(rt, teacher), rec.fingerprint);
    if (!(d <= FINGERPRINT_TOLERANCE)) problem = `its features differ from the run's teacher by ${d.toExponential(2)} (relative; the same network is below ${FINGERPRINT_TOLERANCE})`;
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
}

export async function train(rt: Runtime, o: TrainOptions): Promise<TrainResult> {
  if (!o.teacher && !o.randomTeacher) {
    throw new TrainingError('no teacher weights: pass --teacher FILE (or set DCAM_TEACHER); --random-teacher runs without one, for testing only');
  }
  const seed = o.seed ?? 0;
  const runDir = o.out;
  mkdirSync(runDir, { recursive: true });
  const statePath = join(runDir, 'state.json');
  const resuming = !!o.resume && existsSync(statePath);
  let config: RunConfig;
  if (resuming) {
    config = readRunConfig(runDir);
    config.data = runDataDir(config, runDir);
  } else {
    const method = preset(o.method ?? 'dcam', {
      ...o.overrides,
      ...(o.lr !== undefined ? { lr: o.lr } : {}),
      ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
      ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    });
    const cats = discoverCategories(o.data, o.categories ?? []);
    const teacherFile = o.teacher ? resolve(o.teacher) : null;
    config = {
      method, size: o.size ?? 256, batch: o.batch ?? 32, epochs: o.steps ? null : (o.epochs ?? 100), steps: o.steps ?? null, seed,
      shuffle: o.shuffle ?? true, categories: cats.map((c) => c.name), data: resolve(o.data),
      teacher: { file: teacherFile, sha256: teacherFile ? sha256File(teacherFile) : null, shipped: isShippedTeacher(teacherFile) },
      trainImages: cats.reduce((a, c) => a + c.train.length, 0),
    };
  }
  const cats = discoverCategories(config.data, config.categories);
  const paths = cats.flatMap((c) => c.train).sort();
  const loader = new BatchLoader(paths, { batch: config.batch, size: config.size, shuffle: config.shuffle, seed: config.seed });
  const totalSteps = config.steps ?? (config.epochs ?? 1) * loader.batchesPerEpoch;

  let teacher: FoldedTrunk;
  if (resuming) teacher = await openRunTeacher(rt, config, runDir);
  else {
    teacher = await loadTeacher(rt, config.teacher.file, config.seed);
    config.teacher.fingerprint = await teacherFingerprint(rt, teacher);
    writeFileAtomic(join(runDir, 'config.json'), JSON.stringify(config, null, 2));
  }
  const studentFile = resuming ? join(runDir, 'student.safetensors') : o.init;
  const student = studentFile ? ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(studentFile), studentFile), studentFile) : ResNetTrunk.random(rt, seed);
  const attention = createAttention(rt, config.method.attention, seed + 1, config.method.reduction);
  const attentionFile = resuming ? join(runDir, 'attention.safetensors') : o.initAttention;
  if (attentionFile && attention.length) loadAttention(attention, readStateDict(readFileSync(attentionFile), attentionFile), attentionFile);
  const model = new DistillationModel(teacher, student, attention, config.method);
  const params = model.parameters();
  const opt = new SGD(params, { lr: config.method.lr, momentum: config.method.momentum, weightDecay: config.method.weightDecay });
  let state: RunState = { step: 0, epoch: 0, index: 0 };
  if (resuming) {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as RunState;
    const saved = readStateDict(readFileSync(join(runDir, 'optimizer.safetensors')), 'optimizer.safetensors');
    opt.loadState(params.map((_, i) => (saved.has(`momentum.${i}`) ? toFloat32(saved.get(`momentum.${i}`)!) : null)));
  }

  const checkpoint = async (s: RunState) => {
    writeFileAtomic(join(runDir, 'student.safetensors'), await studentSafetensors(student));
    if (attention.length) writeFileAtomic(join(runDir, 'attention.safetensors'), await attentionSafetensors(attention));
    const momentum: Array<[string, RawTensor]> = [];
    const buffers = opt.state();
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i];
      if (b) momentum.push([`momentum.${i}`, fromFloat32(await b.read(), [...b.shape])]);
    }
    writeFileAtomic(join(runDir, 'optimizer.safetensors'), writeSafetensors(momentum));
    writeFileAtomic(statePath, JSON.stringify(s)); // last: marks the checkpoint complete
  };

  const logPath = join(runDir, 'train.jsonl');
  if (resuming && existsSync(logPath)) {
    // Steps after the checkpoint are redone: drop their log lines so the log reads as one run.
    const kept = readFileSync(logPath, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= state.step);
    writeFileAtomic(logPath, kept.map((l) => l + '\n').join(''));
  } else if (!resuming) {
    writeFileAtomic(logPath, '');
  }
  const t0 = performance.now();
  let lastLoss = NaN;
  let stepTimer = performance.now();
  try {
    for await (const batch of loader.batches(state.epoch, state.index)) {
      if (state.step >= totalSteps) break;
      const B = batch.paths.length;
      const values = await trainStep(rt, model, opt, batch.data, B, config.size);
      lastLoss = values.loss;
      if (!Number.isFinite(lastLoss)) {
        throw new TrainingError(
          `the loss became ${lastLoss} at step ${state.step + 1} (epoch ${batch.epoch + 1}); stopped. The last good checkpoint in ${runDir} is kept; try a lower --lr`,
        );
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
    opt.dispose();
    for (const p of params) p.dispose();
    student.dispose();
    teacher.dispose();
  }
  return { config, steps: state.step, lastLoss, seconds: (performance.now() - t0) / 1000 };
}
