/** Every attention kind and placement trains (finite loss, gradients reach the attention), and checkpoints round-trip. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../src/index.js';
import { createAttention, loadAttention, attentionTensorNames, type AttentionKind } from '../src/model/attention.js';
import { attentionSafetensors, studentSafetensors } from '../src/model/checkpoint.js';
import { preset } from '../src/model/config.js';
import { DistillationModel } from '../src/model/distill.js';
import { anomalyMap } from '../src/model/anomaly-map.js';
import type { Tensor } from '../src/graph/tensor.js';
import { FoldedTrunk, ResNetTrunk } from '../src/model/resnet.js';
import { readStateDict } from '../src/model/weights/index.js';
import { randn, Rng, useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-ckpt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('distillation variants', () => {
  const variants: Array<[AttentionKind, 'loss' | 'inline', 'mean' | 'sum']> = [
    ['channel', 'loss', 'mean'], ['spatial', 'loss', 'mean'], ['cbam', 'loss', 'sum'], ['cbam', 'inline', 'mean'], ['none', 'loss', 'mean'],
  ];
  for (const [attention, placement, kdReduction] of variants) {
    it(`attention ${attention}, placement ${placement}, KD ${kdReduction}`, async () => {
      const rt = ctx.rt;
      const teacherTrunk = ResNetTrunk.random(rt, 11);
      const teacher = await FoldedTrunk.fromTrunk(teacherTrunk);
      teacherTrunk.dispose();
      const student = ResNetTrunk.random(rt, 12);
      const config = preset('dcam', { attention, placement, kdReduction, losses: { channelCD: 1, spatialCD: 0.5, spatialKD: 1, stfpmL2: 0.5 } });
      const blocks = createAttention(rt, attention, 13);
      const model = new DistillationModel(teacher, student, blocks, config);
      const x = rt.tensor(Float32Array.from(randn(new Rng(4), 2 * 3 * 32 * 32)), [2, 3, 32, 32]).keep();
      const values = await rt.tidyAsync(async () => {
        const { loss, terms } = model.trainLoss(x);
        backward(loss);
        return [await loss.item(), ...(await Promise.all(Object.values(terms).map((t) => t.item())))];
      });
      expect(values.every(Number.isFinite)).toBe(true);
      expect(values.length).toBe(5);
      for (const [name, t] of attentionTensorNames(blocks)) {
        const g = await t.grad!.read();
        expect(g.some((v) => v !== 0), name).toBe(true);
      }
      expect(student.tensor('layer1.0.conv1.weight').grad).not.toBeNull();
      const map = model.anomalyMap(x);
      expect(map.shape).toEqual([2, 1, 32, 32]);
      const raw = await map.read();
      expect(raw.every(Number.isFinite)).toBe(true);
      map.dispose();
      if (attention !== 'none') {
        // the research switch scores the attended student, computed by hand: the map of (teacher,
        // att(student)) on the loss side; in line, of the trunk with the gates inside it
        model.scoreWithAttention = true;
        const attended = await rt.tidyAsync(async () => model.anomalyMap(x).read());
        model.scoreWithAttention = false;
        const byHand = await rt.tidyAsync(async () => {
          student.setTraining(false);
          const fs = rt.noGrad(() => (placement === 'inline' ? student.forward(x, (k, f) => blocks[k].forward(f)) : student.forward(x).map((f, k) => blocks[k].forward(f))));
          return anomalyMap(teacher.forward(x), fs as [Tensor, Tensor, Tensor], [32, 32], config.aggregation).read();
        });
        expect(Math.max(...attended.map((v, i) => Math.abs(v - byHand[i])))).toBeLessThan(1e-5);
        // A channel gate rescales channels, which changes the cosine across channels; a spatial gate scales
        // all channels of a pixel alike, which does not: with spatial attention the two maps are one.
        const change = Math.max(...attended.map((v, i) => Math.abs(v - raw[i])));
        if (attention === 'spatial') expect(change).toBeLessThan(1e-5);
        else expect(change).toBeGreaterThan(1e-4);
      }
      x.dispose();
      for (const p of model.parameters()) p.dispose();
      student.dispose();
      teacher.dispose();
    });
  }
});

describe('the attention knobs of the search', () => {
  /** One loss and backward of a fresh student (seed 12) and CBAM blocks (seed 13) with these settings. */
  async function step(teacher: FoldedTrunk, x: Tensor, over: Parameters<typeof preset>[1]) {
    const rt = ctx.rt;
    const student = ResNetTrunk.random(rt, 12);
    const config = preset('dcam', { attention: 'cbam', ...over });
    const blocks = createAttention(rt, config.attention, 13);
    const model = new DistillationModel(teacher, student, blocks, config);
    try {
      const out = await rt.tidyAsync(async () => {
        const { loss, terms } = model.trainLoss(x);
        backward(loss);
        const termValues = Object.fromEntries(await Promise.all(Object.entries(terms).map(async ([k, t]) => [k, await t.item()] as const)));
        return { loss: await loss.item(), terms: termValues };
      });
      const attentionGrads = await Promise.all(attentionTensorNames(blocks).map(async ([name, t]) => [name, t.grad ? Array.from(await t.grad.read()) : null] as const));
      const studentGrad = Array.from(await student.tensor('layer1.0.conv1.weight').grad!.read());
      // the gates of this batch, by hand: the student's training-mode features through each block
      const gates = await rt.tidyAsync(async () => {
        const fs = rt.noGrad(() => student.forward(x).map((f, k) => (blocks.length ? blocks[k].attend(f).gates : [])));
        return Promise.all(fs.map((g) => Promise.all(g.map((t) => t.read()))));
      });
      return { ...out, attentionGrads, studentGrad, gates };
    } finally {
      model.dispose();
    }
  }

  it('gate penalty, attention on chosen levels, gates detached from the student', async () => {
    const rt = ctx.rt;
    const teacherTrunk = ResNetTrunk.random(rt, 11);
    const teacher = await FoldedTrunk.fromTrunk(teacherTrunk);
    teacherTrunk.dispose();
    const x = rt.tensor(Float32Array.from(randn(new Rng(4), 2 * 3 * 32 * 32)), [2, 3, 32, 32]).keep();
    try {
      const base = await step(teacher, x, {});
      expect(base.terms.gatePenalty).toBeUndefined();

      // the penalty: lambda * sum over gates of mean((1 - g)^2), in float64 from the gates read back
      const lambda = 0.7;
      const pen = await step(teacher, x, { gatePenalty: lambda });
      let expected = 0;
      for (const level of pen.gates) for (const g of level) expected += g.reduce((s, v) => s + (1 - v) ** 2, 0) / g.length;
      expect(pen.gates.flat()).toHaveLength(6); // CBAM: a channel and a spatial gate per level
      expect(Math.abs(pen.terms.gatePenalty - lambda * expected) / (lambda * expected)).toBeLessThan(1e-5);
      expect(Math.abs(pen.loss - base.loss - pen.terms.gatePenalty)).toBeLessThan(1e-4 * Math.abs(pen.loss));
      // it pushes the gates' weights: their gradients change
      expect(pen.attentionGrads[0][1]).not.toEqual(base.attentionGrads[0][1]);

      // attention on layer3 only: the other levels' blocks get no gradient, and their terms are the raw student's
      const deep = await step(teacher, x, { attentionLevels: [2], gatePenalty: lambda });
      for (const [name, g] of deep.attentionGrads) {
        if (name.startsWith('2.')) expect(g!.some((v) => v !== 0), name).toBe(true);
        else expect(g, name).toBeNull();
      }
      let deepExpected = 0;
      for (const g of deep.gates[2]) deepExpected += g.reduce((s, v) => s + (1 - v) ** 2, 0) / g.length;
      expect(Math.abs(deep.terms.gatePenalty - lambda * deepExpected) / (lambda * deepExpected)).toBeLessThan(1e-5);
      const none = await step(teacher, x, { attention: 'none' });
      expect(deep.terms.channelCD).not.toBeCloseTo(none.terms.channelCD, 6); // layer3's term differs ...
      const onlyShallow = await step(teacher, x, { attentionLevels: [] });
      expect(onlyShallow.loss).toBeCloseTo(none.loss, 5); // ... and with no level gated the loss is attention-free

      // detached gates: the same loss and the same gradients for the gates' weights; the student's differ
      const det = await step(teacher, x, { gateDetached: true });
      expect(det.loss).toBe(base.loss);
      for (let i = 0; i < base.attentionGrads.length; i++) {
        const [a, b] = [base.attentionGrads[i][1]!, det.attentionGrads[i][1]!];
        expect(Math.max(...a.map((v, k) => Math.abs(v - b[k]))) / Math.max(...a.map(Math.abs)), base.attentionGrads[i][0]).toBeLessThan(1e-4);
      }
      expect(Math.max(...base.studentGrad.map((v, k) => Math.abs(v - det.studentGrad[k])))).toBeGreaterThan(1e-7);
    } finally {
      x.dispose();
      teacher.dispose();
    }
  });
});

