/**
 * The detector API for applications, the same in Node and in browsers: load a trained run (or train one
 * on a few good images), inspect images, get per image the score, the normalised score and the OK /
 * defect label with the run's thresholds, the anomaly map and the defect regions.
 *
 *   const det = await loadDetector({ run: 'https://example.com/run/' });   // Node: a folder path
 *   const [r] = await det.inspect([jpegBytes]);   // { score, normalized, label, map, regions }
 *   det.dispose();
 *
 * Few-shot training in an app: fewshot.ts. This module is browser-safe; in Node the package resolves to node.ts, whose loadDetector also reads
 * run folders and teacher files from disk.
 */
import { unzipSync, strFromU8 } from 'fflate';
import { decodeImage, pickRgb, type RgbImage } from './data/image.js';
import { toInput } from './data/resize.js';
import { checkTiling, cutTiles, stitch, type Tiling } from './data/tiles.js';
import { DetectorError } from './errors.js';
import { labelComponents } from './eval/metrics.js';
import { normalizeScore } from './eval/thresholds.js';
import { createDevice } from './graph/device.js';
import { RecordingCache, type Recording } from './graph/recording.js';
import type { Runtime } from './graph/runtime.js';
import type { MethodConfig } from './model/config.js';
import { gaussianSmooth, imageScore, type MapAggregation } from './model/anomaly-map.js';
import { DistillationModel } from './model/distill.js';
import { teacherMismatch } from './model/fingerprint.js';
import { FoldedTrunk, ResNetTrunk } from './model/resnet.js';
import { readStateDict } from './model/weights/index.js';
import type { CategoryThresholds, DecisionThresholds, RunConfig, Thresholds } from './train/run-config.js';

/** The ImageNet teacher that ships with the package (bundlers emit it as an asset; Node reads the file). */
export const SHIPPED_TEACHER_URL = new URL('../weights/resnet18-imagenet-layer1to3.safetensors', import.meta.url);

export { DetectorError };

/** Encoded bytes (PNG, JPEG, BMP, TIFF) or decoded pixels (RGBA as from a canvas, or RGB). */
export type ImageInput = Uint8Array | ArrayBuffer | { width: number; height: number; data: Uint8Array | Uint8ClampedArray };

export interface Region {
  /** Bounding box in map pixels (the map is size x size). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Pixels over the pixel threshold, and the highest map value inside. */
  area: number;
  peak: number;
}

export interface InspectionResult {
  /** Image score: the map's maximum. */
  score: number;
  /** With thresholds: in [0, 1], the threshold at 0.5; else null. */
  normalized: number | null;
  label: 'ok' | 'defect' | null;
  /** Anomaly map, width x height, row-major: the network's size, or the (scaled) image's for a tiled run. */
  map: Float32Array;
  width: number;
  height: number;
  /** The network's input size (a tile's side for a tiled run). */
  size: number;
  /** Connected regions over the pixel threshold (8-connected), largest first; [] without thresholds. */
  regions: Region[];
  /** With `keepInput`: the image as the map sees it (ImageNet-normalised CHW, width x height). */
  input?: Float32Array;
  /**
   * The category whose thresholds judged the image (a run with thresholds per category), and how it was
   * known: given by the caller, or the category whose good training images' embedding is nearest; null
   * when the run's one threshold judged it.
   */
  category: string | null;
  categoryFrom: 'given' | 'nearest' | null;
  /** The image's embedding (the teacher's layer3 features averaged over the image). */
  embedding: Float32Array;
}

export interface InspectOptions {
  keepInput?: boolean;
  /**
   * Gaussian smoothing of the maps before scoring (sigma in map pixels); default the run's, as `dcam eval
   * --sigma` set it with the thresholds (0: none). Evaluation passes the sigma it evaluates.
   */
  sigma?: number;
  /** Combine the levels' maps this way instead of by the run's method (research: bench/ablation.ts). */
  aggregation?: MapAggregation;
  /**
   * The images' category, where the line knows it: its thresholds judge them (a run with thresholds per
   * category; an unknown name is an error). Unset: the nearest category's, or the run's one threshold.
   */
  category?: string;
}

/** A run: its config.json and student weights (bytes), or its files by name (loose or one zip). */
export type RunSource = string | URL | { config: RunConfig | Uint8Array | string; student: Uint8Array } | Map<string, Uint8Array>;

