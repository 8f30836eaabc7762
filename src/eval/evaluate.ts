/**
 * Evaluation per category: anomaly maps of every test image, image AUROC (score = map maximum), pixel
 * AUROC, AU-PRO@0.3 and the legacy PRO; heatmap overlays and a report. Pixel metrics at the training
 * size (the STFPM/DCAM code), or at the ground truth's full resolution (the official MVTec AD protocol:
 * maps upsampled bilinearly to the mask size, METHOD.md 4.3).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { upsampleBilinear } from '../autograd/ops.js';
import { decodeGray, probeImage } from '../data/image.js';
import { scaledSize } from '../data/tiles.js';
import { DatasetError, loadMask, readImageFile, type Category, type TestSample } from '../data/mvtec.js';
import type { Runtime } from '../graph/runtime.js';
import type { Detector } from '../detector.js';
import { imageScore, type MapAggregation } from '../model/anomaly-map.js';
import { overlayPng } from './heatmap.js';
import { auPro, auroc, legacyPro, proCurve } from './metrics.js';
import { f1OptimalThreshold } from './thresholds.js';
import type { CategoryThresholds, Thresholds } from '../train/run-config.js';

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
  /** The categories and their test images: `discoverCategories` (MVTec layout) or `folderCategory` (plain folders). */
  categories: readonly Category[];
  /** Where they came from, as the thresholds record it (default: the categories' folders). */
  source?: string;
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
 * Maps upsampled (bilinear, align_corners = false, on the GPU) to each image's native size, and the masks at
 * that size (the official MVTec AD protocol). A map already at its image's size stays as it is.
 */
async function fullResolution(rt: Runtime, samples: readonly TestSample[], maps: readonly Float32Array[], sizes: ReadonlyArray<readonly [number, number]>): Promise<{ maps: Float32Array[]; masks: Uint8Array[]; sizes: Array<[number, number]> }> {
  const out: Float32Array[] = [];
  const masks: Uint8Array[] = [];
  const native: Array<[number, number]> = [];
  for (const [i, s] of samples.entries()) {
    const { width: w, height: h } = probeImage(readFileSync(s.path), s.path);
    const [mh, mw] = sizes[i];
    out.push(mh === h && mw === w ? maps[i] : await rt.tidyAsync(async () => rt.noGrad(() => upsampleBilinear(rt.tensor(maps[i], [1, 1, mh, mw]), [h, w])).read()));
    native.push([h, w]);
    if (s.maskPath) {
      const m = decodeGray(readFileSync(s.maskPath), s.maskPath);
      if (m.height !== h || m.width !== w) throw new DatasetError(`${s.maskPath}: ${m.width}x${m.height}, but its image is ${w}x${h}`);
      masks.push(m.data.map((v) => (v > 127 ? 1 : 0)));
    } else masks.push(new Uint8Array(h * w));
  }
  return { maps: out, masks, sizes: native };
}

/**
 * Maps (smoothed by `sigma`), their sizes ([height, width]: the network's, or a tiled run's image's) and the
 * images as the maps see them (normalised CHW, for overlays), through the detector's one inspection path.
 */
export async function mapsOf(det: Detector, paths: readonly string[], o: Pick<EvalOptions, 'sigma' | 'aggregation'> = {}): Promise<{ maps: Float32Array[]; sizes: Array<[number, number]>; images: Float32Array[] }> {
  const prepared = paths.map((p) => det.prepare(readImageFile(p), p));
  const results = await det.inspectPrepared(prepared, { sigma: o.sigma ?? 0, aggregation: o.aggregation });
  return { maps: results.map((r) => r.map), sizes: results.map((r) => [r.height, r.width]), images: prepared.map((p) => p.image) };
}

