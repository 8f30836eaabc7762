/**
 * Image decoding to 8-bit RGB (PIL's `convert('RGB')`): PNG of any colour type and depth (grayscale is
 * replicated to 3 channels, palette expanded, alpha dropped, 16-bit scaled to 8) via fast-png, and JPEG
 * via jpeg-js. Errors name the file and what is wrong.
 */
import { convertIndexedToRgb, decode as decodePng, hasPngSignature } from 'fast-png';
import jpeg from 'jpeg-js';

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, 8 bits per channel, row-major. */
  data: Uint8Array;
}

export class ImageDecodeError extends Error {}

export function decodeImage(bytes: Uint8Array, file = 'image'): RgbImage {
  if (hasPngSignature(bytes)) return decodePngRgb(bytes, file);
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    try {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.width * img.height * 3) };
    } catch (e) {
      throw new ImageDecodeError(`${file}: corrupt JPEG (${(e as Error).message})`);
    }
  }
  throw new ImageDecodeError(`${file}: not a PNG or JPEG image`);
}

function decodePngRgb(bytes: Uint8Array, file: string): RgbImage {
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new ImageDecodeError(`${file}: corrupt PNG (${(e as Error).message})`);
  }
  const { width, height } = png;
  const n = width * height;
  if (png.palette) {
    const rgb = convertIndexedToRgb(png); // RGB or RGBA, 8-bit
    const ch = rgb.length / n;
    return { width, height, data: pickRgb(rgb, ch, n, (v) => v) };
  }
  const ch = png.channels;
  const depth = png.depth;
  const max = 2 ** depth - 1;
  const to8 = depth === 8 ? (v: number) => v : depth === 16 ? (v: number) => v >> 8 : (v: number) => Math.round((v * 255) / max);
  if (depth < 8) return { width, height, data: pickRgb(unpackBits(png.data, width, height, depth), 1, n, to8) };
  if (png.data.length < n * ch) throw new ImageDecodeError(`${file}: truncated PNG data (${png.data.length} values for ${width}x${height}x${ch})`);
  return { width, height, data: pickRgb(png.data, ch, n, to8) };
}

/** Grayscale rows of 1-, 2- or 4-bit samples (packed, rows padded to a byte) to one value per pixel. */
function unpackBits(src: ArrayLike<number>, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = src[y * rowBytes + (bit >> 3)];
      out[y * width + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

/** RGB from 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels; alpha is dropped as PIL does. */
function pickRgb(src: ArrayLike<number>, ch: number, n: number, to8: (v: number) => number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (ch <= 2) {
      const g = to8(src[i * ch]);
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = g;
    } else {
      out[3 * i] = to8(src[i * ch]);
      out[3 * i + 1] = to8(src[i * ch + 1]);
      out[3 * i + 2] = to8(src[i * ch + 2]);
    }
  }
  return out;
}

/** One-channel 8-bit view of an image (masks): the first channel of the RGB conversion. */
export function decodeGray(bytes: Uint8Array, file = 'mask'): { width: number; height: number; data: Uint8Array } {
  const img = decodeImage(bytes, file);
  const data = new Uint8Array(img.width * img.height);
  for (let i = 0; i < data.length; i++) data[i] = img.data[3 * i];
  return { width: img.width, height: img.height, data };
}