export interface LoadDetectorOptions {
  run: RunSource;
  /** Teacher weights: bytes or a URL; default the shipped ImageNet ResNet18. */
  teacher?: Uint8Array | string | URL;
  /** Use the teacher even if it is not the network the run was trained with. */
  force?: boolean;
  /** A runtime to share (default: a new one, destroyed by dispose()). */
  runtime?: Runtime;
  /** Images per GPU batch in inspect() (default 8). */
  batch?: number;
  /**
   * The tiling the caller expects (any of tile, stride, scale): a run trained otherwise is refused by name.
   * Leave it out to apply the run's own, whatever it is.
   */
  tiling?: Partial<Tiling>;
}

/** @internal: bytes from a URL; file: URLs (the shipped teacher, in Node) are read from disk. */
export async function fetchBytes(url: string | URL): Promise<Uint8Array> {
  const u = url instanceof URL ? url : new URL(url, globalThis.location?.href);
  if (u.protocol === 'file:' && typeof process === 'object' && typeof process.versions?.node === 'string') {
    const fsName = 'node:fs'; // a variable, so that bundlers for browsers leave it alone
    const { readFileSync } = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
    return new Uint8Array(readFileSync(u));
  }
  const r = await fetch(u);
  if (!r.ok) throw new DetectorError(`${String(url)}: HTTP ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** A run's files as loading needs them. */
export interface RunFiles {
  config: RunConfig;
  student: Uint8Array;
  /** How the run is named in messages (its folder or URL). */
  name: string;
}

/**
 * The run's config and student bytes from any RunSource (URLs are fetched; a folder URL ends with '/').
 * Where the source has the run's checkpoint manifest (checkpoint.json), the student must be the one it
 * committed: a published student.safetensors that differs (replaced, damaged) is refused by name.
 */
export async function readRunSource(run: RunSource): Promise<RunFiles> {
  if (typeof run === 'string' || run instanceof URL) {
    const base = String(run).endsWith('/') ? String(run) : `${String(run)}/`;
    const [config, student, manifest] = await Promise.all([fetchBytes(`${base}config.json`), fetchBytes(`${base}student.safetensors`), fetchBytes(`${base}checkpoint.json`).catch(() => null)]);
    await checkAgainstManifest(student, manifest, `${base}student.safetensors`);
    return { config: parseConfig(config, `${base}config.json`), student, name: base };
  }
  if (run instanceof Map) {
    let named = new Map([...run].map(([k, v]) => [k.replace(/^.*[\\/]/, ''), v]));
    const zip = [...named].find(([k]) => k.endsWith('.zip'));
    if (zip) named = new Map(Object.entries(unzipSync(zip[1])).map(([k, v]) => [k.replace(/^.*[\\/]/, ''), v]));
    const config = named.get('config.json');
    const student = named.get('student.safetensors');
    if (!config || !student) throw new DetectorError(`a run needs config.json and student.safetensors (got: ${[...named.keys()].join(', ') || 'nothing'})`);
    await checkAgainstManifest(student, named.get('checkpoint.json') ?? null, 'student.safetensors');
    return { config: parseConfig(config, 'config.json'), student, name: 'run' };
  }
  const config = run.config instanceof Uint8Array || typeof run.config === 'string' ? parseConfig(run.config, 'config.json') : run.config;
  return { config, student: run.student, name: 'run' };
}

/** Refuses student bytes that are not the ones the run's checkpoint manifest committed (sha256). */
async function checkAgainstManifest(student: Uint8Array, manifest: Uint8Array | null, name: string): Promise<void> {
  if (!manifest) return;
  let want: string | undefined;
  try {
    want = (JSON.parse(strFromU8(manifest)) as { files?: Record<string, { sha256?: string }> }).files?.['student.safetensors']?.sha256;
  } catch (e) {
    throw new DetectorError(`the run's checkpoint.json is damaged (${(e as Error).message})`);
  }
  if (!want) return;
  const got = [...new Uint8Array(await crypto.subtle.digest('SHA-256', student as Uint8Array<ArrayBuffer>))].map((b) => b.toString(16).padStart(2, '0')).join('');
  if (got !== want) throw new DetectorError(`${name} is not the student the run's last checkpoint committed (sha256 ${got}, checkpoint.json has ${want}): it was replaced or damaged; refusing to load it`);
}

