/** Optimisation steps, shared by the Node trainer, the browser demo and the benchmark. */
import { backward } from '../autograd/engine.js';
import { RecordingCache, type Recording } from '../graph/recording.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import type { DistillationModel } from '../model/distill.js';
import { FEATURE_LEVELS, type Features } from '../model/resnet.js';
import type { SGD } from '../optim/sgd.js';
import { TeacherFeatureCache, type TeacherCacheBudget } from './teacher-cache.js';

export interface TrainStepperOptions {
  /** Replay recorded steps (default true); false runs every step through autograd (profiling, tests). */
  replay?: boolean;
  /** Budgets for keeping the teacher's features of keyed images (train/teacher-cache.ts); 0 and 0 computes them every step. */
  teacherCache?: TeacherCacheBudget;
}

/** A step's inputs, written before it runs: the batch, and the teacher's features of it. */
interface StepInputs {
  x: Tensor;
  teacher: Features;
}

interface RecordedStep {
  recording: Recording;
  inputs: StepInputs;
  outputs: Array<[string, GPUBuffer]>;
  /** What one step adds to each student BN's num_batches_tracked (host state a replay must redo). */
  tracked: number[];
  dispose(): void;
}

/**
 * The method's loss on an NCHW batch (normalised images), backward, one SGD update; each step resolves
 * with the loss and each weighted term, read back (so the step has finished on the GPU).
 *
 * A step is the same dispatches on the same buffers every time, so the stepper records the second step
 * of a batch shape (the first creates the momentum buffers) and replays it from then on: the GPU work is
 * identical, the host work per step drops from autograd and ~270 kernel launches to re-encoding them
 * (DESIGN.md, "Runtime": recordings). The two most recently used batch shapes stay recorded; new momentum
 * buffers (a resumed run) drop every recording. The teacher's features are an input of the step, written
 * before it runs by the teacher feature cache: for images given by key, computed once and kept.
 */
export class TrainStepper {
  /** By batch shape: two, a run's full batches and the last, smaller batch of each epoch. */
  private readonly recorded = new RecordingCache<string, RecordedStep>(2);
  /** The optimiser state the recordings bind (`SGD.stateVersion`). */
  private stateVersion: number;
  readonly teacherFeatures: TeacherFeatureCache;

  constructor(
    private readonly rt: Runtime,
    private readonly model: DistillationModel,
    private readonly opt: SGD,
    private readonly options: TrainStepperOptions = {},
  ) {
    this.stateVersion = opt.stateVersion;
    this.teacherFeatures = new TeacherFeatureCache(rt, model.teacher, options.teacherCache);
  }

  /** True when the next step of this shape is a replay. */
  willReplay(batch: number, size: number): boolean {
    return this.opt.stateVersion === this.stateVersion && this.recorded.has(`${batch}x${size}`);
  }

  /**
   * One step on `batch` images of `size` x `size`; `keys` names the images (their paths), so that their
   * teacher features are computed once and kept for the next epochs.
   */
  step(data: Float32Array, batch: number, size: number, keys?: readonly string[]): Promise<Record<string, number>> {
    return this.rt.exclusive(async () => {
      if (this.opt.stateVersion !== this.stateVersion) {
        this.recorded.clear();
        this.stateVersion = this.opt.stateVersion;
      }
      const key = `${batch}x${size}`;
      const recorded = this.recorded.use(key);
      if (recorded) {
        await this.writeInputs(recorded.inputs, data, keys);
        return this.replay(recorded);
      }
      const inputs = this.stepInputs(batch, size);
      let kept = false;
      try {
        await this.writeInputs(inputs, data, keys);
        // the first update creates the momentum buffers (a different kernel): record the one after it
        if (this.options.replay === false || this.opt.updates === 0) return (await this.run(inputs)).values;
        const bns = this.model.student.batchNormLayers();
        const before = bns.map((b) => b.batchesTracked);
        const { result, recording } = await this.rt.record(() => this.run(inputs));
        const tracked = bns.map((b, i) => b.batchesTracked - before[i]);
        this.recorded.add(key, { recording, inputs, outputs: result.outputs, tracked, dispose: () => (recording.dispose(), freeInputs(inputs)) });
        kept = true;
        return result.values;
      } finally {
        if (!kept) freeInputs(inputs);
      }
    });
  }

  /** Frees the recordings (their reserved buffers go back to the pool) and the kept teacher features. */
  dispose(): void {
    this.recorded.clear();
    this.teacherFeatures.dispose();
  }

  /** Input tensors for a batch shape, kept outside any scope (a recording binds them). */
  private stepInputs(batch: number, size: number): StepInputs {
    const rt = this.rt;
    if (size % 16 !== 0) throw new Error(`training step: the size must be a multiple of 16, got ${size}`);
    const x = rt.empty([batch, 3, size, size], 'f32', 'step input').keep();
    const teacher = FEATURE_LEVELS.map((l) => rt.empty([batch, l.channels, size / l.stride, size / l.stride], 'f32', 'step teacher features').keep()) as Features;
    return { x, teacher };
  }

  private async writeInputs(inputs: StepInputs, data: Float32Array, keys?: readonly string[]): Promise<void> {
    this.rt.writeBuffer(inputs.x.buffer, data);
    await this.teacherFeatures.fill(inputs.x, inputs.teacher, keys);
  }

  private async run(inputs: StepInputs) {
    const { rt, model, opt } = this;
    let outputs!: Array<[string, GPUBuffer]>;
    const values = await rt.tidyAsync(async () => {
      const { loss, terms } = model.trainLoss(inputs.x, inputs.teacher);
      backward(loss);
      opt.step();
      opt.zeroGrad();
      const named: Array<[string, Tensor]> = [['loss', loss], ...Object.entries(terms)];
      outputs = named.map(([k, t]) => [k, t.buffer]);
      const out: Record<string, number> = {};
      for (const [k, t] of named) out[k] = await t.item();
      return out;
    });
    return { values, outputs };
  }

  private async replay(r: RecordedStep): Promise<Record<string, number>> {
    r.recording.replay();
    this.opt.updates++;
    this.model.student.batchNormLayers().forEach((b, i) => (b.batchesTracked += r.tracked[i]));
    const out: Record<string, number> = {};
    for (const [k, buffer] of r.outputs) out[k] = new Float32Array(await this.rt.readBuffer(buffer, 4))[0];
    return out;
  }
}

const freeInputs = (inputs: StepInputs) => [inputs.x, ...inputs.teacher].forEach((t) => t.dispose());

/** One step through autograd, no recording (a single step; `TrainStepper` for a training loop). */
export async function trainStep(rt: Runtime, model: DistillationModel, opt: SGD, data: Float32Array, batch: number, size: number): Promise<Record<string, number>> {
  const stepper = new TrainStepper(rt, model, opt, { replay: false });
  try {
    return await stepper.step(data, batch, size);
  } finally {
    stepper.dispose();
  }
}
