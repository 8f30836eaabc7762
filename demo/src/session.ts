/**
 * The demo's engine side, free of DOM code, written against the package's public API only (`dcam-webgpu`,
 * which Vite maps to the repository's src/index.ts): one WebGPU runtime; a teacher; a Detector (a loaded
 * run, or the student trained here); few-shot training with stop/continue (FewShotTrainer); export of the
 * trained model as a run folder (zip) that `dcam infer --run` accepts.
 */
import { zipSync } from 'fflate';
import {
  createDevice, DetectorError, FewShotTrainer, loadDetector, SHIPPED_TEACHER_URL as shippedTeacherUrl,
  type Detector, type ImageInput, type Runtime, type Thresholds, type TrainProgress,
} from 'dcam-webgpu';

/** The ImageNet teacher that ships with the package (served with the page): the default. */
export const SHIPPED_TEACHER_URL = shippedTeacherUrl.href;

export class DemoError extends Error {}

export interface Inspection {
  name: string;
  score: number;
  /** width x height anomaly map (the network's size, or the image's for a tiled run). */
  map: Float32Array;
  /** The image as the map sees it (normalised CHW, width x height), for drawing. */
  input: Float32Array;
  width: number;
  height: number;
  /** The network's input size. */
  size: number;
  /** Map computation, upload to read-back, in ms. */
  ms: number;
  /** With the run's thresholds: the verdict and the score normalised to [0, 1] (threshold at 0.5). */
  label: 'ok' | 'defect' | null;
  normalized: number | null;
}

export interface TrainOptions {
  method: 'stfpm' | 'dcam';
  size: number;
  batch: number;
  epochs: number;
  lr?: number;
  seed?: number;
}

export type StepReport = TrainProgress;

/** Library errors the page shows as they are (bad files, wrong teacher, NaN loss). */
const userFacing = (e: unknown) => e instanceof DetectorError || (e instanceof Error && /^(image|teacher|student|config|run)\b|: (corrupt|not a|truncated)/.test(e.message));

export class DemoSession {
  private teacher: { bytes: Uint8Array; name: string } | null = null;
  private detector: Detector | null = null;
  private runFiles: Map<string, Uint8Array> | null = null;
  private trainer: FewShotTrainer | null = null;
  private abort: AbortController | null = null;
  modelSource = '';

  private constructor(readonly rt: Runtime) {}

  /** Throws a DemoError with instructions when the browser has no WebGPU. */
  static async create(): Promise<DemoSession> {
    if (!('gpu' in navigator) || !navigator.gpu) {
      throw new DemoError('This browser has no WebGPU. Use a recent Chrome or Edge (on by default), or enable it: chrome://flags/#enable-unsafe-webgpu; in Firefox, dom.webgpu.enabled in about:config; in Safari, Develop > Feature Flags > WebGPU.');
    }
    return new DemoSession(await createDevice());
  }

  get adapter(): string {
    const a = this.rt.adapter;
    return `${a.vendor} ${a.architecture} ${a.description}`.trim() + (a.isSoftware ? ' (software)' : '');
  }

  get hasTeacher(): boolean {
    return this.teacher !== null;
  }

  get hasModel(): boolean {
    return this.detector !== null;
  }

  get size(): number {
    return this.detector?.size ?? 256;
  }

  /** The loaded run's decision thresholds (null for a model trained here, or a run never evaluated). */
  get thresholds(): Thresholds | null {
    return this.detector?.thresholds ?? null;
  }

  get isTraining(): boolean {
    return this.trainer?.isRunning ?? false;
  }

  /** Steps done and planned of the current training (null when the model was not trained here). */
  get trainingProgress(): { step: number; totalSteps: number } | null {
    return this.trainer ? { step: this.trainer.step, totalSteps: this.trainer.totalSteps } : null;
  }

  get losses(): readonly number[] {
    return this.trainer?.losses ?? [];
  }

  /** Live GPU bytes held by the engine (shows that replaced models are released). */
  gpuBytes(): number {
    return this.rt.memory().liveBytes;
  }

  /** The teacher for the next run loaded or trained here (a loaded run is reloaded with it). */
  async loadTeacher(bytes: Uint8Array, name: string): Promise<void> {
    const previous = this.teacher;
    this.teacher = { bytes, name };
    if (this.runFiles) {
      try {
        await this.loadRun(this.runFiles);
      } catch (e) {
        this.teacher = previous;
        throw e;
      }
    }
  }

