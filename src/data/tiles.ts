/**
 * Large images by tiles (as anomalib's tiler): an image is cut, at its native resolution or after a chosen
 * downscale, into overlapping square tiles of the network's size; each tile is a training sample, and at
 * inspection the tiles' maps are stitched back into one map at the image's resolution (overlaps averaged),
 * so a defect of a few pixels on a large part is seen at its own scale instead of being resized away.
 */
import { DetectorError } from '../errors.js';
import type { RgbImage } from './image.js';
import { normalizeInto, resizeBilinear } from './resize.js';

/** How a run cuts its images: tiles of `tile` x `tile` pixels every `stride`, after scaling by `scale`. */
export interface Tiling {
  tile: number;
  stride: number;
  /** Downscale factor applied first (1: native resolution). */
  scale: number;
}

/**
 * A tiling refused: its settings ('settings'), an image smaller than a tile ('too-small') or cut into more
 * than MAX_TILES_PER_IMAGE tiles ('too-many'). The service answers 400 for the first two, 413 for the last.
 */
export class TilingError extends DetectorError {
  constructor(message: string, readonly reason: 'settings' | 'too-small' | 'too-many') {
    super(message);
  }
}

/** The image size tiles are cut from: the image scaled by `scale`, rounded. */
export function scaledSize(width: number, height: number, scale: number): [number, number] {
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/**
 * A tiling from its settings, checked: tiles of `tile` every `stride` px (default half a tile) after a
 * downscale by `scale` (default 1). The one place the defaults and the bounds live (train, the package's
 * trainer, a loose student given --tile).
 */
export function makeTiling(tile: number, stride?: number, scale?: number): Tiling {
  const t = { tile, stride: stride ?? Math.max(1, Math.floor(tile / 2)), scale: scale ?? 1 };
  if (!Number.isInteger(t.stride) || t.stride < 1 || t.stride > tile) throw new TilingError(`--stride ${t.stride}: must be an integer from 1 to the tile (${tile})`, 'settings');
  if (!(t.scale > 0 && t.scale <= 1)) throw new TilingError(`--scale ${t.scale}: must be in (0, 1] (a downscale before tiling)`, 'settings');
  return t;
}

/**
 * Tile origins along one side of `length` pixels: every `stride` from 0, and a last tile flush with the
 * far edge (so every pixel is covered and no tile hangs over).
 */
export function tileOrigins(length: number, tile: number, stride: number): number[] {
  if (length < tile) throw new TilingError(`a side of ${length} pixels is shorter than the tile (${tile})`, 'too-small');
  const out: number[] = [];
  for (let o = 0; o + tile < length; o += stride) out.push(o);
  out.push(length - tile);
  return out;
}

/**
 * Most tiles one image may be cut into: every tile of an image is in memory at once (about 4x the scaled
 * image at the default half-tile stride), so a tiny stride on a large image is refused, not run out of memory.
 */
export const MAX_TILES_PER_IMAGE = 4096;

/** The tiles of an image of this size: their origins (x, y), row by row. Throws past MAX_TILES_PER_IMAGE. */
export function tileGrid(width: number, height: number, t: Tiling, name = 'image'): Array<[number, number]> {
  const [W, H] = scaledSize(width, height, t.scale);
  if (W < t.tile || H < t.tile) throw new TilingError(`${name}: ${W}x${H}${t.scale !== 1 ? ` (scaled by ${t.scale})` : ''} is smaller than a tile of ${t.tile}`, 'too-small');
  const xs = tileOrigins(W, t.tile, t.stride);
  const ys = tileOrigins(H, t.tile, t.stride);
  if (xs.length * ys.length > MAX_TILES_PER_IMAGE) {
    throw new TilingError(`${name}: ${W}x${H} makes ${xs.length * ys.length} tiles of ${t.tile} every ${t.stride} px, more than ${MAX_TILES_PER_IMAGE}`, 'too-many');
  }
  return ys.flatMap((y) => xs.map((x) => [x, y] as [number, number]));
}

/** A run's tiling in words, for messages: "tiles of 128 every 64 px (native resolution)". */
export function describeTiling(t: Tiling | null | undefined): string {
  if (!t) return 'no tiles (images resized to the network\'s size)';
  return `tiles of ${t.tile} every ${t.stride} px (${t.scale === 1 ? 'native resolution' : `scaled by ${t.scale}`})`;
}

/**
 * Refuses tiling settings that differ from a run's (eval, infer, serve and the package apply the run's own
 * without being told; a setting given anyway must agree). `given` holds only the settings the user gave.
 */
export function checkTiling(given: { tile?: number; stride?: number; scale?: number }, run: Tiling | null | undefined, what = 'the run'): void {
  const named = (Object.keys(given) as Array<keyof Tiling>).filter((k) => given[k] !== undefined);
  if (named.length === 0) return;
  const wrong = named.filter((k) => !run || run[k] !== given[k]);
  if (wrong.length) {
    throw new TilingError(`${wrong.map((k) => `--${k} ${given[k]}`).join(' ')}: ${what} was trained with ${describeTiling(run)}; leave the tiling out (the run's own is applied)`, 'settings');
  }
}

export interface TiledImage {
  /** The (scaled) image's size: the stitched map's. */
  width: number;
  height: number;
  origins: Array<[number, number]>;
  /** Each tile's network input (ImageNet-normalised CHW, tile x tile). */
  tiles: Float32Array[];
  /** The whole (scaled) image, normalised CHW (for overlays at the image's size). */
  image: Float32Array;
}

/** Cuts an RGB image into its tiles' network inputs. Throws for an image (after scaling) smaller than a tile. */
export function cutTiles(rgb: RgbImage, t: Tiling, name = 'image'): TiledImage {
  const origins = tileGrid(rgb.width, rgb.height, t, name);
  const [W, H] = scaledSize(rgb.width, rgb.height, t.scale);
  const scaled = W === rgb.width && H === rgb.height ? rgb : resizeBilinear(rgb, W, H);
  const image = new Float32Array(3 * W * H);
  normalizeInto(scaled, image, 0);
  const S = t.tile;
  const tiles = origins.map(([x0, y0]) => {
    const tile = new Float32Array(3 * S * S);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < S; y++) tile.set(image.subarray(c * W * H + (y0 + y) * W + x0, c * W * H + (y0 + y) * W + x0 + S), (c * S + y) * S);
    }
    return tile;
  });
  return { width: W, height: H, origins, tiles, image };
}

/** The tiles' maps (tile x tile each) stitched into one width x height map, overlaps averaged. */
export function stitch(maps: readonly Float32Array[], origins: readonly [number, number][], tile: number, width: number, height: number): Float32Array {
  const sum = new Float32Array(width * height);
  const count = new Uint32Array(width * height);
  maps.forEach((m, i) => {
    const [x0, y0] = origins[i];
    for (let y = 0; y < tile; y++) {
      const row = (y0 + y) * width + x0;
      for (let x = 0; x < tile; x++) {
        sum[row + x] += m[y * tile + x];
        count[row + x]++;
      }
    }
  });
  for (let p = 0; p < sum.length; p++) sum[p] /= count[p];
  return sum;
}
