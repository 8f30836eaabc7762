/**
 * PNG structure check before decoding (the PNG specification, ISO/IEC 15948): every chunk inside the
 * file with a valid type and CRC-32, IHDR first with a legal depth and colour type, PLTE where a palette
 * is needed, the IDAT chunks together, IEND present, no unknown critical chunk, and the image data
 * inflating to exactly the bytes its rows need (bounded: a stream that would inflate further is stopped
 * there). fast-png, which decodes the pixels afterwards, checks none of this (no CRCs, no size bound).
 */
import { checkInflatesTo, crc32, InflateError } from './inflate.js';

export interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

export class PngError extends Error {}

const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

/** Samples per pixel and legal bit depths of each colour type. */
const COLOR_TYPES: Record<number, { channels: number; depths: number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

/** Adam7's passes: first column and row, then steps. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** Bytes of filtered image data (a filter byte per row) that an image of this header inflates to. */
export function pngDataBytes(h: PngHeader): number {
  const bits = h.depth * COLOR_TYPES[h.colorType].channels;
  const rows = (w: number, n: number) => (w > 0 && n > 0 ? n * (1 + Math.ceil((w * bits) / 8)) : 0);
  if (!h.interlaced) return rows(h.width, h.height);
  return ADAM7.reduce((sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((h.width - x0) / dx), Math.ceil((h.height - y0) / dy)), 0);
}

/**
 * Checks the file's structure and image data; returns its header. Throws PngError (without the file's
 * name: the caller adds it) at the first problem.
 */
export function checkPng(bytes: Uint8Array): PngHeader {
  let header: PngHeader | null = null;
  let palette = false;
  const idat: Uint8Array[] = [];
  let idatClosed = false;
  let pos = 8;
  for (;;) {
    if (pos + 8 > bytes.length) throw new PngError(header ? 'truncated (the file ends before its IEND chunk)' : 'truncated (no IHDR chunk)');
    const length = u32be(bytes, pos);
    const typeBytes = bytes.subarray(pos + 4, pos + 8);
    const type = String.fromCharCode(...typeBytes);
    if (!/^[A-Za-z]{4}$/.test(type)) throw new PngError(`invalid chunk type ${JSON.stringify(type)} at byte ${pos + 4}`);
    if (length > 0x7fffffff || pos + 12 + length > bytes.length) throw new PngError(`truncated (chunk ${type} at byte ${pos} declares ${length} bytes; the file ends first)`);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (crc32(data, crc32(typeBytes)) !== u32be(bytes, pos + 8 + length)) throw new PngError(`chunk ${type} at byte ${pos} fails its CRC check (damaged file)`);
    pos += 12 + length;
    if (!header) {
      if (type !== 'IHDR' || length !== 13) throw new PngError('the first chunk is not a 13-byte IHDR');
      header = { width: u32be(data, 0), height: u32be(data, 4), depth: data[8], colorType: data[9], interlaced: data[12] === 1 };
      const ct = COLOR_TYPES[header.colorType];
      if (!ct) throw new PngError(`invalid colour type ${header.colorType}`);
      if (!ct.depths.includes(header.depth)) throw new PngError(`bit depth ${header.depth} is invalid for colour type ${header.colorType}`);
      if (data[10] !== 0 || data[11] !== 0 || data[12] > 1) throw new PngError(`unknown compression, filter or interlace method (${data[10]}, ${data[11]}, ${data[12]})`);
      if (header.width === 0 || header.height === 0 || header.width > 0x7fffffff || header.height > 0x7fffffff) throw new PngError(`invalid size ${header.width}x${header.height}`);
      continue;
    }
    if (type === 'IHDR') throw new PngError('a second IHDR chunk');
    if (type === 'IDAT') {
      if (idatClosed) throw new PngError('IDAT chunks are not consecutive');
      idat.push(data);
      continue;
    }
    if (idat.length) idatClosed = true;
    if (type === 'PLTE') {
      if (idat.length) throw new PngError('PLTE after the image data');
      if (length === 0 || length % 3 !== 0 || length / 3 > 256) throw new PngError(`invalid PLTE length ${length}`);
      palette = true;
    } else if (type === 'IEND') {
      break;
    } else if (type.charCodeAt(0) < 97) {
      throw new PngError(`unknown critical chunk ${type}`);
    }
  }
  if (!header) throw new PngError('no IHDR chunk');
  if (header.colorType === 3 && !palette) throw new PngError('a palette image without a PLTE chunk');
  if (idat.length === 0) throw new PngError('no image data (IDAT)');
  const total = idat.reduce((s, c) => s + c.length, 0);
  const stream = idat.length === 1 ? idat[0] : new Uint8Array(total);
  if (idat.length > 1) idat.reduce((at, c) => (stream.set(c, at), at + c.length), 0);
  try {
    checkInflatesTo(stream, pngDataBytes(header), 'the image data');
  } catch (e) {
    if (e instanceof InflateError) throw new PngError(e.message);
    throw e;
  }
  return header;
}
