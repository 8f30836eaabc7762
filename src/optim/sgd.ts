/**
 * torch.optim.SGD: momentum, coupled weight decay (added to the gradient), no dampening, no Nesterov.
 * The momentum buffer starts as the first gradient, as PyTorch's does.
 */
import type { Tensor } from '../graph/tensor.js';
import { sgdUpdate, type SgdHyper } from '../kernels/sgd.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  /** Parameters stepped at their own lr (PyTorch's param groups, lr only); the rest use `lr`. */
  groups?: ReadonlyArray<{ params: readonly Tensor[]; lr: number }>;
}

export class SGD {
  readonly hyper: SgdHyper;
  private readonly velocity = new Map<Tensor, Tensor>();
  /** Updates applied so far (replayed ones included). */
  updates = 0;
  /** Changes when the momentum buffers are replaced (a recorded step that binds them is then stale). */
  stateVersion = 0;

  private readonly groupLr = new Map<Tensor, number>();

  constructor(readonly params: readonly Tensor[], opts: SgdOptions) {
    this.hyper = { lr: opts.lr, momentum: opts.momentum ?? 0, weightDecay: opts.weightDecay ?? 0 };
    for (const g of opts.groups ?? []) {
      for (const p of g.params) {
        if (!params.includes(p)) throw new Error('sgd: a group names a parameter the optimizer does not update');
        this.groupLr.set(p, g.lr);
      }
    }
  }

  /** Updates every parameter that has a gradient. */
  step(): void {
    for (const p of this.params) {
      if (!p.grad) continue;
      let v = this.velocity.get(p);
      const first = !v;
      if (!v) {
        v = p.runtime.empty(p.shape, 'f32', 'sgd momentum buffer').keep();
        this.velocity.set(p, v);
      }
      const lr = this.groupLr.get(p);
      sgdUpdate(p.runtime, p, p.grad, v, lr === undefined ? this.hyper : { ...this.hyper, lr }, first);
    }
    this.updates++;
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Momentum buffers (for checkpoints), in parameter order; null before the first step. */
  state(): Array<Tensor | null> {
    return this.params.map((p) => this.velocity.get(p) ?? null);
  }

  /** Restores momentum buffers saved with `state()` (resuming a run). */
  loadState(buffers: ReadonlyArray<Float32Array | null>): void {
    if (buffers.length !== this.params.length) throw new Error(`sgd: ${buffers.length} momentum buffers for ${this.params.length} parameters`);
    this.stateVersion++;
    this.params.forEach((p, i) => {
      const b = buffers[i];
      this.velocity.get(p)?.dispose();
      this.velocity.delete(p);
      if (b) this.velocity.set(p, p.runtime.tensor(b, p.shape).keep());
    });
  }

  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
    this.stateVersion++;
  }
}