/** Pixels of each test image's map: the network's size, or (a tiled run) the scaled image's, read from its header. */
function mapPixels(det: Detector, paths: readonly string[]): number {
  if (!det.tiling) return paths.length * det.size * det.size;
  return paths.reduce((n, p) => {
    const { width, height } = probeImage(readImageFile(p), p);
    const [w, h] = scaledSize(width, height, det.tiling!.scale);
    return n + w * h;
  }, 0);
}

/** Training images per category whose embeddings make its centroid (evenly spaced over its list). */
const CENTROID_IMAGES = 64;

/** The mean embedding of a category's good images (its training images): what routes an image of unnamed category to it. */
export async function centroidOf(det: Detector, paths: readonly string[]): Promise<number[]> {
  if (paths.length === 0) throw new Error('a category centroid needs good images');
  const step = Math.max(1, Math.floor(paths.length / CENTROID_IMAGES));
  const chosen = paths.filter((_, i) => i % step === 0).slice(0, CENTROID_IMAGES);
  let sum: Float64Array | null = null;
  // a few images at a time: a tiled run's images are many tiles each
  for (let i = 0; i < chosen.length; i += 8) {
    const results = await det.inspectPrepared(chosen.slice(i, i + 8).map((p) => det.prepare(readImageFile(p), p)));
    for (const r of results) {
      sum ??= new Float64Array(r.embedding.length);
      r.embedding.forEach((v, k) => (sum![k] += v));
    }
  }
  return Array.from(sum!, (v) => Number((v / chosen.length).toPrecision(6)));
}

