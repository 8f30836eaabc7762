/**
 * Resizing as PIL does it (`Image.resize(size, Image.BILINEAR)`, Pillow's ImagingResample): a separable
 * triangle filter whose support grows with the downscale factor (antialiased), fixed-point coefficients
 * (22 fraction bits) and rounding to 8 bits after each pass, horizontal pass first. Matching PIL bit for
 * bit keeps the inputs identical to the PyTorch pipelines the method was published with.
 */
import type { RgbImage } from './image.js';

const PRECISION_BITS = 32 - 8 - 2;

interface Coefficients {
  /** First input index for each output index. */
  start: Int32Array;
  /** Number of taps for each output index. */
  count: Int32Array;
  /** Fixed-point weights, `kmax` per output index. */
  weights: Int32Array;
  kmax: number;
}

function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale; // bilinear (triangle) filter support is 1
  const kmax = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * kmax);
  const k = new Float64Array(kmax);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      // Pillow: (int)(0.5 + w * (1 << PRECISION_BITS)) for w >= 0, (int)(-0.5 + ...) otherwise
      weights[xx * kmax + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, kmax };
}

function clip8(v: number): number {
  const r = Math.floor(v / (1 << PRECISION_BITS)); // arithmetic shift of a value that may exceed 2^31
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** Resamples along one axis of an interleaved 3-channel image. */
function pass(src: Uint8Array, w: number, h: number, outLen: number, horizontal: boolean): Uint8Array {
  const c = coefficients(horizontal ? w : h, outLen);
  const ow = horizontal ? outLen : w;
  const oh = horizontal ? h : outLen;
  const out = new Uint8Array(ow * oh * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = horizontal ? x : y;
      const base = o * c.kmax;
      const s0 = c.start[o];
      for (let ch = 0; ch < 3; ch++) {
        let ss = half;
        for (let t = 0; t < c.count[o]; t++) {
          const idx = horizontal ? (y * w + s0 + t) * 3 + ch : ((s0 + t) * w + x) * 3 + ch;
          ss += src[idx] * c.weights[base + t];
        }
        out[(y * ow + x) * 3 + ch] = clip8(ss);
      }
    }
  }
  return out;
}

/** PIL-exact bilinear resize; an image already at the target size is returned unchanged. */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  let data = img.data;
  let w = img.width;
  let h = img.height;
  if (w !== width) {
    data = pass(data, w, h, width, true);
    w = width;
  }
  if (h !== height) {
    data = pass(data, w, h, height, false);
    h = height;
  }
  return { width: w, height: h, data };
}

/** Nearest-neighbour resize of a one-channel mask (PIL NEAREST: source index floor((i + 0.5) * scale)). */
export function resizeNearest(mask: { width: number; height: number; data: Uint8Array }, width: number, height: number): Uint8Array {
  if (mask.width === width && mask.height === height) return mask.data;
  const out = new Uint8Array(width * height);
  const sx = mask.width / width;
  const sy = mask.height / height;
  for (let y = 0; y < height; y++) {
    const iy = Math.min(Math.floor((y + 0.5) * sy), mask.height - 1);
    for (let x = 0; x < width; x++) {
      const ix = Math.min(Math.floor((x + 0.5) * sx), mask.width - 1);
      out[y * width + x] = mask.data[iy * mask.width + ix];
    }
  }
  return out;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** RGB bytes -> CHW float32, /255, ImageNet mean and std, written into `out` at `offset`. */
export function normalizeInto(img: RgbImage, out: Float32Array, offset: number): void {
  const n = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    const m = IMAGENET_MEAN[c];
    const s = IMAGENET_STD[c];
    for (let i = 0; i < n; i++) out[offset + c * n + i] = (img.data[3 * i + c] / 255 - m) / s;
  }
}

/** An image as network input: resized to size x size (PIL's bilinear; unchanged at that size), normalised. */
export function toInput(img: RgbImage, size: number, out = new Float32Array(3 * size * size), offset = 0): Float32Array {
  normalizeInto(resizeBilinear(img, size, size), out, offset);
  return out;
}
