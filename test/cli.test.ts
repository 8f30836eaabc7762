/**
 * The dcam command line and the trainer: one SGD step through the CLI, exact resumption after an
 * interruption, and one clear message (non-zero exit, no stack trace) for each kind of bad input.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcam } from './cli-helpers.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { readStateDict, toFloat32, writeSafetensors, fromFloat32 } from '../src/model/weights/index.js';
import { train } from '../src/train/trainer.js';
import { loadDetector } from '../src/node.js';
import { mapsOf } from '../src/eval/evaluate.js';
import { auPro, auroc } from '../src/eval/metrics.js';
import { decodeGray } from '../src/data/image.js';
import { discoverCategories } from '../src/data/mvtec.js';
import * as ref from './reference.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-cli-'));
const data = join(tmp, 'data');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  generateSyntheticDataset(data, { seed: 5, size: 32, train: 6, testGood: 2, testPerDefect: 2 });
});

const weightsOf = (file: string) => readStateDict(readFileSync(file));

describe('dcam demo: the README\'s first command (npm start) at a tiny size', () => {
  it('generates the data, trains the default preset, evaluates, sets thresholds and says what to run next', async () => {
    const dir = join(tmp, 'demo');
    const r = await dcam('demo', '--dir', dir, '--steps', '3', '--size', '32');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/trained 3 steps/);
    expect(r.out).toMatch(/^mean\s+\d\.\d{4}/m);
    expect(r.out).toMatch(/next: npx dcam infer --run /);
    expect(JSON.parse(readFileSync(join(dir, 'run', 'config.json'), 'utf8')).method.method).toBe('stfpm');
  });
});

describe('dcam train / eval / infer', () => {
  it('train --steps 1 performs exactly one step; eval and infer --raw write their outputs', async () => {
    const run = join(tmp, 'run1');
    const r = await dcam('train', '--data', data, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '4', '--no-shuffle');
    expect(r.code, r.err).toBe(0);
    const log = readFileSync(join(run, 'train.jsonl'), 'utf8').trim().split('\n');
    expect(log.length).toBe(1);
    expect(JSON.parse(log[0]).step).toBe(1);
    const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(cfg.method.method).toBe('stfpm'); // the default preset (README "Results")
    expect(cfg.categories).toEqual(['synth_disc', 'synth_weave']);
    for (const f of ['student.safetensors', 'checkpoint.json', 'checkpoints/step-0000001/optimizer.safetensors']) expect(existsSync(join(run, f)), f).toBe(true);
    expect(existsSync(join(run, 'attention.safetensors')), 'stfpm has no attention').toBe(false);

    const ev = await dcam('eval', '--run', run);
    expect(ev.code, ev.err).toBe(0);
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    expect(metrics.categories.length).toBe(2);
    for (const c of metrics.categories) for (const k of ['imageAUROC', 'pixelAUROC', 'auPRO', 'legacyPRO']) expect(c[k]).toBeGreaterThanOrEqual(0);
    expect(readFileSync(join(run, 'report.html'), 'utf8')).toContain('AU-PRO@0.3');

    const img = join(data, 'synth_disc', 'test', 'spot', '000.png');
    const out = join(tmp, 'infer');
    const inf = await dcam('infer', '--run', run, '--out', out, '--raw', img);
    expect(inf.code, inf.err).toBe(0);
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8'));
    const npy = readFileSync(join(out, '000.npy'));
    expect(npy.subarray(1, 6).toString()).toBe('NUMPY');
    const map = new Float32Array(npy.buffer.slice(npy.byteOffset + npy.length - 32 * 32 * 4, npy.byteOffset + npy.length));
    expect(scores[0].image).toBe(img);
    expect(Math.max(...map)).toBeCloseTo(scores[0].score, 5);
    expect(existsSync(join(out, '000.png'))).toBe(true);
  });

  it('resuming after an interruption ends with the same weights as an uninterrupted run', async () => {
    const rt = ctx.rt;
    const common = { data, teacher: null, randomTeacher: true, size: 32, epochs: 3, batch: 4, seed: 3, method: 'dcam' as const };
    const full = join(tmp, 'full');
    await train(rt, { ...common, out: full });
    const cut = join(tmp, 'cut');
    // 12 images / batch 4 = 3 steps per epoch; stop in the middle of epoch 2
    await expect(train(rt, { ...common, out: cut, onStep: (s) => { if (s.step === 5) throw new Error('killed'); } })).rejects.toThrow('killed');
    const r = await train(rt, { ...common, out: cut, resume: true });
    expect(r.steps).toBe(9);
    expect(readFileSync(join(cut, 'train.jsonl'), 'utf8').trim().split('\n').length).toBe(9); // steps redone after the checkpoint are logged once
    for (const f of ['student.safetensors', 'attention.safetensors']) {
      const a = weightsOf(join(full, f));
      const b = weightsOf(join(cut, f));
      for (const [k, t] of a) expect(Array.from(toFloat32(b.get(k)!)), `${f} ${k}`).toEqual(Array.from(toFloat32(t)));
    }
  });
});

describe('evaluation at the ground truth\'s full resolution', () => {
  it('upsamples the maps to the mask size and scores the pixels there (eval --resolution full)', async () => {
    const big = join(tmp, 'data48');
    generateSyntheticDataset(big, { seed: 9, size: 48, train: 4, testGood: 2, testPerDefect: 2, categories: { synth_disc: 'object' } });
    const run = join(tmp, 'run-full');
    expect((await dcam('train', '--data', big, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '4')).code).toBe(0);
    const ev = await dcam('eval', '--run', run, '--resolution', 'full', '--out', join(tmp, 'eval-full'));
    expect(ev.code, ev.err).toBe(0);
    const got = JSON.parse(readFileSync(join(tmp, 'eval-full', 'metrics.json'), 'utf8')).categories[0];

    // Independently: the 32 x 32 maps, upsampled in float64 on the CPU, masks read at 48 x 48.
    const det = await loadDetector({ run, runtime: ctx.rt });
    const cat = discoverCategories(big, ['synth_disc'])[0];
    const { maps } = await mapsOf(det, cat.test.map((t) => t.path));
    det.dispose();
    const up = maps.map((m) => Float32Array.from(ref.upsampleBilinear(Float64Array.from(m), [1, 1, 32, 32], 48, 48)));
    const masks = cat.test.map((t) => (t.maskPath ? decodeGray(readFileSync(t.maskPath)).data.map((v) => (v > 127 ? 1 : 0)) : new Uint8Array(48 * 48)));
    const flat = new Float32Array(up.length * 48 * 48);
    const flatMasks = new Uint8Array(up.length * 48 * 48);
    up.forEach((m, i) => {
      flat.set(m, i * 48 * 48);
      flatMasks.set(masks[i], i * 48 * 48);
    });
    expect(Math.abs(got.pixelAUROC - auroc(flat, flatMasks))).toBeLessThan(1e-4);
    expect(Math.abs(got.auPRO - auPro(up, masks, [48, 48]))).toBeLessThan(1e-4);
    // the default stays the training size, and the report says which
    const small = await dcam('eval', '--run', run, '--out', join(tmp, 'eval-size'));
    expect(small.code).toBe(0);
    expect(JSON.parse(readFileSync(join(tmp, 'eval-size', 'metrics.json'), 'utf8')).resolution).toBe('size');
  });
});

describe('bad input: one clear message, non-zero exit, earlier checkpoints intact', () => {
  it('unknown flag', async () => {
    const r = await dcam('train', '--data', data, '--out', join(tmp, 'x'), '--random-teacher', '--frobnicate');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/unknown option '--frobnicate'/);
  });

  it('missing data folder, empty category, missing ground truth', async () => {
    let r = await dcam('train', '--data', join(tmp, 'nowhere'), '--out', join(tmp, 'x'), '--random-teacher');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: data folder .*nowhere does not exist$/m);
    expect(r.err).not.toMatch(/at .*\.ts:\d+/); // no stack trace without --verbose
    const d2 = join(tmp, 'data2');
    generateSyntheticDataset(d2, { seed: 1, size: 32, train: 2, testGood: 1, testPerDefect: 1, categories: { a: 'texture' } });
    mkdirSync(join(d2, 'empty', 'train', 'good'), { recursive: true });
    r = await dcam('train', '--data', d2, '--out', join(tmp, 'x'), '--random-teacher');
    expect(r.err).toMatch(/dcam: category 'empty' has no training images/);
    rmSync(join(d2, 'empty'), { recursive: true });
    rmSync(join(d2, 'a', 'ground_truth', 'crack', '000_mask.png'));
    r = await dcam('train', '--data', d2, '--out', join(tmp, 'x'), '--random-teacher');
    expect(r.err).toMatch(/dcam: missing ground truth .*crack\/000_mask\.png/);
  });

  it('a teacher file of the wrong architecture', async () => {
    const bad = join(tmp, 'not-resnet.safetensors');
    writeFileSync(bad, writeSafetensors([['conv1.weight', fromFloat32(new Float32Array(27), [1, 3, 3, 3])]]));
    const r = await dcam('train', '--data', data, '--out', join(tmp, 'x'), '--teacher', bad, '--steps', '1', '--size', '32');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/dcam: .*not-resnet\.safetensors: not a ResNet18 \(conv1\.\.layer3\) state_dict: \d+ problem\(s\)/);
  });

  it('a corrupt image in the training folder is found before the first step; the earlier checkpoint stays intact', async () => {
    const d3 = join(tmp, 'data3');
    generateSyntheticDataset(d3, { seed: 2, size: 32, train: 4, testGood: 1, testPerDefect: 1, categories: { a: 'object' } });
    const run = join(tmp, 'run3');
    let r = await dcam('train', '--data', d3, '--out', run, '--random-teacher', '--size', '32', '--epochs', '1', '--batch', '2');
    expect(r.code, r.err).toBe(0);
    const before = readFileSync(join(run, 'student.safetensors'));
    copyFileSync(join(d3, 'a', 'train', 'good', '000.png'), join(d3, 'a', 'train', 'good', '004.png'));
    writeFileSync(join(d3, 'a', 'train', 'good', '005.png'), 'this is not a png');
    const log = readFileSync(join(run, 'train.jsonl'));
    r = await dcam('train', '--out', run, '--data', d3, '--resume', '--epochs', '2');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/dcam: .*005\.png: not a PNG, JPEG, BMP or TIFF image/);
    expect(readFileSync(join(run, 'student.safetensors')).equals(before)).toBe(true);
    expect(readFileSync(join(run, 'train.jsonl')).equals(log)).toBe(true); // no step was taken
  });

  it('a non-finite loss stops training with a clear error and keeps the last good checkpoint', async () => {
    const d4 = join(tmp, 'data4');
    generateSyntheticDataset(d4, { seed: 4, size: 32, train: 4, testGood: 1, testPerDefect: 1, categories: { a: 'texture' } });
    // lr 1e30: the first step is finite, the weights it makes overflow the next forward
    const run = join(tmp, 'run4');
    let r = await dcam('train', '--data', d4, '--out', run, '--random-teacher', '--size', '32', '--epochs', '3', '--batch', '4', '--method', 'stfpm', '--lr', '1e30');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: the loss became (NaN|Infinity) at step 2 \(epoch 2\); stopped\. The last good checkpoint \(step 1\) in .*run4 is kept; try a lower --lr$/m);
    expect(JSON.parse(readFileSync(join(run, 'checkpoint.json'), 'utf8')).step).toBe(1);
    const early = join(tmp, 'run4b');
    r = await dcam('train', '--data', d4, '--out', early, '--random-teacher', '--size', '32', '--epochs', '3', '--batch', '2', '--method', 'stfpm', '--lr', '1e30');
    expect(r.err).toMatch(/^dcam: the loss became (NaN|Infinity) at step 2 \(epoch 1\); stopped\. No checkpoint had been written yet; try a lower --lr$/m);
  });

  it('a teacher file that does not exist, by flag or by DCAM_TEACHER', async () => {
    let r = await dcam('train', '--data', data, '--out', join(tmp, 'x'), '--teacher', join(tmp, 'nowhere.pth'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: teacher file .*nowhere\.pth does not exist$/m);
    const prev = process.env.DCAM_TEACHER;
    process.env.DCAM_TEACHER = join(tmp, 'gone.safetensors');
    try {
      r = await dcam('train', '--data', data, '--out', join(tmp, 'x'));
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/dcam: teacher file .*gone\.safetensors does not exist/);
    } finally {
      if (prev !== undefined) process.env.DCAM_TEACHER = prev;
      else delete process.env.DCAM_TEACHER;
    }
  });

  it('one inference per output folder; eval names a category without test images and fails when there is nothing to evaluate; calibrate warns about too few images; infer warns about a run still training', async () => {
    const run = join(tmp, 'run-busy');
    expect((await dcam('train', '--data', data, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '4')).code).toBe(0);
    const img = join(data, 'synth_disc', 'test', 'good', '000.png');
    // an output folder held by another live process (here: this test's): refused, nothing written
    const out = join(tmp, 'infer-busy');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, '.lock'), JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-12-06T00:00:00Z' }));
    let r = await dcam('infer', '--run', run, '--out', out, img);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`infer-busy is in use by process ${process.ppid}`));
    expect(existsSync(join(out, 'scores.json'))).toBe(false);
    rmSync(join(out, '.lock'));
    expect((await dcam('infer', '--run', run, '--out', out, img)).code).toBe(0);
    expect(existsSync(join(out, '.lock')), 'the lock is released').toBe(false);

    // a category with no test folder beside one with: named; alone: nothing to evaluate, exit 1
    const d = join(tmp, 'data-notest');
    generateSyntheticDataset(d, { seed: 8, size: 32, train: 4, testGood: 1, testPerDefect: 1, categories: { a: 'object', b: 'texture' } });
    rmSync(join(d, 'b', 'test'), { recursive: true });
    rmSync(join(d, 'b', 'ground_truth'), { recursive: true });
    r = await dcam('eval', '--run', run, '--data', d, '--category', 'a,b');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/category b: nothing to evaluate \(no test images in .*b\/test\)/);
    r = await dcam('eval', '--run', run, '--data', d, '--category', 'b');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: nothing to evaluate: b has no test images/m);

    r = await dcam('calibrate', '--run', run, '--good', img);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/WARNING: 1 good image\(s\): too few to set a threshold for a false-positive rate of 1\.00% \(that needs 100 or more\)/);

    writeFileSync(join(run, '.lock'), JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-12-06T00:00:00Z' }));
    r = await dcam('infer', '--run', run, '--out', join(tmp, 'infer-training'), img);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/WARNING: .*run-busy is being trained by process \d+ .*inspecting with its latest checkpoint/);
    rmSync(join(run, '.lock'));
  });
});
