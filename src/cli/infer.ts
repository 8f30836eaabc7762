/**
 * `dcam infer`: anomaly maps, scores and verdicts for files, folders (recursively) and glob patterns,
 * streamed in batches so that memory stays flat over any number of images. Per image: a heatmap overlay
 * on one colour scale for the whole call, with the run's thresholds the normalised score, the label and
 * the defect region as a mask PNG; `scores.json` and `scores.csv` for all of them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { encode } from 'fast-png';
import type { ImageFile } from '../data/folders.js';
import { readImageFile } from '../data/mvtec.js';
import type { Detector, PreparedImage } from '../detector.js';
import { overlayScaledPng } from '../eval/heatmap.js';
import { npyFloat32 } from '../eval/npy.js';
import { rangeColourScale, thresholdColourScale } from '../eval/thresholds.js';
import { lockFolder } from '../train/run-lock.js';

/** An image to inspect: its path, and its name relative to the folder or pattern it came from (the output name). */
export type InferInput = ImageFile;

/**
 * Output stems: the relative name without its extension. Where two inputs would get one stem, x.png and
 * x.jpg keep their extensions (x_png, x_jpg) and one name from two folders gets its folder's name in front
 * (good_000, broken_000); anything still equal is numbered.
 */
export function outputStems(inputs: readonly InferInput[]): string[] {
  const strip = (r: string) => r.slice(0, r.length - extname(r).length);
  const count = <K,>(keys: K[]) => keys.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<K, number>());
  const perStem = count(inputs.map((i) => strip(i.rel)));
  const perName = count(inputs.map((i) => i.rel));
  const used = new Set<string>();
  return inputs.map((i) => {
    let stem = strip(i.rel);
    // x.png beside x.jpg: keep the extension in the name
    if (perStem.get(stem)! > perName.get(i.rel)!) stem = i.rel.replace(/\.([^.\\/]+)$/, '_$1');
    // one name from two folders: the folder's name in front
    if (perName.get(i.rel)! > 1) stem = join(dirname(stem), `${basename(dirname(resolve(i.path)))}_${basename(stem)}`);
    const base = stem;
    for (let k = 2; used.has(stem); k++) stem = `${base}_${k}`;
    used.add(stem);
    return stem;
  });
}

/**
 * Every file the call will write, checked before anything is written: none may be an input (an --out
 * inside the input folders would otherwise replace images by overlays), and no two may coincide.
 */
function planOutputs(inputs: readonly InferInput[], stems: readonly string[], out: string, withMasks: boolean, raw: boolean): void {
  const inputPaths = new Map(inputs.map((i) => [resolve(i.path), i.path]));
  const planned = new Map<string, string>();
  const claim = (rel: string, owner: string) => {
    const p = resolve(out, rel);
    const input = inputPaths.get(p);
    if (input) throw new Error(`the output ${join(out, rel)} would overwrite the input image ${input}: choose an --out outside the input folders`);
    const other = planned.get(p);
    if (other) throw new Error(`two outputs would be ${join(out, rel)} (for ${other} and ${owner}): rename one of the inputs`);
    planned.set(p, owner);
  };
  inputs.forEach((inp, k) => {
    claim(`${stems[k]}.png`, inp.path);
    if (withMasks) claim(`${stems[k]}_mask.png`, inp.path);
    if (raw) claim(`${stems[k]}.npy`, inp.path);
  });
  for (const f of ['scores.json', 'scores.csv']) claim(f, 'the score tables');
}

export interface InferRecord {
  image: string;
  score: number | null;
  normalized: number | null;
  label: 'ok' | 'defect' | null;
  overlay: string | null;
  mask: string | null;
  /** The category whose thresholds judged it (given, or nearest), for a run with thresholds per category. */
  category?: string | null;
  error?: string;
}

export interface InferOptions {
  out: string;
  raw?: boolean;
  /** The images' category, where the line knows it (a run with thresholds per category). */
  category?: string;
  batch?: number;
  onProgress?: (done: number, total: number, defects: number) => void;
}

