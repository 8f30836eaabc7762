/**
 * The teacher feature cache (train/teacher-cache.ts): training with the teacher's features kept between
 * epochs (on the GPU, in host memory, or both) gives the same losses and weights, bit for bit, as
 * computing them every step; from the second epoch on no batch runs the teacher.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SGD } from '../src/index.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { createAttention } from '../src/model/attention.js';
import { preset } from '../src/model/config.js';
import { DistillationModel } from '../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../src/model/resnet.js';
import { TrainStepper } from '../src/train/step.js';
import { TeacherFeatureCache, type TeacherCacheBudget } from '../src/train/teacher-cache.js';
import { findTeacher, train } from '../src/train/trainer.js';
import { useRuntime } from './helpers.js';
import { teacherStateDict } from './model-helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-teacher-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SIZE = 32;
const PER = 3 * SIZE * SIZE;
/** Eight distinct images, keyed by name. */
const images = Array.from({ length: 8 }, (_, k) => Float32Array.from({ length: PER }, (_, i) => Math.sin(0.011 * i * (k + 1) + k)));
/** Three epochs of batches of four, each epoch in its own order (as a shuffled loader). */
const ORDERS = [[0, 1, 2, 3, 4, 5, 6, 7], [5, 2, 7, 0, 3, 6, 1, 4], [1, 6, 4, 3, 0, 7, 2, 5]];

async function trainSteps(method: 'stfpm' | 'dcam', budget: TeacherCacheBudget, keyed = true) {
  const rt = ctx.rt;
  const trunk = ResNetTrunk.fromStateDict(rt, teacherStateDict(), 'teacher', false);
  const teacher = await FoldedTrunk.fromTrunk(trunk);
  trunk.dispose();
  const config = preset(method);
  const model = new DistillationModel(teacher, ResNetTrunk.random(rt, 3), createAttention(rt, config.attention, 4, config.reduction), config);
  const opt = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
  const stepper = new TrainStepper(rt, model, opt, { teacherCache: budget });
  const losses: Array<Record<string, number>> = [];
  const computedPerEpoch: number[] = [];
  for (const order of ORDERS) {
    const before = stepper.teacherFeatures.stats.computed;
    for (let b = 0; b < order.length; b += 4) {
      const batch = order.slice(b, b + 4);
      const data = new Float32Array(4 * PER);
      batch.forEach((k, j) => data.set(images[k], j * PER));
      losses.push(await stepper.step(data, 4, SIZE, keyed ? batch.map((k) => `image-${k}`) : undefined));
    }
    computedPerEpoch.push(stepper.teacherFeatures.stats.computed - before);
  }
  const weights = await Promise.all(model.parameters().map((p) => p.read()));
  const stats = { ...stepper.teacherFeatures.stats };
  stepper.dispose();
  opt.dispose();
  model.dispose();
  teacher.dispose();
  return { losses, weights, computedPerEpoch, stats };
}

const perImageBytes = (64 * 8 * 8 + 128 * 4 * 4 + 256 * 2 * 2) * 4;

describe('teacher feature cache', () => {
  it('refuses a budget that is not a number of bytes (a caller that forgot the defaults)', () => {
    for (const budget of [{ gpuBytes: NaN }, { hostBytes: -1 }, { gpuBytes: Infinity }]) {
      expect(() => new TeacherFeatureCache(ctx.rt, null as never, budget)).toThrow(/teacher feature cache: (gpuBytes|hostBytes) must be a number of bytes >= 0/);
    }
  });

  // dcam: its step has every input the stfpm step has, and the attention's
  for (const method of ['dcam'] as const) {
    it(`${method}: the same losses and weights with the teacher's features kept (GPU, host, both) as computed every step`, async () => {
      const computed = await trainSteps(method, { gpuBytes: 0, hostBytes: 0 });
      expect(computed.computedPerEpoch).toEqual([8, 8, 8]);
      const budgets: Array<[string, TeacherCacheBudget, { gpuImages: number; hostImages: number }]> = [
        ['on the GPU', {}, { gpuImages: 8, hostImages: 0 }],
        ['in host memory', { gpuBytes: 0 }, { gpuImages: 0, hostImages: 8 }],
        ['three on the GPU, the rest on the host', { gpuBytes: 3 * perImageBytes }, { gpuImages: 3, hostImages: 5 }],
      ];
      for (const [where, budget, kept] of budgets) {
        const cached = await trainSteps(method, budget);
        expect(cached.losses, where).toEqual(computed.losses);
        cached.weights.forEach((w, i) => expect(w, `${where}: parameter ${i}`).toEqual(computed.weights[i]));
        expect(cached.computedPerEpoch, where).toEqual([8, 0, 0]);
        expect(cached.stats).toMatchObject({ ...kept, hits: 16 });
      }
      // within budget for two images only: batches holding another image run the teacher again, and agree
      const partial = await trainSteps(method, { gpuBytes: perImageBytes, hostBytes: perImageBytes });
      expect(partial.losses).toEqual(computed.losses);
      expect(partial.computedPerEpoch).toEqual([8, 8, 8]);
      // batches without keys are never kept
      const unkeyed = await trainSteps(method, {}, false);
      expect(unkeyed.losses).toEqual(computed.losses);
      expect(unkeyed.stats).toMatchObject({ gpuImages: 0, hostImages: 0, hits: 0 });
    });
  }

  it('dcam train: the same log and student with and without the cache (--teacher-cache-mb 0 --teacher-cache-host-mb 0)', async () => {
    const data = join(tmp, 'data');
    generateSyntheticDataset(data, { seed: 3, size: 48, categories: { synth_disc: 'object' }, train: 8, testGood: 1, testPerDefect: 1 });
    const run = async (name: string, teacherCache: TeacherCacheBudget) => {
      const out = join(tmp, name);
      await train(ctx.rt, { data, out, method: 'dcam', teacher: findTeacher(), size: 32, batch: 4, epochs: 3, seed: 1, teacherCache });
      const log = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      return { losses: log.map(({ imagesPerSec: _, ...rest }) => rest), student: readFileSync(join(out, 'student.safetensors')) };
    };
    const cached = await run('cached', {});
    const computed = await run('computed', { gpuBytes: 0, hostBytes: 0 });
    expect(cached.losses).toHaveLength(6);
    expect(cached.losses).toEqual(computed.losses);
    expect(Buffer.compare(cached.student, computed.student)).toBe(0);
  }, 120_000);
});
