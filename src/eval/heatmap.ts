/** Heatmap overlays as PNG: a jet colour map of the anomaly map blended over the (resized) image. */
import { encode } from 'fast-png';

function jet(t: number): [number, number, number] {
  const v = Math.max(0, Math.min(1, t));
  const r = Math.max(0, Math.min(1, 1.5 - Math.abs(4 * v - 3)));
  const g = Math.max(0, Math.min(1, 1.5 - Math.abs(4 * v - 2)));
  const b = Math.max(0, Math.min(1, 1.5 - Math.abs(4 * v - 1)));
  return [r * 255, g * 255, b * 255];
}

/** A square side, or a width and height. */
export type Dims = number | { width: number; height: number };
const sides = (d: Dims): [number, number] => (typeof d === 'number' ? [d, d] : [d.width, d.height]);

/**
 * `image`: normalised CHW float32 (ImageNet mean/std), `map`: H*W scores, both of `size` (a square side,
 * or width and height). `lo`/`hi` fix the colour scale (per category, so overlays are comparable);
 * `alpha` is the heatmap's weight. Interleaved RGB bytes.
 */
export function overlayRgb(image: Float32Array, map: ArrayLike<number>, size: Dims, lo: number, hi: number, alpha = 0.5): Uint8Array {
  const span = hi > lo ? hi - lo : 1;
  return overlayScaledRgb(image, map, size, (v) => (v - lo) / span, alpha);
}

/** As `overlayRgb`, with the colour of a map value given by `toUnit` (0 blue .. 0.5 green .. 1 red). */
export function overlayScaledRgb(image: Float32Array, map: ArrayLike<number>, size: Dims, toUnit: (v: number) => number, alpha = 0.5): Uint8Array {
  const [w, h] = sides(size);
  const n = w * h;
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const c = jet(toUnit(map[i]));
    for (let k = 0; k < 3; k++) {
      const px = (image[k * n + i] * std[k] + mean[k]) * 255;
      out[3 * i + k] = Math.max(0, Math.min(255, Math.round((1 - alpha) * px + alpha * c[k])));
    }
  }
  return out;
}

/** The overlay as a PNG file. */
export function overlayPng(image: Float32Array, map: ArrayLike<number>, size: Dims, lo: number, hi: number, alpha = 0.5): Uint8Array {
  const [width, height] = sides(size);
  return encode({ width, height, data: overlayRgb(image, map, size, lo, hi, alpha), channels: 3, depth: 8 });
}

export function overlayScaledPng(image: Float32Array, map: ArrayLike<number>, size: Dims, toUnit: (v: number) => number, alpha = 0.5): Uint8Array {
  const [width, height] = sides(size);
  return encode({ width, height, data: overlayScaledRgb(image, map, size, toUnit, alpha), channels: 3, depth: 8 });
}

/** The image itself (undoing the normalisation), interleaved RGB bytes. */
export function imageRgb(image: Float32Array, size: Dims): Uint8Array {
  const [w, h] = sides(size);
  return overlayRgb(image, new Float32Array(w * h), size, 0, 1, 0);
}