function parseConfig(bytes: Uint8Array | string, name: string): RunConfig {
  let c: RunConfig;
  try {
    c = JSON.parse(typeof bytes === 'string' ? bytes : strFromU8(bytes)) as RunConfig;
  } catch (e) {
    throw new DetectorError(`${name} is not valid JSON: ${(e as Error).message}`);
  }
  if (!c || !c.method || !Number.isInteger(c.size)) throw new DetectorError(`${name} is not a dcam run (no method or size)`);
  return c;
}

export class Detector {
  /**
   * Record each chunk size's inspection the first time and replay it after (graph/recording.ts): the same
   * maps, bit for bit, without the host work of building them (on a fast GPU, most of an inspection's
   * time). The two most recently used chunk sizes stay recorded. False: every inspection through the model.
   */
  replay = true;
  /** Recorded inspections by chunk size (each holds its own working set of GPU buffers). */
  private readonly recorded = new RecordingCache<string, { recording: Recording; input: GPUBuffer; output: GPUBuffer; embedding: GPUBuffer; embeddingBytes: number; dispose(): void }>(2);

  private constructor(
    readonly runtime: Runtime,
    private readonly model: DistillationModel,
    /** Disposed with the detector, unless it belongs to someone else (a trainer's). */
    private readonly teacher: FoldedTrunk | null,
    /** Image size the model works at. */
    readonly size: number,
    readonly method: MethodConfig,
    /** The run's decision thresholds (null: scores only, no labels). */
    readonly thresholds: Thresholds | null,
    private readonly ownsRuntime: boolean,
    private readonly batch: number,
    /** How the run cuts images into tiles (null: each image resized to `size`). */
    readonly tiling: Tiling | null,
  ) {}

  /**
   * @internal: from a folded teacher and a student (used by loadDetector and the few-shot trainer). The
   * detector owns the student, the teacher if `ownsTeacher`, the runtime if `ownsRuntime`.
   */
  static async create(rt: Runtime, teacher: FoldedTrunk, student: ResNetTrunk, method: MethodConfig, size: number, thresholds: Thresholds | null, own: { runtime: boolean; teacher: boolean }, batch = 8, tiling: Tiling | null = null): Promise<Detector> {
    return Detector.fromModel(rt, new DistillationModel(teacher, student, [], { ...method, attention: 'none' }), size, thresholds, own, batch, tiling);
  }

  /**
   * @internal: from a distillation model (folded for inference here). A research tool may pass a model
   * that scores with its attention (bench/attention-maps.ts); everything else comes through `create`.
   */
  static async fromModel(rt: Runtime, model: DistillationModel, size: number, thresholds: Thresholds | null, own: { runtime: boolean; teacher: boolean }, batch = 8, tiling: Tiling | null = null): Promise<Detector> {
    if (tiling && tiling.tile !== size) throw new DetectorError(`tiles of ${tiling.tile} for a network of ${size}: a run's tile is its size`);
    await model.foldForInference();
    return new Detector(rt, model, own.teacher ? model.teacher : null, size, model.config, thresholds, own.runtime, batch, tiling);
  }

  /** The maps' smoothing the run was evaluated (and its thresholds set) with: 0 for none. */
  get sigma(): number {
    return this.thresholds?.sigma ?? 0;
  }

  /**
   * One image or many; results in the same order. Images of any size are resized as in training.
   * `keepInput` adds each network input (normalised CHW, for drawing it beside the map).
   */
  inspect(image: ImageInput, options?: InspectOptions): Promise<InspectionResult>;
  inspect(images: readonly ImageInput[], options?: InspectOptions): Promise<InspectionResult[]>;
  async inspect(input: ImageInput | readonly ImageInput[], options: InspectOptions = {}): Promise<InspectionResult | InspectionResult[]> {
    const many = Array.isArray(input);
    const images = (many ? input : [input]) as readonly ImageInput[];
    const out = await this.inspectPrepared(images.map((img, k) => this.prepare(img, `image ${k}`)), options);
    return many ? out : out[0];
  }

