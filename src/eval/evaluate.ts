/**
 * Evaluation per category: anomaly maps of every test image, image AUROC (score = map maximum), pixel
 * AUROC, AU-PRO@0.3 and the legacy PRO; heatmap overlays and a report. Pixel metrics at the training
 * size (the STFPM/DCAM code), or at the ground truth's full resolution (the official MVTec AD protocol:
 * maps upsampled bilinearly to the mask size, METHOD.md 4.3).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { upsampleBilinear } from '../autograd/ops.js';
import { decodeGray, decodeImage } from '../data/image.js';
import { DatasetError, dataRootList, discoverCategories, loadMask, readImageFile, type DataRoots, type TestSample } from '../data/mvtec.js';
import type { Runtime } from '../graph/runtime.js';
import type { Detector } from '../detector.js';
import { imageScore, type MapAggregation } from '../model/anomaly-map.js';
import { overlayPng } from './heatmap.js';
import { auPro, auroc, legacyPro, proCurve } from './metrics.js';
import { f1OptimalThreshold } from './thresholds.js';
import type { Thresholds } from '../train/run-config.js';

/** Pixels kept for the pixel threshold (at the training size); beyond this, an even subsample. */
const PIXEL_THRESHOLD_BUDGET = 1 << 25;

export interface CategoryMetrics {
  category: string;
  images: number;
  defects: number;
  imageAUROC: number;
  pixelAUROC: number;
  auPRO: number;
  legacyPRO: number;
  /** Why pixel metrics are n/a, when they are. */
  pixelNote?: string;
}

export interface ScoredImage {
  path: string;
  category: string;
  defect: string;
  label: number;
  score: number;
  overlay: string | null;
}

export interface EvalResult {
  categories: CategoryMetrics[];
  /** Categories asked for that had nothing to evaluate, with why. */
  skipped: Array<{ category: string; reason: string }>;
  /** F1-optimal thresholds over every evaluated image (null without defect images). */
  thresholds: Thresholds | null;
  mean: Pick<CategoryMetrics, 'imageAUROC' | 'pixelAUROC' | 'auPRO' | 'legacyPRO'>;
  images: ScoredImage[];
  curves: Record<string, { roc: Array<[number, number]>; pro: Array<[number, number]> }>;
}

export interface EvalOptions {
  data: DataRoots;
  categories: string[];
  /** Write overlays under OUT/maps/<category>/. */
  out?: string;
  sigma?: number;
  /** Pixel metrics at the training size ('size', default) or at the ground truth's resolution ('full'). */
  resolution?: 'size' | 'full';
  /** Combine the levels' maps this way instead of by the run's method (research: bench/ablation.ts). */
  aggregation?: MapAggregation;
  onImage?: (done: number, total: number) => void;
}

/**
 * Maps upsampled (bilinear, align_corners = false, on the GPU) to the category's native image size, and
 * the masks at that size. Every image of a category must have one size (as in MVTec AD).
 */
async function fullResolution(rt: Runtime, samples: readonly TestSample[], maps: readonly Float32Array[], S: number): Promise<{ maps: Float32Array[]; masks: Uint8Array[]; h: number; w: number }> {
  let h = 0;
  let w = 0;
  const out: Float32Array[] = [];
  const masks: Uint8Array[] = [];
  for (const [i, s] of samples.entries()) {
    const img = decodeImage(readFileSync(s.path), s.path);
    if (i === 0) [h, w] = [img.height, img.width];
    if (img.height !== h || img.width !== w) {
      throw new DatasetError(`${s.path}: ${img.width}x${img.height}, but this category's first test image is ${w}x${h}; full-resolution evaluation needs one size per category`);
    }
    const up = await rt.tidyAsync(async () => rt.noGrad(() => upsampleBilinear(rt.tensor(maps[i], [1, 1, S, S]), [h, w])).read());
    out.push(up);
    if (s.maskPath) {
      const m = decodeGray(readFileSync(s.maskPath), s.maskPath);
      if (m.height !== h || m.width !== w) throw new DatasetError(`${s.maskPath}: ${m.width}x${m.height}, but its image is ${w}x${h}`);
      masks.push(m.data.map((v) => (v > 127 ? 1 : 0)));
    } else masks.push(new Uint8Array(h * w));
  }
  return { maps: out, masks, h, w };
}

