/**
 * Training: one model for every selected category (multi-class, as DCAM), SGD, a JSONL log, atomic
 * checkpoints after every epoch (and at the end), exact resumption from the last checkpoint, and a
 * clear stop on a non-finite loss that leaves the last good checkpoint untouched.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatchLoader } from '../data/loader.js';
import { discoverCategories } from '../data/mvtec.js';
import type { Runtime } from '../graph/runtime.js';
import { SGD } from '../optim/sgd.js';
import { createAttention, loadAttention } from '../model/attention.js';
import { attentionSafetensors, studentSafetensors } from '../model/checkpoint.js';
import { writeFileAtomic } from './files.js';
import { trainStep } from './step.js';
import { preset, type MethodConfig } from '../model/config.js';
import { DistillationModel } from '../model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../model/resnet.js';
import { fromFloat32, readStateDict, toFloat32, writeSafetensors, type RawTensor } from '../model/weights/index.js';

export class TrainingError extends Error {}

export interface TrainOptions {
  data: string;
  out: string;
  categories?: string[];
  method?: 'stfpm' | 'dcam';
  /** Teacher weights (.safetensors or .pth); null with randomTeacher for a random one. */
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

export interface RunConfig {
  method: MethodConfig;
  size: number;
  batch: number;
  epochs: number | null;
  steps: number | null;
  seed: number;
  shuffle: boolean;
  categories: string[];
  data: string;
  teacher: { file: string | null; sha256: string | null };
  trainImages: number;
}

interface RunState {
  /** Optimiser steps done. */
  step: number;
  /** Next batch to run: epoch and index within it. */
  epoch: number;
  index: number;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The teacher to use: the explicit file, else $DCAM_TEACHER, else the project's shared weights if present. */
export function findTeacher(explicit?: string): string | null {
  if (explicit) return explicit;
  if (process.env.DCAM_TEACHER) return process.env.DCAM_TEACHER;
  const here = dirname(fileURLToPath(import.meta.url));
  const shared = process.env.DCAM_SHARED ?? resolve(here, '../../../shared');
  const f = join(shared, 'weights', 'resnet18-imagenet-layer1to3.safetensors');
  return existsSync(f) ? f : null;
}

export function loadTeacher(rt: Runtime, file: string | null, seed: number): Promise<FoldedTrunk> {
  const trunk = file ? ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(file), file), file, false) : ResNetTrunk.random(rt, seed + 7919);
  return FoldedTrunk.fromTrunk(trunk).finally(() => trunk.dispose());
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
    config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as RunConfig;
  } else {
    const method = preset(o.method ?? 'dcam', {
      ...o.overrides,
      ...(o.lr !== undefined ? { lr: o.lr } : {}),
      ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
      ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    });
    const cats = discoverCategories(o.data, o.categories ?? []);
    config = {
      method, size: o.size ?? 256, batch: o.batch ?? 32, epochs: o.steps ? null : (o.epochs ?? 100), steps: o.steps ?? null, seed,
      shuffle: o.shuffle ?? true, categories: cats.map((c) => c.name), data: o.data,
      teacher: { file: o.teacher, sha256: o.teacher ? sha256(readFileSync(o.teacher)) : null },
      trainImages: cats.reduce((a, c) => a + c.train.length, 0),
    };
    writeFileAtomic(join(runDir, 'config.json'), JSON.stringify(config, null, 2));
  }
  const cats = discoverCategories(config.data, config.categories);
  const paths = cats.flatMap((c) => c.train).sort();
  const loader = new BatchLoader(paths, { batch: config.batch, size: config.size, shuffle: config.shuffle, seed: config.seed });
  const totalSteps = config.steps ?? (config.epochs ?? 1) * loader.batchesPerEpoch;

  if (config.teacher.file && resuming && sha256(readFileSync(config.teacher.file)) !== config.teacher.sha256) {
    throw new TrainingError(`teacher file ${config.teacher.file} changed since the run started (sha256 differs): cannot resume`);
  }
  const teacher = await loadTeacher(rt, config.teacher.file, config.seed);
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