  /**
   * @internal: an image made ready for the network: decoded (bytes), converted to RGB, then resized to
   * the network's size as in training, or (a tiled run) cut into tiles at its own resolution; normalised.
   * Throws naming `name` for an image that cannot be read.
   */
  prepare(image: ImageInput, name = 'image'): PreparedImage {
    const rgb = toRgb(image, name);
    if (this.tiling) {
      const t = cutTiles(rgb, this.tiling, name);
      return { inputs: t.tiles, origins: t.origins, width: t.width, height: t.height, image: t.image };
    }
    const x = toInput(rgb, this.size);
    return { inputs: [x], origins: null, width: this.size, height: this.size, image: x };
  }

  /**
   * @internal: the inspection of prepared images (`prepare`), the one path every caller takes: the
   * network's inputs (or tiles, of several images together) on the GPU in chunks of `batch` (recorded,
   * then replayed), a tiled image's maps stitched, smoothed by the run's sigma (or `options.sigma`), scored
   * by their maximum, judged by the thresholds of the image's category or the run's.
   */
  async inspectPrepared(images: readonly PreparedImage[], options: InspectOptions = {}): Promise<InspectionResult[]> {
    const S = this.size;
    const per = 3 * S * S;
    const sigma = options.sigma ?? this.sigma;
    const inputs = images.flatMap((p) => p.inputs);
    const maps: Float32Array[] = [];
    const embeddings: Float32Array[] = [];
    for (let i = 0; i < inputs.length; i += this.batch) {
      const chunk = inputs.slice(i, i + this.batch);
      const data = new Float32Array(chunk.length * per);
      chunk.forEach((x, j) => {
        if (x.length !== per) throw new DetectorError(`input ${i + j}: ${x.length} values, a ${S} x ${S} network input has ${per}`);
        data.set(x, j * per);
      });
      const out = await this.maps(data, chunk.length, options.aggregation ?? this.method.aggregation);
      const width = out.embeddings.length / chunk.length;
      for (let j = 0; j < chunk.length; j++) {
        maps.push(out.maps.subarray(j * S * S, (j + 1) * S * S));
        embeddings.push(out.embeddings.subarray(j * width, (j + 1) * width));
      }
    }
    let next = 0;
    return images.map((p) => {
      const own = maps.slice(next, next + p.inputs.length);
      const embedding = meanOf(embeddings.slice(next, next + p.inputs.length));
      next += p.inputs.length;
      const map = p.origins ? stitch(own, p.origins, S, p.width, p.height) : own[0].slice();
      if (sigma > 0) gaussianSmooth(map, 1, p.height, p.width, sigma);
      const r = this.result(map, p.width, p.height, embedding, options.category);
      if (options.keepInput) r.input = p.image;
      return r;
    });
  }

  /** Anomaly maps and embeddings of n network inputs, replayed when this chunk size (and aggregation) was recorded before. */
  private maps(data: Float32Array, n: number, aggregation: MapAggregation): Promise<{ maps: Float32Array; embeddings: Float32Array }> {
    const rt = this.runtime;
    const S = this.size;
    const key = `${n}:${aggregation}`;
    // exclusive: an inspection asked for while a training step (or another inspection) runs waits its turn
    return rt.exclusive(async () => {
      const recorded = this.replay ? this.recorded.use(key) : undefined;
      if (recorded) {
        recorded.recording.replay([[recorded.input, data]]);
        const maps = new Float32Array(await rt.readBuffer(recorded.output, n * S * S * 4));
        return { maps, embeddings: new Float32Array(await rt.readBuffer(recorded.embedding, recorded.embeddingBytes)) };
      }
      let input!: GPUBuffer;
      let output!: GPUBuffer;
      let embedding!: GPUBuffer;
      let embeddingBytes = 0;
      const run = () =>
        rt.tidyAsync(async () => {
          const x = rt.tensor(data, [n, 3, S, S]);
          const r = this.model.inspect(x, aggregation);
          [input, output, embedding, embeddingBytes] = [x.buffer, r.map.buffer, r.embedding.buffer, r.embedding.size * 4];
          return { maps: await r.map.read(), embeddings: await r.embedding.read() };
        });
      if (!this.replay) return run();
      const { result, recording } = await rt.record(run);
      this.recorded.add(key, { recording, input, output, embedding, embeddingBytes, dispose: () => recording.dispose() });
      return result;
    });
  }

