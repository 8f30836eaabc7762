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
      if (attention !== 'none' && placement === 'loss') {
        // the research switch scores the attended student: the map of (teacher, att(student)), computed by hand
        model.scoreWithAttention = true;
        const attended = await rt.tidyAsync(async () => model.anomalyMap(x).read());
        model.scoreWithAttention = false;
        const byHand = await rt.tidyAsync(async () => {
          student.setTraining(false);
          const fs = rt.noGrad(() => student.forward(x).map((f, k) => blocks[k].forward(f)));
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
