/**
 * Image decoding to 8-bit RGB, as PIL's `Image.open(f).convert('RGB')`: PNG of any colour type and depth
 * (grayscale replicated to 3 channels, palette expanded, alpha dropped, 16-bit scaled to 8) via fast-png
 * after a structure check (`png.ts`: CRCs, bounded inflation), JPEG via libjpeg-turbo (WebAssembly,
 * bit-identical to PIL: `jpeg.ts`), BMP (`bmp.ts`) and baseline TIFF (`tiff.ts`, strips by utif2). The size
 * is read from the header first and refused above a pixel limit, so a small file that declares a huge
 * image (a decompression bomb) is never decoded; no decoder produces or inflates more than the declared
 * pixels need, and a damaged or truncated file is an error, never a picture. Errors name the file.
 */
import { convertIndexedToRgb, decode as decodePng, hasPngSignature } from 'fast-png';
import { bmpSize, decodeBmp } from './bmp.js';
import { decodeJpegRgba, jpegSize } from './jpeg.js';
import { checkPng } from './png.js';
import { decodeTiffRgba, readTiffDirectory, type TiffDirectory } from './tiff.js';

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, 8 bits per channel, row-major. */
  data: Uint8Array;
}

export class ImageDecodeError extends Error {}
/** An image whose header declares more pixels than `limits.maxPixels` (refused before decoding). */
export class ImageTooLargeError extends ImageDecodeError {}

/** Largest image decoded, in pixels (default 50 megapixels; $DCAM_MAX_PIXELS overrides in Node). */
export const limits = {
  maxPixels: Number((typeof process === 'object' && process.env?.DCAM_MAX_PIXELS) || 50_000_000),
};

function checkSize(file: string, kind: string, width: number, height: number): void {
  if (!(width > 0 && height > 0)) throw new ImageDecodeError(`${file}: ${kind} declares an empty or invalid size ${width}x${height}`);
  if (width * height > limits.maxPixels) {
    throw new ImageTooLargeError(`${file}: ${kind} of ${width}x${height} = ${((width * height) / 1e6).toFixed(1)} megapixels is over the limit of ${(limits.maxPixels / 1e6).toFixed(1)} (DCAM_MAX_PIXELS)`);
  }
}

const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

type Format = 'PNG' | 'JPEG' | 'BMP' | 'TIFF';

const isTiff = (b: Uint8Array) => b.length > 8 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42));

function formatOf(bytes: Uint8Array): Format | null {
  if (hasPngSignature(bytes)) return 'PNG';
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'JPEG';
  if (bytes.length > 26 && bytes[0] === 0x42 && bytes[1] === 0x4d) return 'BMP';
  if (isTiff(bytes)) return 'TIFF';
  return null;
}

/** A format module's error as this module's, naming the file. */
function rethrow(e: unknown, file: string, what: string): never {
  if (e instanceof ImageDecodeError) throw e;
  throw new ImageDecodeError(`${file}: ${what} (${(e as Error).message})`);
}

interface Probe {
  format: Format;
  width: number;
  height: number;
  /** For TIFF: the parsed directory, reused by the decoder. */
  tiff?: TiffDirectory;
}

function probe(bytes: Uint8Array, file: string): Probe {
  const format = formatOf(bytes);
  let found: Omit<Probe, 'format'> | null = null;
  switch (format) {
    case 'PNG':
      if (bytes.length >= 24) found = { width: u32be(bytes, 16), height: u32be(bytes, 20) };
      break;
    case 'JPEG':
      found = jpegSize(bytes);
      break;
    case 'BMP':
      try {
        found = bmpSize(bytes);
      } catch (e) {
        rethrow(e, file, 'corrupt or unsupported BMP');
      }
      break;
    case 'TIFF': {
      try {
        const tiff = readTiffDirectory(bytes);
        found = { width: tiff.width, height: tiff.height, tiff };
      } catch (e) {
        rethrow(e, file, 'corrupt or unsupported TIFF');
      }
      break;
    }
    default:
      throw new ImageDecodeError(`${file}: not a PNG, JPEG, BMP or TIFF image`);
  }
  if (!found) throw new ImageDecodeError(`${file}: corrupt ${format} (no ${format === 'JPEG' ? 'frame header' : 'header'})`);
  checkSize(file, format, found.width, found.height);
  return { format, ...found };
}

/**
 * The format and size from the file's header, without decoding the pixels; throws (naming the file) for
 * a foreign or corrupt header and for an image over the pixel limit.
 */
export function probeImage(bytes: Uint8Array, file = 'image'): { format: Format; width: number; height: number } {
  const { format, width, height } = probe(bytes, file);
  return { format, width, height };
}

export function decodeImage(bytes: Uint8Array, file = 'image'): RgbImage {
  const p = probe(bytes, file);
  switch (p.format) {
    case 'PNG':
      return decodePngRgb(bytes, file);
    case 'JPEG': {
      let img;
      try {
        img = decodeJpegRgba(bytes);
      } catch (e) {
        throw new ImageDecodeError(`${file}: corrupt JPEG (${(e as Error).message})`);
      }
      return { width: img.width, height: img.height, data: pickRgb(img.rgba, 4, img.width * img.height) };
    }
    case 'BMP':
      try {
        return decodeBmp(bytes);
      } catch (e) {
        rethrow(e, file, 'corrupt or unsupported BMP');
      }
    case 'TIFF':
      try {
        return { width: p.width, height: p.height, data: pickRgb(decodeTiffRgba(bytes, p.tiff!), 4, p.width * p.height) };
      } catch (e) {
        rethrow(e, file, 'corrupt or unsupported TIFF');
      }
  }
}

function decodePngRgb(bytes: Uint8Array, file: string): RgbImage {
  let png;
  try {
    checkPng(bytes);
    png = decodePng(bytes);
  } catch (e) {
    throw new ImageDecodeError(`${file}: corrupt PNG (${(e as Error).message})`);
  }
  const { width, height } = png;
  const n = width * height;
  if (png.palette) {
    const rgb = convertIndexedToRgb(png); // RGB or RGBA, 8-bit
    const ch = rgb.length / n;
    return { width, height, data: pickRgb(rgb, ch, n) };
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

/**
 * RGB from 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) interleaved channels; alpha is dropped as PIL
 * does; `to8` maps other bit depths to 8.
 */
export function pickRgb(src: ArrayLike<number>, ch: number, n: number, to8: (v: number) => number = (v) => v): Uint8Array {
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