/**
 * Maps (size x size, smoothed by `sigma`) and network inputs of image files, through the detector's one
 * inspection path.
 */
export async function mapsOf(det: Detector, paths: readonly string[], o: Pick<EvalOptions, 'sigma' | 'aggregation'> = {}): Promise<{ maps: Float32Array[]; inputs: Float32Array[] }> {
  const inputs = paths.map((p) => det.prepare(readImageFile(p), p));
  const results = await det.inspectPrepared(inputs, { sigma: o.sigma ?? 0, aggregation: o.aggregation });
  return { maps: results.map((r) => r.map), inputs };
}

/** ROC points (fpr, tpr), thinned for plotting. */
function rocPoints(scores: ArrayLike<number>, labels: ArrayLike<number>, maxPoints = 200): Array<[number, number]> {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const P = idx.filter((i) => labels[i]).length;
  const N = idx.length - P;
  const pts: Array<[number, number]> = [[0, 0]];
  let tp = 0;
  let fp = 0;
  idx.forEach((i, k) => {
    if (labels[i]) tp++;
    else fp++;
    if (k === idx.length - 1 || scores[idx[k + 1]] !== scores[i]) pts.push([fp / Math.max(N, 1), tp / Math.max(P, 1)]);
  });
  const step = Math.max(1, Math.floor(pts.length / maxPoints));
  return pts.filter((_, k) => k % step === 0 || k === pts.length - 1);
}

/**
 * Evaluates a detector on the categories' test images: maps through `det` (the inference path every
 * command and the service take), smoothed by `o.sigma` (0 by default: evaluation chooses the sigma it
 * then records with the thresholds), at `det.size`.
 */
