/**
 * Training batches: shuffled (seeded) or in sorted order, decoded and resized one batch ahead. The next
 * batch is prepared in a macrotask right after the current one is handed out, so the CPU decodes while the
 * GPU runs the step that was just submitted.
 */
import { Rng } from '../nn/init.js';
import { loadImage } from './mvtec.js';

export interface Batch {
  /** [B, 3, S, S] normalised images. */
  data: Float32Array;
  paths: string[];
  epoch: number;
  /** Index of the batch within its epoch. */
  index: number;
}

export interface LoaderOptions {
  batch: number;
  size: number;
  shuffle: boolean;
  seed: number;
  /** Drop a last, smaller batch (never, by default, as the DCAM code: drop_last=False). */
  dropLast?: boolean;
}

export class BatchLoader {
  private readonly perEpoch: number;

  constructor(readonly paths: readonly string[], readonly opts: LoaderOptions) {
    if (paths.length === 0) throw new Error('no training images');
    this.perEpoch = opts.dropLast ? Math.floor(paths.length / opts.batch) : Math.ceil(paths.length / opts.batch);
  }

  get batchesPerEpoch(): number {
    return this.perEpoch;
  }

  /** The image order of an epoch (a seeded permutation per epoch, so resuming reproduces it). */
  order(epoch: number): string[] {
    const list = [...this.paths];
    if (!this.opts.shuffle) return list;
    const rng = new Rng(this.opts.seed * 1_000_003 + epoch);
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [list[i], list[j]] = [list[j], list[i]];
    }
    return list;
  }

  load(epoch: number, index: number): Batch {
    const order = this.order(epoch);
    const paths = order.slice(index * this.opts.batch, (index + 1) * this.opts.batch);
    const S = this.opts.size;
    const data = new Float32Array(paths.length * 3 * S * S);
    paths.forEach((p, i) => loadImage(p, S, data, i * 3 * S * S));
    return { data, paths, epoch, index };
  }

  /** Batches from (startEpoch, startIndex) on, each prepared while the previous one is being used. */
  async *batches(startEpoch = 0, startIndex = 0): AsyncGenerator<Batch> {
    let epoch = startEpoch;
    let index = startIndex;
    const advance = () => {
      if (++index >= this.perEpoch) {
        index = 0;
        epoch++;
      }
    };
    let next = this.load(epoch, index);
    for (;;) {
      const current = next;
      advance();
      const e = epoch;
      const i = index;
      const pending = new Promise<Batch>((resolve, reject) => setImmediate(() => {
        try {
          resolve(this.load(e, i));
        } catch (err) {
          reject(err);
        }
      }));
      pending.catch(() => {}); // surfaced when awaited
      yield current;
      next = await pending;
    }
  }
}
