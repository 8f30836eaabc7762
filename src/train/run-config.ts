/** A run folder's config.json: what it records, and reading it with clear errors. */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Tiling } from '../data/tiles.js';
import type { MethodConfig } from '../model/config.js';

export class TrainingError extends Error {}

export interface RunConfig {
  method: MethodConfig;
  size: number;
  batch: number;
  epochs: number | null;
  steps: number | null;
  seed: number;
  shuffle: boolean;
  /** Batches drawn evenly across categories (absent in older runs: false). */
  balanced?: boolean;
  categories: string[];
  /** Absolute path of the data folder (or folders, when categories come from several); [] for a run from plain folders. */
  data: string | string[];
  /** A run trained from plain files and folders (`--good`): each category's sources, absolute paths or globs. */
  good?: Record<string, string[]>;
  /** Images cut into tiles of `size` at their own resolution (`--tile`), instead of resized to `size`. */
  tiling?: Tiling;
  /**
   * The teacher's file and sha256, whether it is the shipped one, and its fingerprint (features of a fixed
   * input): a run accepts any file that computes the same network (e.g. torchvision's .pth for the shipped file).
   */
  teacher: { file: string | null; sha256: string | null; shipped?: boolean; fingerprint?: number[] };
  trainImages: number;
  /** Written by `dcam eval` / `dcam calibrate`: the decision thresholds and the score normalisation. */
  thresholds?: Thresholds;
}

/** One set of decisions: image and pixel thresholds and the score normalisation (a run's, or one category's). */
export interface DecisionThresholds {
  /** Image score (map maximum) at and above which an image is a defect. */
  image: number;
  /** Map value at and above which a pixel belongs to a defect region. */
  pixel: number;
  /** Scores are normalised linearly so that min -> 0, image threshold -> 0.5, max -> 1 (then clipped). */
  min: number;
  max: number;
  /** Lowest map value seen: the bottom of the overlays' colour scale (the top is `max`). */
  mapMin: number;
  /** How the image threshold was set: 'f1' (F1-optimal on an evaluated set) or 'fpr' (quantile of good images). */
  source: 'f1' | 'fpr';
  /** The image F1 at the threshold on the set it was computed from ('f1'), or the target false-positive rate ('fpr'). */
  f1?: number;
  fpr?: number;
  pixelF1?: number;
  /** The pixel threshold's source: 'f1' on the evaluated masks, or 'image' (the image threshold, without masks). */
  pixelSource: 'f1' | 'image';
  /** Images they were computed from. */
  images: number;
}

export interface Thresholds extends DecisionThresholds {
  /** Gaussian smoothing of the maps the thresholds were computed on (infer applies the same). */
  sigma: number;
  /** What it was computed from. */
  from: string;
  /**
   * Per category, where a run serves several (dcam eval / calibrate): each its own image and pixel
   * threshold and normalisation (one model's scores have a different scale per category), and the mean
   * embedding of its good training images, which names the category of an image the line does not name.
   */
  categories?: Record<string, CategoryThresholds>;
}

export interface CategoryThresholds extends DecisionThresholds {
  /** Mean teacher embedding (layer3, averaged over the image) of the category's good training images. */
  centroid?: number[];
}

/**
 * The image sizes a run may have: from 32 (layer3 then 2 x 2) to 2048 (a training batch's activations at
 * 2048 px already need gigabytes), multiples of 16.
 */
export const MIN_SIZE = 32;
export const MAX_SIZE = 2048;

/** A run's config.json, with a clear error for a folder that is not a run or a damaged file. */
export function readRunConfig(runDir: string): RunConfig {
  const cfgPath = join(runDir, 'config.json');
  if (!existsSync(runDir)) throw new TrainingError(`run folder ${runDir} does not exist`);
  if (!existsSync(cfgPath)) throw new TrainingError(`${runDir} is not a training run (no config.json)`);
  let run: RunConfig;
  try {
    run = JSON.parse(readFileSync(cfgPath, 'utf8')) as RunConfig;
  } catch (e) {
    throw new TrainingError(`${cfgPath}: damaged (${(e as Error).message})`);
  }
  if (!run || typeof run !== 'object' || !run.method || !Number.isInteger(run.size) || !run.teacher) throw new TrainingError(`${cfgPath}: not a dcam run configuration`);
  if (run.size < MIN_SIZE || run.size > MAX_SIZE || run.size % 16 !== 0) throw new TrainingError(`${cfgPath}: size ${run.size} is not a multiple of 16 from ${MIN_SIZE} to ${MAX_SIZE}`);
  return run;
}

/**
 * The run's data folder(s): recorded absolutely by current runs; an older relative one is tried from the
 * working directory, then from the run folder.
 */
export function runDataDir(run: RunConfig, runDir: string): string | string[] {
  const locate = (d: string) => {
    if (isAbsolute(d)) return d;
    const fromCwd = resolve(d);
    return existsSync(fromCwd) ? fromCwd : resolve(runDir, d);
  };
  return typeof run.data === 'string' ? locate(run.data) : run.data.map(locate);
}