  /** The categories with thresholds of their own (empty: the run's one threshold judges every image). */
  get categories(): string[] {
    return Object.keys(this.thresholds?.categories ?? {});
  }

  /** @internal: an inspection judged again, by the thresholds of `category` (its map and embedding unchanged). */
  judged(r: InspectionResult, category?: string): InspectionResult {
    return this.result(r.map, r.width, r.height, r.embedding, category);
  }

  private result(map: Float32Array, width: number, height: number, embedding: Float32Array, given?: string): InspectionResult {
    const score = imageScore(map);
    const { category, categoryFrom, t } = this.judge(embedding, given);
    const base = { score, map, width, height, size: this.size, category, categoryFrom, embedding };
    if (!t) return { ...base, normalized: null, label: null, regions: [] };
    return { ...base, normalized: normalizeScore(score, t), label: score >= t.image ? 'defect' : 'ok', regions: regionsOf(map, width, height, t.pixel) };
  }

  /** The thresholds an image is judged by: its category's (given, or the nearest by embedding), else the run's. */
  private judge(embedding: Float32Array, given?: string): { category: string | null; categoryFrom: 'given' | 'nearest' | null; t: DecisionThresholds | null } {
    const per = this.thresholds?.categories;
    if (given !== undefined) {
      const t = per?.[given];
      if (!t) throw new DetectorError(`no thresholds for category ${JSON.stringify(given)} (${per ? `the run has ${Object.keys(per).join(', ')}` : 'the run has one threshold for all its images'})`);
      return { category: given, categoryFrom: 'given', t };
    }
    const nearest = per ? nearestCategory(embedding, per) : null;
    if (nearest) return { category: nearest, categoryFrom: 'nearest', t: per![nearest] };
    return { category: null, categoryFrom: null, t: this.thresholds };
  }

  /** Frees the model's GPU memory (and the runtime, if the detector made it). */
  dispose(): void {
    this.recorded.clear();
    this.model.dispose();
    this.teacher?.dispose();
    if (this.ownsRuntime) this.runtime.destroy();
  }
}

/** @internal: any ImageInput as 8-bit RGB; errors name the image `name`. */
export function toRgb(img: ImageInput, name: string): RgbImage {
  if (img instanceof Uint8Array || img instanceof ArrayBuffer) return decodeImage(img instanceof ArrayBuffer ? new Uint8Array(img) : img, name);
  const n = img.width * img.height;
  const ch = img.data.length / n;
  if (ch !== 3 && ch !== 4) throw new DetectorError(`${name}: ${img.data.length} values for ${img.width}x${img.height} (expected RGB or RGBA)`);
  if (ch === 3) return { width: img.width, height: img.height, data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length) };
  return { width: img.width, height: img.height, data: pickRgb(img.data, 4, n) };
}

/** The element-wise mean of equal-length vectors (a tiled image's embedding: its tiles' mean). */
function meanOf(vs: readonly Float32Array[]): Float32Array {
  if (vs.length === 1) return vs[0].slice();
  const out = new Float32Array(vs[0].length);
  for (const v of vs) for (let i = 0; i < v.length; i++) out[i] += v[i] / vs.length;
  return out;
}

/** @internal: an image made ready for the network (`Detector.prepare`). */
export interface PreparedImage {
  /** The network's input, or each tile's (tile x tile, normalised CHW). */
  inputs: Float32Array[];
  /** Each tile's origin in the (scaled) image; null when the image was resized to the network's size. */
  origins: Array<[number, number]> | null;
  /** The map's size: the network's, or the (scaled) image's. */
  width: number;
  height: number;
  /** The image as the map sees it, normalised CHW (the network input itself when not tiled). */
  image: Float32Array;
}

/** The category whose centroid is most similar (cosine) to the embedding; null when none has a centroid. */
export function nearestCategory(embedding: ArrayLike<number>, per: Record<string, CategoryThresholds>): string | null {
  let best: string | null = null;
  let bestSim = -Infinity;
  let norm = 0;
  for (let i = 0; i < embedding.length; i++) norm += embedding[i] * embedding[i];
  for (const [name, t] of Object.entries(per)) {
    const c = t.centroid;
    if (!c || c.length !== embedding.length) continue;
    let dot = 0;
    let cn = 0;
    for (let i = 0; i < c.length; i++) [dot, cn] = [dot + c[i] * embedding[i], cn + c[i] * c[i]];
    const sim = dot / Math.sqrt(Math.max(cn * norm, 1e-30));
    if (sim > bestSim) [best, bestSim] = [name, sim];
  }
  return best;
}