/** A category's good images for its centroid: its training images, else (plain folders at evaluation) its good test images. */
const goodImagesOf = (c: Category): string[] => (c.train.length ? [...c.train] : c.test.filter((s) => s.label === 0).map((s) => s.path));

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
  const cats = o.categories;
  const total = cats.reduce((a, c) => a + c.test.length, 0);
  let done = 0;
  const result: EvalResult = { categories: [], skipped: [], thresholds: null, mean: { imageAUROC: 0, pixelAUROC: 0, auPRO: 0, legacyPRO: 0 }, images: [], curves: {} };
  const allPixels = mapPixels(det, cats.flatMap((c) => c.test.map((s) => s.path)));
  const stride = Math.max(1, Math.ceil(allPixels / PIXEL_THRESHOLD_BUDGET));
  const pixelScores = new Float32Array(Math.ceil(allPixels / stride) + total);
  const pixelLabels = new Uint8Array(pixelScores.length);
  let pixels = 0;
  let mapMin = Infinity;
  // each category's share of the above, for its own thresholds
  const own: Array<{ name: string; first: number; pixels: [number, number]; mapMin: number; embeddingOf: Category }> = [];
  for (const cat of cats) {
    if (cat.test.length === 0) {
      result.skipped.push({ category: cat.name, reason: `no test images in ${join(cat.dir, 'test')}` });
      continue;
    }
    const maps: Float32Array[] = [];
    const sizes: Array<[number, number]> = [];
    const images: Float32Array[] = [];
    for (let i = 0; i < cat.test.length; i += 8) {
      const chunk = cat.test.slice(i, i + 8);
      const r = await mapsOf(det, chunk.map((s) => s.path), o);
      maps.push(...r.maps);
      sizes.push(...r.sizes);
      images.push(...r.images);
      done += chunk.length;
      o.onImage?.(done, total);
    }
    const masks = cat.test.map((s: TestSample, i) => loadMask(s.maskPath, sizes[i][1], sizes[i][0]));
    const scores = maps.map(imageScore);
    const labels = cat.test.map((s) => s.label);
    const hasMasks = cat.test.some((s) => s.maskPath !== null);
    const hasDefects = labels.some((l) => l === 1) && hasMasks;
    const pixelNote = !labels.some((l) => l === 1) ? 'no defect images' : !hasMasks ? 'no ground_truth masks (classification only)' : undefined;
    // the category's lowest map value: bottom of its overlays' colour scale, and of the run's
    let lo = Infinity;
    for (const m of maps) for (const v of m) if (v < lo) lo = v;
    mapMin = Math.min(mapMin, lo);
    own.push({ name: cat.name, first: result.images.length, pixels: [pixels, pixels], mapMin: lo, embeddingOf: cat });
    if (hasDefects) {
      let seen = 0; // the category's pixels before this map: the subsample strides across maps
      maps.forEach((m, i) => {
        for (let p = (stride - (seen % stride)) % stride; p < m.length; p += stride) {
          pixelScores[pixels] = m[p];
          pixelLabels[pixels++] = masks[i][p];
        }
        seen += m.length;
      });
    }
    own[own.length - 1].pixels[1] = pixels;
    // Pixel metrics at the map's size (the network's, or a tiled run's image's), or at full resolution; the
    // legacy PRO always at the map's size (its definition in the STFPM/DCAM code).
    const px = o.resolution === 'full' && hasDefects ? await fullResolution(rt, cat.test, maps, sizes) : { maps, masks, sizes };
    const flatMaps = new Float32Array(px.maps.reduce((n, m) => n + m.length, 0));
    const flatMasks = new Uint8Array(flatMaps.length);
    px.maps.reduce((at, m, i) => (flatMaps.set(m, at), flatMasks.set(px.masks[i], at), at + m.length), 0);
    const metrics: CategoryMetrics = {
      category: cat.name,
      images: cat.test.length,
      defects: labels.filter((l) => l === 1).length,
      imageAUROC: auroc(scores, labels),
      pixelAUROC: hasDefects ? auroc(flatMaps, flatMasks) : NaN,
      auPRO: hasDefects ? auPro(px.maps, px.masks, px.sizes) : NaN,
      legacyPRO: hasDefects ? legacyPro(maps, masks, sizes) : NaN,
      ...(pixelNote ? { pixelNote } : {}),
    };
    result.categories.push(metrics);
    const pc = hasDefects ? proCurve(px.maps, px.masks, px.sizes) : { fpr: new Float64Array(), pro: new Float64Array() };
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
        writeFileSync(join(o.out, rel), overlayPng(images[i], maps[i], { width: sizes[i][1], height: sizes[i][0] }, lo, hi));
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
      source: 'f1', f1: img.f1, sigma: o.sigma ?? 0, ...(px ? { pixelF1: px.f1 } : {}), from: `${o.source ?? [...new Set(cats.map((c) => c.dir))].join(', ')} (${cats.map((c) => c.name).join(', ')}: test)`, images: imgScores.length,
    };
  }
  if (result.thresholds && own.length > 1) {
    const per: Record<string, CategoryThresholds> = {};
    for (const [k, c] of own.entries()) {
      const images = result.images.slice(c.first, own[k + 1]?.first ?? result.images.length);
      const scores = images.map((r) => r.score);
      const labels = images.map((r) => r.label);
      if (!labels.includes(1) || !labels.includes(0)) continue;
      const img = f1OptimalThreshold(scores, labels);
      const [p0, p1] = c.pixels;
      const px = pixelLabels.subarray(p0, p1).includes(1) ? f1OptimalThreshold(pixelScores.subarray(p0, p1), pixelLabels.subarray(p0, p1)) : null;
      per[c.name] = {
        image: img.threshold, pixel: px ? px.threshold : img.threshold, pixelSource: px ? 'f1' : 'image', min: Math.min(...scores), max: Math.max(...scores), mapMin: c.mapMin,
        source: 'f1', f1: img.f1, ...(px ? { pixelF1: px.f1 } : {}), images: scores.length, centroid: await centroidOf(det, goodImagesOf(c.embeddingOf)),
      };
    }
    if (Object.keys(per).length) result.thresholds.categories = per;
  }
  const keys = ['imageAUROC', 'pixelAUROC', 'auPRO', 'legacyPRO'] as const;
  for (const k of keys) {
    const vals = result.categories.map((c) => c[k]).filter((v) => Number.isFinite(v));
    result.mean[k] = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
  }
  return result;
}
