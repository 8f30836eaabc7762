/**
 * `dcam calibrate`: the image threshold from good images alone, for users without defect samples, and
 * where thresholds are kept (the run's config.json, written atomically).
 */
import { join, resolve } from 'node:path';
import { discoverCategories } from '../data/mvtec.js';
import { centroidOf, mapsOf } from '../eval/evaluate.js';
import { fprThreshold } from '../eval/thresholds.js';
import { writeFileAtomic } from '../train/files.js';
import { loadDetector } from '../node.js';
import { readRunConfig, runDataDir, trainingInProgress } from '../train/run.js';
import type { RunConfig, Thresholds } from '../train/run-config.js';
import { tilingOf, withDevice, withProgress, type TilingFlags } from './common.js';
import { listImages } from '../data/folders.js';

/** Records thresholds in the run's config.json (atomically; the rest of the file unchanged). */
export function saveThresholds(runDir: string, t: Thresholds): void {
  const cfg: RunConfig = { ...readRunConfig(runDir), thresholds: t };
  writeFileAtomic(join(runDir, 'config.json'), JSON.stringify(cfg, null, 2));
}

export interface CalibrateFlags extends TilingFlags { run: string; good: string[]; fpr: number; category?: string; teacher?: string; force?: boolean }

/** Image threshold from good images alone: flags at most --fpr of them; reports the FPR on the run's good test images. */
export async function runCalibrate(f: CalibrateFlags): Promise<void> {
  const run = readRunConfig(f.run);
  if (f.category !== undefined && !run.categories.includes(f.category)) throw new Error(`--category ${f.category}: the run was trained on ${run.categories.join(', ')}`);
  const busy = trainingInProgress(f.run);
  if (busy) throw new Error(`${busy}: its weights change every epoch, and a threshold set from them would not fit the finished model; calibrate it once the training has finished or stopped`);
  const inputs = listImages(f.good);
  // the f-quantile of n scores is only estimated with n >= 1/f images (and 20 at the least)
  const enough = Math.max(20, Math.ceil(1 / f.fpr));
  if (inputs.length < enough) {
    console.error(`dcam: WARNING: ${inputs.length} good image(s): too few to set a threshold for a false-positive rate of ${(f.fpr * 100).toFixed(2)}% (that needs ${enough} or more); the threshold will only clear these images, and parts like them may be flagged more often`);
  }
  // the smoothing the run's scores are judged with stays (set by dcam eval --sigma); 0 for a new run
  const sigma = run.thresholds?.sigma ?? 0;
  await withDevice(async (rt) => {
    const det = await loadDetector({ run: f.run, runtime: rt, teacher: f.teacher, force: f.force, tiling: tilingOf(f) });
    const scoresOf = async (paths: string[], label: string) =>
      withProgress(label, async (bar) => {
        bar.start(paths.length, 0, { info: '' });
        const scores: number[] = [];
        let mapMin = Infinity;
        for (let i = 0; i < paths.length; i += 8) {
          const { maps } = await mapsOf(det, paths.slice(i, i + 8), { sigma });
          for (const m of maps) {
            let hi = -Infinity;
            for (const v of m) [hi, mapMin] = [Math.max(hi, v), Math.min(mapMin, v)];
            scores.push(hi);
          }
          bar.update(Math.min(i + 8, paths.length));
        }
        return { scores, mapMin };
      });
    const good = await scoresOf(inputs.map((i) => i.path), 'good ');
    const { threshold, achievedFpr } = fprThreshold(good.scores, f.fpr);
    const min = Math.min(...good.scores);
    // a pixel threshold set on masks (dcam eval) stays; else the image threshold serves for the regions
    const previous = f.category !== undefined ? run.thresholds?.categories?.[f.category] : run.thresholds;
    const keepPixel = previous?.pixelSource === 'f1';
    const calibrated = {
      image: threshold, pixel: keepPixel ? previous!.pixel : threshold, pixelSource: keepPixel ? ('f1' as const) : ('image' as const),
      ...(keepPixel && previous!.pixelF1 !== undefined ? { pixelF1: previous!.pixelF1 } : {}),
      min, max: threshold + (threshold - min), mapMin: good.mapMin, source: 'fpr' as const, fpr: f.fpr, images: good.scores.length,
    };
    const from = f.good.map((g) => resolve(g)).join(', ');
    let t: Thresholds;
    if (f.category === undefined) {
      // one threshold for every image: per-category ones would otherwise go on judging them
      const dropped = Object.keys(run.thresholds?.categories ?? {});
      if (dropped.length) console.log(`the run's thresholds per category (${dropped.join(', ')}) are replaced by this one for all its images; calibrate --category NAME sets a category's own`);
      t = { ...calibrated, sigma, from };
    } else {
      // the category's own thresholds and centroid (its good images' mean embedding); the run's one threshold stays, or is this one
      const centroid = await centroidOf(det, inputs.map((i) => i.path));
      const base: Thresholds = run.thresholds ?? { ...calibrated, sigma, from };
      t = { ...base, categories: { ...base.categories, [f.category]: { ...calibrated, centroid } } };
    }
    saveThresholds(f.run, t);
    console.log(`${f.category !== undefined ? `${f.category}: ` : ''}image threshold ${threshold.toPrecision(6)} from ${good.scores.length} good image(s): ${(achievedFpr * 100).toFixed(2)}% of them flagged (target at most ${(f.fpr * 100).toFixed(2)}%); saved in ${join(f.run, 'config.json')}`);
    // Check on held-out good images: the run's own test/good folders, where they exist and were not the calibration set.
    const used = new Set(inputs.map((i) => resolve(i.path)));
    let held: string[] = [];
    try {
      held = discoverCategories(runDataDir(run, f.run), f.category !== undefined ? [f.category] : run.categories).flatMap((c) => c.test.filter((s) => s.label === 0).map((s) => s.path)).filter((p) => !used.has(resolve(p)));
    } catch {
      held = [];
    }
    if (held.length) {
      const h = await scoresOf(held, 'check');
      const flagged = h.scores.filter((s) => s >= threshold).length;
      console.log(`false-positive rate on ${held.length} held-out good test image(s) of the run's data: ${flagged}/${held.length} = ${((100 * flagged) / held.length).toFixed(2)}%`);
    } else console.log("no held-out good test images in the run's data to check the false-positive rate on");
  });
}

