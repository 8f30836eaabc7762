/**
 * Any folder of good images: `dcam train --good DIR`, `dcam calibrate --good DIR2` and `dcam infer` with no
 * MVTec layout anywhere; `dcam eval --good / --defect / --masks` on plain folders gives the metrics of the
 * same images in the MVTec layout; NAME=PATH names categories.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupSources, parseSource, sourceName } from '../src/data/folders.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';

useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-folders-'));
const mvtec = join(tmp, 'mvtec');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The synthetic category re-filed as a line would have it: ok/, ng/ (defect type in the name), masks/ (x_mask.png), and ok2/ for calibration. */
function plainFolders(): { ok: string; ok2: string; good: string; ng: string; masks: string } {
  const root = join(tmp, 'photos');
  const dirs = { ok: join(root, 'ok'), ok2: join(root, 'ok2'), good: join(root, 'good-test'), ng: join(root, 'ng'), masks: join(root, 'masks') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const cat = join(mvtec, 'synth_disc');
  const train = readdirSync(join(cat, 'train', 'good')).sort();
  train.forEach((f, i) => copyFileSync(join(cat, 'train', 'good', f), join(i < 6 ? dirs.ok : dirs.ok2, `part-${f}`)));
  for (const f of readdirSync(join(cat, 'test', 'good'))) copyFileSync(join(cat, 'test', 'good', f), join(dirs.good, f));
  for (const defect of readdirSync(join(cat, 'test')).filter((d) => d !== 'good')) {
    for (const f of readdirSync(join(cat, 'test', defect))) {
      const stem = `${defect}_${basename(f, '.png')}`;
      copyFileSync(join(cat, 'test', defect, f), join(dirs.ng, `${stem}.png`));
      copyFileSync(join(cat, 'ground_truth', defect, `${basename(f, '.png')}_mask.png`), join(dirs.masks, `${stem}_mask.png`));
    }
  }
  return dirs;
}

let dirs: ReturnType<typeof plainFolders>;
beforeAll(() => {
  generateSyntheticDataset(mvtec, { seed: 17, size: 32, train: 10, testGood: 3, testPerDefect: 2, categories: { synth_disc: 'object' } });
  dirs = plainFolders();
});

describe('any folder of good images', () => {
  it('sources: NAME=PATH names a category, a bare one takes --category or its folder name', () => {
    expect(parseSource('lineA=photos/ok')).toEqual({ name: 'lineA', path: 'photos/ok' });
    expect(parseSource(dirs.ok)).toEqual({ name: null, path: dirs.ok });
    expect(sourceName(dirs.ok)).toBe('ok');
    expect(sourceName(join(dirs.ok, '*.png'))).toBe('ok');
    expect(sourceName(join(dirs.ok, 'part-000.png'))).toBe('ok');
    expect([...groupSources([dirs.ok, `b=${dirs.ok2}`]).keys()]).toEqual(['ok', 'b']);
    expect([...groupSources([dirs.ok, dirs.ok2], 'parts').entries()]).toEqual([['parts', [dirs.ok, dirs.ok2]]]);
  });

  it('train --good, calibrate --good, infer: no MVTec layout anywhere', async () => {
    const run = join(tmp, 'run-plain');
    let r = await dcam('train', '--good', dirs.ok, '--out', run, '--size', '32', '--steps', '3', '--batch', '3');
    expect(r.code, r.err).toBe(0);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(config.categories).toEqual(['ok']);
    expect(config.good).toEqual({ ok: [dirs.ok] });
    expect(config.trainImages).toBe(6);
    r = await dcam('calibrate', '--run', run, '--good', dirs.ok2);
    expect(r.code, r.err).toBe(0);
    const out = join(tmp, 'inspected');
    r = await dcam('infer', '--run', run, '--out', out, dirs.ng);
    expect(r.code, r.err).toBe(0);
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Array<{ label: string }>;
    expect(scores.length).toBe(readdirSync(dirs.ng).length);
    for (const s of scores) expect(['ok', 'defect']).toContain(s.label);
    // a resume takes the same sources; another one is refused by name
    r = await dcam('train', '--good', dirs.ok, '--out', run, '--resume', '--steps', '4');
    expect(r.code, r.err).toBe(0);
    r = await dcam('train', '--good', dirs.ok2, '--out', run, '--resume', '--steps', '5');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--good .* \(the run has/);
    // such a run is evaluated from folders
    r = await dcam('eval', '--run', run);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/trained from folders of good images: evaluate it with --good DIR --defect DIR/);
    r = await dcam('eval', '--run', run, '--good', dirs.good, '--defect', dirs.ng, '--masks', dirs.masks);
    expect(r.code, r.err).toBe(0);
  });

  it('eval from --good / --defect / --masks folders gives the metrics of the same images in the MVTec layout', async () => {
    const run = join(tmp, 'run-mvtec');
    expect((await dcam('train', '--data', mvtec, '--out', run, '--size', '32', '--steps', '3', '--batch', '4')).code).toBe(0);
    const a = await dcam('eval', '--run', run, '--out', join(tmp, 'eval-mvtec'));
    expect(a.code, a.err).toBe(0);
    const b = await dcam('eval', '--run', run, '--good', dirs.good, '--defect', dirs.ng, '--masks', dirs.masks, '--out', join(tmp, 'eval-plain'));
    expect(b.code, b.err).toBe(0);
    const metrics = (d: string) => JSON.parse(readFileSync(join(tmp, d, 'metrics.json'), 'utf8')).categories[0];
    const [m1, m2] = [metrics('eval-mvtec'), metrics('eval-plain')];
    expect(m2.category).toBe('synth_disc'); // bare sources take the run's only category
    for (const k of ['images', 'defects', 'imageAUROC', 'pixelAUROC', 'auPRO', 'legacyPRO']) expect(m2[k], k).toBe(m1[k]);
    // without masks: classification only
    const c = await dcam('eval', '--run', run, '--good', dirs.good, '--defect', dirs.ng, '--out', join(tmp, 'eval-nomasks'));
    expect(c.code, c.err).toBe(0);
    expect(metrics('eval-nomasks').imageAUROC).toBe(m1.imageAUROC);
    expect(metrics('eval-nomasks').pixelNote).toMatch(/no ground_truth masks/);
    // a defect image without its mask is named
    const lonely = join(tmp, 'lonely');
    mkdirSync(lonely);
    copyFileSync(join(dirs.ng, readdirSync(dirs.ng)[0]), join(lonely, 'unmasked.png'));
    const d = await dcam('eval', '--run', run, '--good', dirs.good, '--defect', lonely, '--masks', dirs.masks, '--out', join(tmp, 'eval-bad'));
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/no mask for defect image .*unmasked\.png/);
    expect(existsSync(join(tmp, 'eval-bad', 'metrics.json'))).toBe(false);
  });
});