export async function evaluate(det: Detector, o: EvalOptions): Promise<EvalResult> {
  const rt = det.runtime;
  const cats = discoverCategories(o.data, o.categories);
  const total = cats.reduce((a, c) => a + c.test.length, 0);
  let done = 0;
  const result: EvalResult = { categories: [], skipped: [], thresholds: null, mean: { imageAUROC: 0, pixelAUROC: 0, auPRO: 0, legacyPRO: 0 }, images: [], curves: {} };
  const stride = Math.max(1, Math.ceil((total * det.size * det.size) / PIXEL_THRESHOLD_BUDGET));
  const pixelScores = new Float32Array(Math.ceil((total * det.size * det.size) / stride) + total);
  const pixelLabels = new Uint8Array(pixelScores.length);
  let pixels = 0;
  let mapMin = Infinity;
  for (const cat of cats) {
    if (cat.test.length === 0) {
      result.skipped.push({ category: cat.name, reason: `no test images in ${join(cat.dir, 'test')}` });
      continue;
    }
    const S = det.size;
    const maps: Float32Array[] = [];
    const inputs: Float32Array[] = [];
    for (let i = 0; i < cat.test.length; i += 8) {
      const chunk = cat.test.slice(i, i + 8);
      const r = await mapsOf(det, chunk.map((s) => s.path), o);
      maps.push(...r.maps);
      inputs.push(...r.inputs);
      done += chunk.length;
      o.onImage?.(done, total);
    }
    const masks = cat.test.map((s: TestSample) => loadMask(s.maskPath, S));
    const scores = maps.map(imageScore);
    const labels = cat.test.map((s) => s.label);
    const hasMasks = cat.test.some((s) => s.maskPath !== null);
    const hasDefects = labels.some((l) => l === 1) && hasMasks;
    const pixelNote = !labels.some((l) => l === 1) ? 'no defect images' : !hasMasks ? 'no ground_truth masks (classification only)' : undefined;
    // the category's lowest map value: bottom of its overlays' colour scale, and of the run's
    let lo = Infinity;
    for (const m of maps) for (const v of m) if (v < lo) lo = v;
    mapMin = Math.min(mapMin, lo);
    if (hasDefects) {
      maps.forEach((m, i) => {
        for (let p = (stride - ((i * S * S) % stride)) % stride; p < m.length; p += stride) {
          pixelScores[pixels] = m[p];
          pixelLabels[pixels++] = masks[i][p];
        }
      });
    }
    // Pixel metrics at the training size, or at full resolution; the legacy PRO always at the training
    // size (its definition in the STFPM/DCAM code, and its threshold sweep is too slow for millions of pixels).
    const px = o.resolution === 'full' && hasDefects ? await fullResolution(rt, cat.test, maps, S) : { maps, masks, h: S, w: S };
    const per = px.h * px.w;
    const flatMaps = new Float32Array(px.maps.length * per);
    const flatMasks = new Uint8Array(px.maps.length * per);
    px.maps.forEach((m, i) => {
      flatMaps.set(m, i * per);
      flatMasks.set(px.masks[i], i * per);
    });
    const metrics: CategoryMetrics = {
      category: cat.name,
      images: cat.test.length,
      defects: labels.filter((l) => l === 1).length,
      imageAUROC: auroc(scores, labels),
      pixelAUROC: hasDefects ? auroc(flatMaps, flatMasks) : NaN,
      auPRO: hasDefects ? auPro(px.maps, px.masks, px.h, px.w) : NaN,
      legacyPRO: hasDefects ? legacyPro(maps, masks, S, S) : NaN,
      ...(pixelNote ? { pixelNote } : {}),
    };
    result.categories.push(metrics);
    const pc = hasDefects ? proCurve(px.maps, px.masks, px.h, px.w) : { fpr: new Float64Array(), pro: new Float64Array() };
    const proPts: Array<[number, number]> = [];
    for (let i = 0; i < pc.fpr.length; i += Math.max(1, Math.floor(pc.fpr.length / 300))) if (pc.fpr[i] <= 0.3) proPts.push([pc.fpr[i], pc.pro[i]]);
    result.curves[cat.name] = { roc: rocPoints(scores, labels), pro: proPts };
    // colour scale of the overlays: the category's lowest map value to its highest image score
    const hi = imageScore(scores);
    cat.test.forEach((s, i) => {
      let overlay: string | null = null;
      if (o.out) {
        const rel = join('maps', cat.name, `${s.defect}_${basename(s.path, extname(s.path))}.png`);
        mkdirSync(join(o.out, 'maps', cat.name), { recursive: true });
        writeFileSync(join(o.out, rel), overlayPng(inputs[i], maps[i], S, lo, hi));
        overlay = rel;
      }
      result.images.push({ path: s.path, category: cat.name, defect: s.defect, label: s.label, score: scores[i], overlay });
    });
  }
  const imgScores = result.images.map((r) => r.score);
  const imgLabels = result.images.map((r) => r.label);
  if (imgLabels.some((l) => l === 1) && imgLabels.some((l) => l === 0)) {
    const img = f1OptimalThreshold(imgScores, imgLabels);
    const px = pixelLabels.subarray(0, pixels).includes(1) ? f1OptimalThreshold(pixelScores.subarray(0, pixels), pixelLabels.subarray(0, pixels)) : null;
    result.thresholds = {
      image: img.threshold, pixel: px ? px.threshold : img.threshold, pixelSource: px ? 'f1' : 'image',
      min: Math.min(...imgScores), max: Math.max(...imgScores), mapMin,
      source: 'f1', f1: img.f1, sigma: o.sigma ?? 0, ...(px ? { pixelF1: px.f1 } : {}), from: `${dataRootList(o.data).join(', ')} (${cats.map((c) => c.name).join(', ')}: test)`, images: imgScores.length,
    };
  }
  const keys = ['imageAUROC', 'pixelAUROC', 'auPRO', 'legacyPRO'] as const;
  for (const k of keys) {
    const vals = result.categories.map((c) => c[k]).filter((v) => Number.isFinite(v));
    result.mean[k] = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
  }
  return result;
}