const concatMaps = (maps: Float32Array[]) => {
  const all = new Float32Array(maps.reduce((n, m) => n + m.length, 0));
  maps.reduce((at, m) => (all.set(m, at), at + m.length), 0);
  return all;
};

const csvField = (v: unknown) => (v === null || v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

export async function inferImages(det: Detector, inputs: readonly InferInput[], o: InferOptions): Promise<InferRecord[]> {
  const stems = outputStems(inputs);
  planOutputs(inputs, stems, o.out, !!det.thresholds, !!o.raw);
  mkdirSync(o.out, { recursive: true });
  // one inference per output folder: a second one would interleave its files and keep only its own tables
  const unlock = lockFolder(o.out);
  try {
    return await inferInto(det, inputs, stems, o);
  } finally {
    unlock();
  }
}

/** Every image through the detector's one inspection path; each file's outputs written as its chunk is done. */
async function inferInto(det: Detector, inputs: readonly InferInput[], stems: readonly string[], o: InferOptions): Promise<InferRecord[]> {
  const S = det.size;
  const t = det.thresholds;
  const batch = o.batch ?? 8;
  const records: InferRecord[] = [];
  // One colour scale for every overlay: the run's (around its pixel threshold), else the first batch's range.
  let toUnit: ((v: number) => number) | null = t ? thresholdColourScale(t) : null;
  let defects = 0;
  const write = (rel: string, bytes: Uint8Array) => {
    const p = join(o.out, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, bytes);
  };
  for (let i = 0; i < inputs.length; i += batch) {
    const chunk = inputs.slice(i, i + batch);
    const prepared: PreparedImage[] = [];
    const ok: number[] = [];
    const errors = new Map<number, string>();
    chunk.forEach((inp, j) => {
      try {
        prepared.push(det.prepare(readImageFile(inp.path), inp.path));
        ok.push(j);
      } catch (e) {
        errors.set(j, (e as Error).message);
      }
    });
    const results = await det.inspectPrepared(prepared, { category: o.category });
    if (!toUnit && results.length) toUnit = rangeColourScale(concatMaps(results.map((r) => r.map)));
    chunk.forEach((inp, j) => {
      const err = errors.get(j);
      if (err !== undefined) {
        records.push({ image: inp.path, score: null, normalized: null, label: null, overlay: null, mask: null, error: err });
        return;
      }
      const k = ok.indexOf(j);
      const r = results[k];
      const stem = stems[i + j];
      // at the map's size: the network's, or the image's own for a tiled run
      const dims = { width: r.width, height: r.height };
      write(`${stem}.png`, overlayScaledPng(prepared[k].image, r.map, dims, toUnit!));
      if (o.raw) write(`${stem}.npy`, npyFloat32(r.map, [r.height, r.width]));
      const rec: InferRecord = { image: inp.path, score: r.score, normalized: r.normalized, label: r.label, overlay: `${stem}.png`, mask: null, ...(r.category ? { category: r.category } : {}) };
      if (t) {
        if (r.label === 'defect') defects++;
        const pixel = (r.category ? t.categories?.[r.category]?.pixel : undefined) ?? t.pixel;
        const mask = new Uint8Array(r.map.length);
        for (let p = 0; p < r.map.length; p++) mask[p] = r.map[p] >= pixel ? 255 : 0;
        write(`${stem}_mask.png`, encode({ ...dims, data: mask, channels: 1, depth: 8 }));
        rec.mask = `${stem}_mask.png`;
      }
      records.push(rec);
    });
    o.onProgress?.(Math.min(i + batch, inputs.length), inputs.length, defects);
  }
  writeFileSync(join(o.out, 'scores.json'), JSON.stringify(records, null, 2));
  const cols = ['image', 'score', 'normalized', 'label', 'category', 'overlay', 'mask', 'error'] as const;
  writeFileSync(join(o.out, 'scores.csv'), [cols.join(','), ...records.map((r) => cols.map((c) => csvField(r[c])).join(','))].join('\n') + '\n');
  return records;
}
