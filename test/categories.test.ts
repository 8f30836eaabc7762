/**
 * One model, many lines: `dcam eval` on several categories sets each its own thresholds and normalisation
 * (and the centroid that routes an image whose category is not named); `dcam infer --category`, `dcam
 * serve ?category=` and the package's `inspect(..., { category })` judge by them, and without a name the
 * nearest category's thresholds judge (reported), the same in every path; `dcam calibrate --category`
 * sets one category's from good images alone.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { loadDetector } from '../src/node.js';
import { InspectionServer, SERVE_DEFAULTS } from '../src/serve/server.js';
import type { Thresholds } from '../src/train/run-config.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-categories-'));
const data = join(tmp, 'data');
const run = join(tmp, 'lines');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const testImages = (category: string) =>
  readdirSync(join(data, category, 'test'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.png')).sort().map((f) => join(data, category, 'test', f));
const thresholds = (): Thresholds => JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).thresholds;

beforeAll(async () => {
  generateSyntheticDataset(data, { seed: 31, size: 32, train: 8, testGood: 3, testPerDefect: 2 });
  expect((await dcam('train', '--data', data, '--out', run, '--size', '32', '--steps', '6', '--batch', '4')).code).toBe(0);
  const ev = await dcam('eval', '--run', run);
  expect(ev.code, ev.err).toBe(0);
  expect(ev.out).toMatch(/synth_disc\s+its own: image/);
}, 180_000);

describe('thresholds per category', () => {
  it('eval sets each category its own thresholds, normalisation and centroid beside the run\'s one', () => {
    const t = thresholds();
    expect(Object.keys(t.categories!).sort()).toEqual(['synth_disc', 'synth_weave']);
    for (const c of Object.values(t.categories!)) {
      expect(c.source).toBe('f1');
      expect(c.centroid).toHaveLength(256);
      expect(c.max).toBeGreaterThan(c.min);
    }
  });

  it('infer, serve and the package judge by the named category, else by the nearest one, the same way', async () => {
    const t = thresholds();
    const disc = testImages('synth_disc');
    // named: the category's threshold decides
    const out = join(tmp, 'inf-named');
    expect((await dcam('infer', '--run', run, '--category', 'synth_weave', '--out', out, ...disc)).code).toBe(0);
    const named = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Array<{ score: number; label: string; category: string }>;
    for (const r of named) {
      expect(r.category).toBe('synth_weave');
      expect(r.label).toBe(r.score >= t.categories!.synth_weave.image ? 'defect' : 'ok');
    }
    // unnamed: the nearest category's (a synthetic disc looks like the discs it was trained on)
    const det = await loadDetector({ run, runtime: ctx.rt });
    const byPackage = await det.inspect(disc.map((p) => readFileSync(p)));
    for (const r of byPackage) {
      expect(r.categoryFrom).toBe('nearest');
      expect(r.category).toBe('synth_disc');
      expect(r.label).toBe(r.score >= t.categories!.synth_disc.image ? 'defect' : 'ok');
    }
    const out2 = join(tmp, 'inf-nearest');
    expect((await dcam('infer', '--run', run, '--out', out2, ...disc)).code).toBe(0);
    const unnamed = JSON.parse(readFileSync(join(out2, 'scores.json'), 'utf8')) as Array<{ label: string; category: string }>;
    expect(unnamed.map((r) => [r.category, r.label])).toEqual(byPackage.map((r) => [r.category, r.label]));
    // the package with a name
    const weave = await det.inspect(readFileSync(disc[0]), { category: 'synth_weave' });
    expect([weave.category, weave.categoryFrom]).toEqual(['synth_weave', 'given']);
    await expect(det.inspect(readFileSync(disc[0]), { category: 'nope' })).rejects.toThrow(/no thresholds for category "nope" \(the run has synth_disc, synth_weave\)/);
    det.dispose();

    // the service: ?category= as infer --category; unnamed as the package; an unknown one is a 400
    const served = await loadDetector({ run, runtime: ctx.rt });
    const server = new InspectionServer(ctx.rt, [{ name: 'lines', dir: run, detector: served }], { ...SERVE_DEFAULTS, port: 0 });
    const url = await server.listen();
    try {
      const post = (p: string, q = '') => fetch(`${url}/v1/inspect${q}`, { method: 'POST', body: new Uint8Array(readFileSync(p)), headers: { 'content-type': 'image/png' } });
      for (const [k, p] of disc.entries()) {
        const a = (await (await post(p, '?category=synth_weave')).json()) as { label: string; category: string; category_from: string };
        expect([a.category, a.category_from, a.label]).toEqual(['synth_weave', 'given', named[k].label]);
        const b = (await (await post(p)).json()) as { label: string; category: string; category_from: string };
        expect([b.category, b.category_from, b.label]).toEqual(['synth_disc', 'nearest', byPackage[k].label]);
      }
      const bad = await post(disc[0], '?category=nope');
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/no thresholds for category "nope" in run lines/);
    } finally {
      await server.close();
    }
    const unknown = await dcam('infer', '--run', run, '--category', 'nope', '--out', join(tmp, 'x'), disc[0]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/--category nope: the run has no thresholds for it \(it has synth_disc, synth_weave\)/);
  });

  it('calibrate --category sets one category\'s threshold from good images, keeping the others and the run\'s', async () => {
    const before = thresholds();
    const good = readdirSync(join(data, 'synth_weave', 'train', 'good')).map((f) => join(data, 'synth_weave', 'train', 'good', f));
    const r = await dcam('calibrate', '--run', run, '--category', 'synth_weave', ...good.flatMap((g) => ['--good', g]));
    expect(r.code, r.err).toBe(0);
    const after = thresholds();
    expect(after.categories!.synth_weave.source).toBe('fpr');
    expect(after.categories!.synth_weave.centroid).toHaveLength(256);
    expect(after.categories!.synth_disc).toEqual(before.categories!.synth_disc);
    expect(after.image).toBe(before.image);
    expect((await dcam('calibrate', '--run', run, '--category', 'bottle', '--good', good[0])).err).toMatch(/--category bottle: the run was trained on synth_disc, synth_weave/);
    // without --category: one threshold for all, and the per-category ones go (said so)
    const all = await dcam('calibrate', '--run', run, ...good.flatMap((g) => ['--good', g]));
    expect(all.code, all.err).toBe(0);
    expect(all.out).toMatch(/thresholds per category \(synth_disc, synth_weave\) are replaced by this one/);
    expect(thresholds().categories).toBeUndefined();
    expect(thresholds().source).toBe('fpr');
  });
});
