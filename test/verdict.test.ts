/**
 * From a clone to an OK / defect verdict: the shipped teacher by default, thresholds written by eval,
 * labels from infer that reproduce eval's F1 exactly, calibrate from good images, classification-only
 * data (no masks), runs that remember their teacher by what it computes, and portable run folders.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcam } from './cli-helpers.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { decodeGray } from '../src/data/image.js';
import { discoverCategories } from '../src/data/mvtec.js';
import { fromFloat32, readStateDict, toFloat32, writeSafetensors, type RawTensor } from '../src/model/weights/index.js';
import { trunkConvs } from '../src/model/resnet.js';
import { findTeacher, SHIPPED_TEACHER, sha256File } from '../src/train/teacher.js';
import { useRuntime } from './helpers.js';
import { itShared, sharedPath } from './shared.js';

useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-verdict-'));
const data = join(tmp, 'data');
const run = join(tmp, 'run');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  generateSyntheticDataset(data, { seed: 11, size: 32, train: 8, testGood: 4, testPerDefect: 2 });
});

interface Rec { image: string; score: number; normalized: number; label: 'ok' | 'defect'; mask: string; category?: string }
const config = (r: string) => JSON.parse(readFileSync(join(r, 'config.json'), 'utf8'));

/**
 * The shipped teacher rewritten as torchvision stores it: real BatchNorm statistics (each conv's output
 * channels scaled, the BN undoing it), plus layer4 / fc tensors. The same network in another file.
 */
function unfoldedTeacher(scaleNoise = 0): Map<string, RawTensor> {
  const sd = readStateDict(readFileSync(SHIPPED_TEACHER.file));
  const out = new Map(sd);
  trunkConvs().forEach(({ conv, bn }, j) => {
    const w = toFloat32(sd.get(`${conv}.weight`)!);
    const beta = toFloat32(sd.get(`${bn}.bias`)!);
    const C = beta.length;
    const per = w.length / C;
    const s = Float32Array.from({ length: C }, (_, c) => 0.5 + ((c * 7 + j) % 11) / 8);
    const mean = Float32Array.from({ length: C }, (_, c) => Math.sin(c + j));
    const w2 = Float32Array.from(w, (v, i) => v * s[Math.floor(i / per)] * (1 + scaleNoise * Math.sin(i)));
    out.set(`${conv}.weight`, fromFloat32(w2, sd.get(`${conv}.weight`)!.shape));
    out.set(`${bn}.weight`, fromFloat32(new Float32Array(C).fill(1), [C]));
    out.set(`${bn}.running_var`, fromFloat32(Float32Array.from(s, (v) => v * v - 1e-5), [C]));
    out.set(`${bn}.running_mean`, fromFloat32(mean, [C]));
    out.set(`${bn}.bias`, fromFloat32(Float32Array.from(beta, (b, c) => b + mean[c] / s[c]), [C]));
  });
  out.set('layer4.0.conv1.weight', fromFloat32(new Float32Array(512 * 256 * 9).fill(0.01), [512, 256, 3, 3]));
  out.set('fc.weight', fromFloat32(new Float32Array(1000 * 512).fill(0.001), [1000, 512]));
  return out;
}

describe('the shipped teacher', () => {
  it('is in the repository, pinned by sha256, and the default', () => {
    expect(existsSync(SHIPPED_TEACHER.file)).toBe(true);
    expect(sha256File(SHIPPED_TEACHER.file)).toBe(SHIPPED_TEACHER.sha256);
    expect(existsSync(join(SHIPPED_TEACHER.file, '..', 'LICENSE-torchvision.txt'))).toBe(true);
    const prev = process.env.DCAM_TEACHER;
    delete process.env.DCAM_TEACHER;
    try {
      expect(findTeacher()).toBe(SHIPPED_TEACHER.file);
    } finally {
      if (prev !== undefined) process.env.DCAM_TEACHER = prev;
    }
  });
});

