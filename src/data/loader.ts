/**
 * Training batches: shuffled (seeded) or in sorted order, decoded and resized one batch ahead. The next
 * batch is prepared in a macrotask right after the current one is handed out, so the CPU decodes while the
 * GPU runs the step that was just submitted. Prepared images are kept (up to a memory budget), so from the
 * second epoch on a fast GPU no longer waits for PNG decoding and resizing of full-size images.
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
  /** Bytes of prepared images to keep between epochs (default 2 GiB; 0 = decode every time). */
  cacheBytes?: number;
  /**
   * Categories' images, for balanced sampling: each epoch (as many images as `paths`) takes the
   * categories in turn, so every batch holds them in equal shares; a smaller category's images are
   * repeated within the epoch, a larger one's are not all seen every epoch (each category cycles
   * through a seeded permutation of its own, continued across epochs).
   */
  balanced?: readonly (readonly string[])[];
  /**
   * How a sample is made from its key (default: the key is an image's path, decoded and resized to
   * `size`). It may return the samples of the key's whole image at once (a tiled image's tiles, keyed
   * `path#k`): they are all kept, within the memory budget, for the batches that will want them.
   */
  load?: (key: string) => Map<string, Float32Array>;
}

const DEFAULT_CACHE_BYTES = 2 ** 31;

export class BatchLoader {
  private readonly perEpoch: number;
  private readonly cache = new Map<string, Float32Array>();
  private cachedBytes = 0;
  /** Images taken from the cache and images decoded (for tests and logs). */
  readonly cacheStats = { hits: 0, misses: 0 };

  constructor(readonly paths: readonly string[], readonly opts: LoaderOptions) {
    if (paths.length === 0) throw new Error('no training images');
    this.perEpoch = opts.dropLast ? Math.floor(paths.length / opts.batch) : Math.ceil(paths.length / opts.batch);
  }

  get batchesPerEpoch(): number {
    return this.perEpoch;
  }

  /** The image order of an epoch (a seeded permutation per epoch, so resuming reproduces it). */
  order(epoch: number): string[] {
    if (this.opts.balanced) return this.balancedOrder(epoch);
    const list = [...this.paths];
    if (!this.opts.shuffle) return list;
    return new Rng(this.opts.seed * 1_000_003 + epoch).shuffle(list);
  }

  /** Round robin over the categories; each category's k-th draw is entry k of its endless permutation. */
  private balancedOrder(epoch: number): string[] {
    const groups = this.opts.balanced!.filter((g) => g.length > 0);
    const n = this.paths.length;
    const out: string[] = [];
    const first = epoch * Math.ceil(n / groups.length); // draws per category in the epochs before
    // Each (category, cycle) permutation is made once per call, not once per draw.
    const cycles = groups.map(() => new Map<number, string[]>());
    for (let i = 0; i < n; i++) {
      const gi = i % groups.length;
      const g = groups[gi];
      const k = first + Math.floor(i / groups.length);
      const c = Math.floor(k / g.length);
      let perm = cycles[gi].get(c);
      if (!perm) cycles[gi].set(c, (perm = this.cycleOf(g, c)));
      out.push(perm[k % g.length]);
    }
    return out;
  }

  /** Pass `cycle` over a category's images: a seeded permutation (or sorted order without shuffle). */
  private cycleOf(group: readonly string[], cycle: number): string[] {
    const list = [...group].sort();
    if (!this.opts.shuffle) return list;
    return new Rng(this.opts.seed * 1_000_003 + 7919 * cycle + list.length).shuffle(list);
  }

  load(epoch: number, index: number): Batch {
    const order = this.order(epoch);
    const paths = order.slice(index * this.opts.batch, (index + 1) * this.opts.batch);
    const S = this.opts.size;
    const per = 3 * S * S;
    const data = new Float32Array(paths.length * per);
    paths.forEach((p, i) => data.set(this.image(p), i * per));
    return { data, paths, epoch, index };
  }

  private image(key: string): Float32Array {
    const hit = this.cache.get(key);
    if (hit) {
      this.cacheStats.hits++;
      return hit;
    }
    this.cacheStats.misses++;
    const made = this.opts.load ? this.opts.load(key) : new Map([[key, loadImage(key, this.opts.size)]]);
    const img = made.get(key);
    if (!img) throw new Error(`loader: no sample ${key}`);
    for (const [k, v] of made) {
      if (this.cachedBytes + v.byteLength > (this.opts.cacheBytes ?? DEFAULT_CACHE_BYTES)) break;
      if (this.cache.has(k)) continue;
      this.cache.set(k, v);
      this.cachedBytes += v.byteLength;
    }
    return img;
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