  /** A run from `dcam train`: config.json and student.safetensors, as loose files or one zip. */
  async loadRun(files: Map<string, Uint8Array>): Promise<void> {
    if (!this.teacher) throw new DemoError('load a teacher first: the run needs the ImageNet ResNet18 it was trained with');
    let detector: Detector;
    try {
      detector = await loadDetector({ run: files, teacher: this.teacher.bytes, runtime: this.rt });
    } catch (e) {
      if (userFacing(e)) throw new DemoError((e as Error).message.replace('the shipped teacher', this.teacher.name));
      throw e;
    }
    this.releaseModel();
    this.detector = detector;
    this.runFiles = files;
    const t = detector.thresholds;
    this.modelSource = `run (${detector.method.method}, ${detector.size}px${t ? `, threshold ${t.image.toPrecision(4)}` : ', no thresholds'})`;
  }

  async inspect(bytes: Uint8Array, name: string): Promise<Inspection> {
    return this.inspectImage(bytes, name);
  }

  /** An RGBA frame (webcam, canvas). */
  async inspectFrame(rgba: Uint8ClampedArray, width: number, height: number, name: string): Promise<Inspection> {
    return this.inspectImage({ width, height, data: rgba }, name);
  }

  private async inspectImage(image: ImageInput, name: string): Promise<Inspection> {
    const det = this.detector;
    if (!det) throw new DemoError('no model yet: load a trained run, or train one on a few good images');
    const t0 = performance.now();
    let r;
    try {
      r = await det.inspect(image, { keepInput: true });
    } catch (e) {
      if (userFacing(e)) throw new DemoError(`${name}: not an image this demo can read (PNG, JPEG, BMP or TIFF): ${(e as Error).message}`);
      throw e;
    }
    return { name, score: r.score, map: r.map, input: r.input!, width: r.width, height: r.height, size: r.size, ms: performance.now() - t0, label: r.label, normalized: r.normalized };
  }

  /**
   * Starts few-shot training on good images (replacing the current model), or continues a stopped one
   * when `images` is null. `onStep` runs after every step; resolves when done or stopped.
   */
  async train(images: Array<{ name: string; bytes: Uint8Array }> | null, options: TrainOptions | null, onStep: (r: StepReport) => void): Promise<void> {
    if (!this.teacher) throw new DemoError('load a teacher first: the student learns to match the ImageNet ResNet18');
    if (images) {
      if (images.length === 0) throw new DemoError('drop a few good images (5 to 50) to train on');
      let trainer: FewShotTrainer;
      try {
        trainer = await FewShotTrainer.create({ ...options!, images: images.map((i) => i.bytes), teacher: this.teacher.bytes, runtime: this.rt });
      } catch (e) {
        if (userFacing(e)) throw new DemoError((e as Error).message);
        throw e;
      }
      this.releaseModel();
      this.trainer = trainer;
      this.modelSource = `trained here (${options!.method}, ${options!.size}px, ${images.length} images)`;
    }
    const trainer = this.trainer;
    if (!trainer) throw new DemoError('nothing to continue: start a training first');
    if (trainer.isRunning) throw new DemoError('training is already running');
    this.abort = new AbortController();
    try {
      await trainer.run({ onProgress: onStep, signal: this.abort.signal });
    } catch (e) {
      if (e instanceof DetectorError) throw new DemoError(e.message);
      throw e;
    } finally {
      this.detector?.dispose();
      this.detector = await trainer.detector(); // what is trained so far, stopped or done
    }
  }

  stop(): void {
    this.abort?.abort();
  }

  /** The trained model as a run folder (zip): config.json, student.safetensors, attention.safetensors. */
  async exportRun(): Promise<Uint8Array> {
    if (!this.trainer) throw new DemoError('train a model here first: loaded runs are already on disk');
    const files = await this.trainer.runFiles();
    return zipSync(Object.fromEntries([...files].map(([name, bytes]) => [`run/${name}`, bytes])));
  }

  /** Frees the current model's GPU memory (the runtime stays). */
  private releaseModel(): void {
    this.detector?.dispose();
    this.detector = null;
    this.trainer?.dispose();
    this.trainer = null;
    this.runFiles = null;
  }

  destroy(): void {
    this.releaseModel();
    this.rt.destroy();
  }
}