describe('train -> eval -> infer: a verdict per image', () => {
  it('train uses the shipped teacher and records it with its fingerprint and an absolute data folder', async () => {
    const rel = relative(process.cwd(), data);
    const r = await dcam('train', '--data', rel, '--out', run, '--method', 'stfpm', '--size', '32', '--steps', '4', '--batch', '4');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/teacher: ImageNet ResNet18 .*shipped/);
    const cfg = config(run);
    expect(cfg.data).toBe(data);
    expect(cfg.teacher).toMatchObject({ file: SHIPPED_TEACHER.file, sha256: SHIPPED_TEACHER.sha256, shipped: true });
    expect(cfg.teacher.fingerprint.length).toBe(64 + 128 + 256);
  });

  it('eval writes F1-optimal thresholds; infer labels reproduce its F1 exactly, with masks and normalised scores', async () => {
    const ev = await dcam('eval', '--run', run);
    expect(ev.code, ev.err).toBe(0);
    const t = config(run).thresholds;
    expect(t).toMatchObject({ source: 'f1', pixelSource: 'f1', sigma: 0 });
    expect(t.f1).toBeGreaterThan(0);
    expect(ev.out).toMatch(/thresholds \(F1-optimal/);

    const out = join(tmp, 'inspected');
    const inf = await dcam('infer', '--run', run, '--out', out, join(data, 'synth_disc', 'test'), join(data, 'synth_weave', 'test'));
    expect(inf.code, inf.err).toBe(0);
    const recs = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Rec[];
    expect(recs.length).toBe(discoverCategories(data).reduce((a, c) => a + c.test.length, 0)); // every test image of both categories
    expect(recs.length).toBe(t.images);
    // two categories: each image is judged by its category's own thresholds (the nearest, here always its own)
    expect(Object.keys(t.categories).sort()).toEqual(['synth_disc', 'synth_weave']);
    const counts = new Map<string, { tp: number; fp: number; pos: number }>();
    for (const r of recs) {
      const truth = r.image.includes(`${join('test', 'good')}`) ? 0 : 1;
      const category = r.image.includes('synth_disc') ? 'synth_disc' : 'synth_weave';
      expect(r.category, r.image).toBe(category);
      const c = counts.get(category) ?? { tp: 0, fp: 0, pos: 0 };
      c.pos += truth;
      if (r.label === 'defect') truth ? c.tp++ : c.fp++;
      counts.set(category, c);
      expect(r.label).toBe(r.score >= t.categories[category].image ? 'defect' : 'ok');
      expect(r.normalized >= 0.5).toBe(r.label === 'defect');
      const mask = decodeGray(readFileSync(join(out, r.mask)));
      expect([mask.width, mask.height]).toEqual([32, 32]);
    }
    for (const [category, c] of counts) expect((2 * c.tp) / (c.tp + c.fp + c.pos), category).toBe(t.categories[category].f1);
    const csv = readFileSync(join(out, 'scores.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('image,score,normalized,label,category,overlay,mask,error');
    expect(csv.length).toBe(recs.length + 1);
    // folders keep their structure: good/000.png of both categories do not collide
    expect(new Set(recs.map((r) => r.mask)).size).toBe(recs.length);
  });

  it('calibrate sets the image threshold from good images and reports the FPR on held-out good images', async () => {
    const r = await dcam('calibrate', '--run', run, '--good', join(data, 'synth_disc', 'train', 'good'), '--good', join(data, 'synth_weave', 'train', 'good'), '--fpr', '0.1');
    expect(r.code, r.err).toBe(0);
    const t = config(run).thresholds;
    expect(t).toMatchObject({ source: 'fpr', fpr: 0.1, images: 16, pixelSource: 'f1' });
    expect(r.out).toMatch(/image threshold .* from 16 good image\(s\): 6\.25% of them flagged \(target at most 10\.00%\)/);
    expect(r.out).toMatch(/false-positive rate on 8 held-out good test image\(s\) of the run's data: \d\/8 = [\d.]+%/);
  });

  it('a run folder moved elsewhere still evaluates (absolute data folder) from any working directory', async () => {
    const moved = join(tmp, 'elsewhere', 'run');
    mkdirSync(join(tmp, 'elsewhere'));
    cpSync(run, moved, { recursive: true });
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      const r = await dcam('eval', '--run', relative(tmp, moved), '--out', join(tmp, 'eval-moved'));
      expect(r.code, r.err).toBe(0);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('a run remembers its teacher by what it computes', () => {
  it('accepts the same network in another file (BN unfolded, layer4 and fc present), refuses another one', async () => {
    const same = join(tmp, 'torchvision-like.safetensors');
    writeFileSync(same, writeSafetensors([...unfoldedTeacher()]));
    const other = join(tmp, 'other.safetensors');
    writeFileSync(other, writeSafetensors([...unfoldedTeacher(0.05)]));
    let r = await dcam('infer', '--run', run, '--teacher', same, '--out', join(tmp, 'inf-same'), join(data, 'synth_disc', 'test', 'good', '000.png'));
    expect(r.code, r.err).toBe(0);
    const a = JSON.parse(readFileSync(join(tmp, 'inf-same', 'scores.json'), 'utf8'))[0].score;
    r = await dcam('infer', '--run', run, '--out', join(tmp, 'inf-shipped'), join(data, 'synth_disc', 'test', 'good', '000.png'));
    const b = JSON.parse(readFileSync(join(tmp, 'inf-shipped', 'scores.json'), 'utf8'))[0].score;
    expect(Math.abs(a - b) / b).toBeLessThan(1e-4);

    r = await dcam('eval', '--run', run, '--teacher', other, '--out', join(tmp, 'ev-other'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: .*other\.safetensors is not the teacher .*run was trained with: its features differ from the run's teacher by [\d.e+-]+ .*--force/m);
    r = await dcam('infer', '--run', run, '--teacher', other, '--force', '--out', join(tmp, 'inf-other'), join(data, 'synth_disc', 'test', 'good', '000.png'));
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/WARNING: --force/);
  });
});

describe('classification-only data (no ground_truth folder)', () => {
  it('trains and evaluates: image metrics, pixel metrics n/a with the reason, image threshold for the masks', async () => {
    const d = join(tmp, 'nomasks');
    generateSyntheticDataset(d, { seed: 12, size: 32, train: 4, testGood: 2, testPerDefect: 2, categories: { parts: 'object' } });
    rmSync(join(d, 'parts', 'ground_truth'), { recursive: true });
    const r2 = join(tmp, 'run-nomasks');
    expect((await dcam('train', '--data', d, '--out', r2, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '4')).code).toBe(0);
    const ev = await dcam('eval', '--run', r2);
    expect(ev.code, ev.err).toBe(0);
    expect(ev.out).toMatch(/pixel metrics n\/a: no ground_truth masks/);
    const m = JSON.parse(readFileSync(join(r2, 'metrics.json'), 'utf8')).categories[0];
    expect(m.imageAUROC).toBeGreaterThanOrEqual(0);
    expect(m.pixelAUROC).toBeNull(); // NaN in JSON
    expect(config(r2).thresholds).toMatchObject({ source: 'f1', pixelSource: 'image' });
  });
});

describe('on real data: MVTec AD bottle (shared folder)', () => {
  itShared('eval thresholds, infer labels with the same F1 on the bottle test folder, calibrate on the good training images', ['data/mvtec/bottle'], async () => {
    const mvtec = sharedPath('data/mvtec');
    const r = join(tmp, 'run-bottle');
    expect((await dcam('train', '--data', mvtec, '--category', 'bottle', '--out', r, '--method', 'stfpm', '--size', '32', '--steps', '2', '--batch', '4')).code).toBe(0);
    const ev = await dcam('eval', '--run', r);
    expect(ev.code, ev.err).toBe(0);
    const t = config(r).thresholds;
    expect(t.images).toBe(83);
    const out = join(tmp, 'inspected-bottle');
    expect((await dcam('infer', '--run', r, '--out', out, join(mvtec, 'bottle', 'test'))).code).toBe(0);
    const recs = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Rec[];
    expect(recs.length).toBe(83);
    let tp = 0;
    let fp = 0;
    let pos = 0;
    for (const rec of recs) {
      const truth = rec.image.includes(join('test', 'good')) ? 0 : 1;
      pos += truth;
      if (rec.label === 'defect') truth ? tp++ : fp++;
    }
    expect((2 * tp) / (tp + fp + pos)).toBe(t.f1);
    // 50 of the 209 good training images keep the test short (a 900x900 PNG decode each)
    const cal = await dcam('calibrate', '--run', r, '--good', join(mvtec, 'bottle', 'train', 'good', '0[0-4]?.png'));
    expect(cal.code, cal.err).toBe(0);
    expect(cal.out).toMatch(/from 50 good image\(s\)/);
    expect(cal.out).toMatch(/false-positive rate on 20 held-out good test image\(s\)/);
  }, 300_000);
});
