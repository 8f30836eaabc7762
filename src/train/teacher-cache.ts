/**
 * The teacher's features of training batches. The teacher is frozen and training has no augmentation,
 * so an image's features are the same in every epoch: once computed they are kept, on the GPU while
 * its budget lasts, then in host memory while that budget lasts, and only the rest are computed again.
 * From the second epoch on a step then skips the teacher's forward (a quarter to a third of its work).
 *
 * Images are known by a key (their path); a batch without keys (a benchmark's fixed batch) is always
 * computed. The features of a batch whose images are not all kept are computed for the whole batch, so a
 * step sees exactly the values the teacher gives for that image (the per-image result of the teacher's
 * convolutions does not depend on the other images of its batch; only a different algorithm, chosen for
 * a different batch size, rounds differently).
 */
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import type { Features, FoldedTrunk } from '../model/resnet.js';

export interface TeacherCacheBudget {
  /** Bytes of features kept in GPU memory (default 1 GiB). */
  gpuBytes?: number;
  /** Bytes kept in host memory once the GPU budget is spent (default 2 GiB). */
  hostBytes?: number;
}

export const DEFAULT_TEACHER_CACHE: Required<TeacherCacheBudget> = { gpuBytes: 2 ** 30, hostBytes: 2 ** 31 };

/** Where one image's features are kept: a slot of a GPU slab, or a host array (levels one after another). */
type Kept = { slab: Tensor; offset: number } | { host: Float32Array };

export interface TeacherCacheStats {
  /** Images whose features were copied from the cache, and images computed by the teacher. */
  hits: number;
  computed: number;
  /** Images kept on the GPU and in host memory. */
  gpuImages: number;
  hostImages: number;
}

export class TeacherFeatureCache {
  private readonly kept = new Map<string, Kept>();
  private readonly slabs: Tensor[] = [];
  /** Slots used in the last slab. */
  private slotsUsed = 0;
  private gpuBytesUsed = 0;
  private hostBytesUsed = 0;
  private readonly budget: Required<TeacherCacheBudget>;
  readonly stats: TeacherCacheStats = { hits: 0, computed: 0, gpuImages: 0, hostImages: 0 };

  constructor(
    private readonly rt: Runtime,
    private readonly teacher: FoldedTrunk,
    budget: TeacherCacheBudget = {},
  ) {
    this.budget = { ...DEFAULT_TEACHER_CACHE, ...budget };
    for (const [k, v] of Object.entries(this.budget)) {
      if (!(Number.isFinite(v) && v >= 0)) throw new Error(`teacher feature cache: ${k} must be a number of bytes >= 0, got ${v}`);
    }
  }

  /**
   * Writes the teacher's features of batch `x` into `out` (three tensors [B, C_k, H_k, W_k]): copied from
   * the cache when every image of the batch is kept, else computed (and kept, within the budgets).
   */
  async fill(x: Tensor, out: Features, keys?: readonly string[]): Promise<void> {
    const B = x.shape[0];
    if (keys && keys.length !== B) throw new Error(`teacher cache: ${keys.length} keys for a batch of ${B}`);
    const kept = keys?.map((k) => this.kept.get(k));
    if (kept && kept.every((k) => k !== undefined)) {
      this.copyKept(kept as Kept[], out);
      this.stats.hits += B;
      return;
    }
    this.stats.computed += B;
    await this.rt.tidyAsync(async () => {
      const ft = this.teacher.forward(x);
      ft.forEach((f, k) => this.rt.commands.copy(f.buffer, 0, out[k].buffer, 0, f.size * 4, false));
      if (keys) await this.keep(keys, ft);
    });
  }

  /** Frees the GPU slabs and host arrays. */
  dispose(): void {
    for (const s of this.slabs) s.dispose();
    this.slabs.length = 0;
    this.kept.clear();
  }

  private copyKept(kept: readonly Kept[], out: Features): void {
    const levels = out.map((t) => t.size / t.shape[0]);
    kept.forEach((k, i) => {
      let offset = 0;
      levels.forEach((per, level) => {
        const dst = out[level].buffer;
        if ('slab' in k) this.rt.commands.copy(k.slab.buffer, (k.offset + offset) * 4, dst, i * per * 4, per * 4, false);
        else this.rt.writeBuffer(dst, k.host.subarray(offset, offset + per), true, i * per * 4);
        offset += per;
      });
    });
  }

  /** Keeps the features of the batch's images that are not kept yet, on the GPU first, then on the host. */
  private async keep(keys: readonly string[], ft: Features): Promise<void> {
    const levels = ft.map((t) => t.size / t.shape[0]);
    const per = levels.reduce((a, b) => a + b, 0);
    let host: Float32Array[] | null = null;
    for (const [i, key] of keys.entries()) {
      if (this.kept.has(key)) continue;
      const slot = this.gpuSlot(per);
      if (slot) {
        let offset = 0;
        levels.forEach((n, level) => {
          this.rt.commands.copy(ft[level].buffer, i * n * 4, slot.slab.buffer, (slot.offset + offset) * 4, n * 4, false);
          offset += n;
        });
        this.kept.set(key, slot);
        this.stats.gpuImages++;
        continue;
      }
      if (this.hostBytesUsed + per * 4 > this.budget.hostBytes) continue;
      host ??= await Promise.all(ft.map((t) => t.read()));
      const data = new Float32Array(per);
      let offset = 0;
      levels.forEach((n, level) => {
        data.set(host![level].subarray(i * n, (i + 1) * n), offset);
        offset += n;
      });
      this.kept.set(key, { host: data });
      this.hostBytesUsed += per * 4;
      this.stats.hostImages++;
    }
  }

  /** A free slot of `per` floats on the GPU within the budget, in slabs of up to 256 MiB. */
  private gpuSlot(per: number): { slab: Tensor; offset: number } | null {
    let slab = this.slabs[this.slabs.length - 1];
    if (!slab || this.slotsUsed >= slab.size / per) {
      const maxSlab = Math.min(this.rt.limits.maxBufferSize, 2 ** 28);
      // the last slab may be smaller than the others: it holds what is left of the budget
      const slots = Math.min(Math.floor(maxSlab / (per * 4)), Math.floor((this.budget.gpuBytes - this.gpuBytesUsed) / (per * 4)));
      if (slots <= 0) return null;
      slab = this.rt.empty([slots * per], 'f32', 'teacher feature cache').keep();
      this.slabs.push(slab);
      this.gpuBytesUsed += slots * per * 4;
      this.slotsUsed = 0;
    }
    return { slab, offset: this.slotsUsed++ * per };
  }
}