describe('checkpoints', () => {
  it('student and attention safetensors round-trip, written atomically', async () => {
    const rt = ctx.rt;
    const student = ResNetTrunk.random(rt, 5);
    const blocks = createAttention(rt, 'cbam', 6);
    writeFileSync(join(tmp, 'student.safetensors'), await studentSafetensors(student));
    writeFileSync(join(tmp, 'attention.safetensors'), await attentionSafetensors(blocks));
    expect(readdirSync(tmp).sort()).toEqual(['attention.safetensors', 'student.safetensors']);
    const back = ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(join(tmp, 'student.safetensors'))), 'student.safetensors');
    for (const name of ['conv1.weight', 'layer3.1.bn2.running_var', 'layer2.0.downsample.0.weight']) {
      expect(Array.from(await back.tensor(name).read())).toEqual(Array.from(await student.tensor(name).read()));
    }
    const other = createAttention(rt, 'cbam', 99);
    loadAttention(other, readStateDict(readFileSync(join(tmp, 'attention.safetensors'))));
    const a = attentionTensorNames(blocks);
    const b = attentionTensorNames(other);
    for (let i = 0; i < a.length; i++) expect(Array.from(await b[i][1].read())).toEqual(Array.from(await a[i][1].read()));
    expect(() => loadAttention(createAttention(rt, 'channel', 0), readStateDict(readFileSync(join(tmp, 'student.safetensors'))), 'student.safetensors')).toThrow(
      /student\.safetensors: attention weights do not match: missing 0\.mlp\.0\.weight \[8,64\]/,
    );
    expect(existsSync(join(tmp, 'student.safetensors.tmp'))).toBe(false);
    back.dispose();
    student.dispose();
  });
});
