/** Optimisation steps, shared by the Node trainer, the browser demo and the benchmark. */
import { backward } from '../autograd/engine.js';
import { RecordingCache, type Recording } from '../graph/recording.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import type { DistillationModel } from '../model/distill.js';
import type { SGD } from '../optim/sgd.js';

export interface TrainStepperOptions {
  /** Replay recorded steps (default true); false runs every step through autograd (profiling, tests). */
  replay?: boolean;
}

interface RecordedStep {
  recording: Recording;
  input: GPUBuffer;
  outputs: Array<[string, GPUBuffer]>;
  /** What one step adds to each student BN's num_batches_tracked (host state a replay must redo). */
  tracked: number[];
}

/**
 * The method's loss on an NCHW batch (normalised images), backward, one SGD update; each step resolves
 * with the loss and each weighted term, read back (so the step has finished on the GPU).
 *
 * A step is the same dispatches on the same buffers every time, so the stepper records the second step
 * of a batch shape (the first creates the momentum buffers) and replays it from then on: the GPU work is
 * identical, the host work per step drops from autograd and ~270 kernel launches to re-encoding them
 * (DESIGN.md, "Recorded steps"). The two most recently used batch shapes stay recorded; new momentum
 * buffers (a resumed run) drop every recording.
 */
export class TrainStepper {
  /** By batch shape: two, a run's full batches and the last, smaller batch of each epoch. */
  private readonly recorded = new RecordingCache<string, RecordedStep>(2);
  /** The optimiser state the recordings bind (`SGD.stateVersion`). */
  private stateVersion: number;

  constructor(
    private readonly rt: Runtime,
    private readonly model: DistillationModel,
    private readonly opt: SGD,
    private readonly options: TrainStepperOptions = {},
  ) {
    this.stateVersion = opt.stateVersion;
  }

  /** True when the next step of this shape is a replay. */
  willReplay(batch: number, size: number): boolean {
    return this.opt.stateVersion === this.stateVersion && this.recorded.has(`${batch}x${size}`);
  }

  step(data: Float32Array, batch: number, size: number): Promise<Record<string, number>> {
    return this.rt.exclusive(async () => {
      if (this.opt.stateVersion !== this.stateVersion) {
        this.dispose();
        this.stateVersion = this.opt.stateVersion;
      }
      const key = `${batch}x${size}`;
      const recorded = this.recorded.use(key);
      if (recorded) return this.replay(recorded, data);
      // the first update creates the momentum buffers (a different kernel): record the one after it
      if (this.options.replay === false || this.opt.updates === 0) return (await this.run(data, batch, size)).values;
      const bns = this.model.student.batchNormLayers();
      const before = bns.map((b) => b.batchesTracked);
      const { result, recording } = await this.rt.capture(() => this.run(data, batch, size));
      this.recorded.add(key, { recording, input: result.input, outputs: result.outputs, tracked: bns.map((b, i) => b.batchesTracked - before[i]) });
      return result.values;
    });
  }

  /** Frees the recordings (their reserved buffers go back to the pool). */
  dispose(): void {
    this.recorded.clear();
  }

  private async run(data: Float32Array, batch: number, size: number) {
    const { rt, model, opt } = this;
    let input!: GPUBuffer;
    let outputs!: Array<[string, GPUBuffer]>;
    const values = await rt.tidyAsync(async () => {
      const x = rt.tensor(data, [batch, 3, size, size]);
      const { loss, terms } = model.trainLoss(x);
      backward(loss);
      opt.step();
      opt.zeroGrad();
      const named: Array<[string, Tensor]> = [['loss', loss], ...Object.entries(terms)];
      input = x.buffer;
      outputs = named.map(([k, t]) => [k, t.buffer]);
      const out: Record<string, number> = {};
      for (const [k, t] of named) out[k] = await t.item();
      return out;
    });
    return { values, input, outputs };
  }

  private async replay(r: RecordedStep, data: Float32Array): Promise<Record<string, number>> {
    r.recording.replay([[r.input, data]]);
    this.opt.updates++;
    this.model.student.batchNormLayers().forEach((b, i) => (b.batchesTracked += r.tracked[i]));
    const out: Record<string, number> = {};
    for (const [k, buffer] of r.outputs) out[k] = new Float32Array(await this.rt.readBuffer(buffer, 4))[0];
    return out;
  }
}

/** One step through autograd, no recording (a single step; `TrainStepper` for a training loop). */
export function trainStep(rt: Runtime, model: DistillationModel, opt: SGD, data: Float32Array, batch: number, size: number): Promise<Record<string, number>> {
  return new TrainStepper(rt, model, opt, { replay: false }).step(data, batch, size);
}