function regionsOf(map: Float32Array, W: number, H: number, threshold: number): Region[] {
  const mask = new Uint8Array(W * H);
  for (let p = 0; p < mask.length; p++) mask[p] = map[p] >= threshold ? 1 : 0;
  const { labels, count } = labelComponents(mask, H, W);
  const r = Array.from({ length: count }, () => ({ x0: W, y0: H, x1: -1, y1: -1, area: 0, peak: -Infinity }));
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p];
    if (!l) continue;
    const g = r[l - 1];
    const y = Math.floor(p / W);
    const x = p % W;
    [g.x0, g.y0, g.x1, g.y1] = [Math.min(g.x0, x), Math.min(g.y0, y), Math.max(g.x1, x), Math.max(g.y1, y)];
    g.area++;
    g.peak = Math.max(g.peak, map[p]);
  }
  return r.map((g) => ({ x: g.x0, y: g.y0, width: g.x1 - g.x0 + 1, height: g.y1 - g.y0 + 1, area: g.area, peak: g.peak })).sort((a, b) => b.area - a.area);
}

/** Where a teacher comes from: weight bytes (a file's, a URL's), or the random trunk of a run trained without one. */
export type TeacherSource = { bytes: Uint8Array; name: string } | { randomSeed: number };

/** @internal: a teacher, folded for inference (the one way teachers are opened: loading, training, the app). */
export async function openTeacher(rt: Runtime, source: TeacherSource): Promise<FoldedTrunk> {
  const trunk = 'bytes' in source ? ResNetTrunk.fromStateDict(rt, readStateDict(source.bytes, source.name), source.name, false) : ResNetTrunk.random(rt, source.randomSeed + 7919);
  return FoldedTrunk.fromTrunk(trunk).finally(() => trunk.dispose());
}

/** Browser-safe loading: run and teacher as bytes or URLs (Node's entry also takes folder and file paths). */
export async function loadDetector(o: LoadDetectorOptions): Promise<Detector> {
  const bytes = o.teacher instanceof Uint8Array ? o.teacher : await fetchBytes(o.teacher ?? SHIPPED_TEACHER_URL);
  return detectorFrom(await readRunSource(o.run), { bytes, name: String(o.teacher instanceof Uint8Array ? 'teacher' : (o.teacher ?? 'the shipped teacher')) }, o);
}

/**
 * @internal: the one way a run becomes a detector (both loadDetector()s, the CLI, the service): the
 * teacher checked against the run's fingerprint (unless `force`), the student, the run's thresholds.
 */
export async function detectorFrom(run: RunFiles, teacherSource: TeacherSource, o: Pick<LoadDetectorOptions, 'force' | 'runtime' | 'batch' | 'tiling'>): Promise<Detector> {
  try {
    checkTiling(o.tiling ?? {}, run.config.tiling, run.name);
  } catch (e) {
    throw new DetectorError((e as Error).message);
  }
  const rt = o.runtime ?? (await createDevice());
  try {
    const teacher = await openTeacher(rt, teacherSource);
    const what = 'bytes' in teacherSource ? teacherSource.name : 'the random teacher';
    const problem = await teacherMismatch(rt, teacher, run.config.teacher?.fingerprint);
    if (problem && !o.force) {
      teacher.dispose();
      throw new DetectorError(`${what} is not the teacher ${run.name} was trained with: ${problem}; pass the run's teacher, or force it (--force)`);
    }
    if (problem) console.error(`dcam: WARNING: --force: using ${what} although ${problem}`);
    const student = ResNetTrunk.fromStateDict(rt, readStateDict(run.student, 'student.safetensors'), 'student.safetensors', false);
    return await Detector.create(rt, teacher, student, run.config.method, run.config.size, run.config.thresholds ?? null, { runtime: !o.runtime, teacher: true }, o.batch, run.config.tiling ?? null);
  } catch (e) {
    if (!o.runtime) rt.destroy();
    throw e;
  }
}
