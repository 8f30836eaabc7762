/**
 * TIFF: the first image's directory (IFD) read with bounds, then its strips decoded by utif2. utif2's own
 * directory parser trusts the file (a tag count of 2^31 allocates until the heap dies, a next-IFD offset
 * pointing back loops forever, sub-IFDs and maker notes are followed recursively, strip offsets past the
 * end are read as zeros), so it is not used: this reader takes only the tags a baseline image needs, checks
 * every count and offset against the file before reading, never follows another directory, checks that
 * each strip lies inside the file and holds (or, compressed with deflate, inflates to) the bytes its rows
 * need, and refuses what it does not support by name. utif2 then decompresses the checked strips.
 */
import UTIF from 'utif2';
import { checkInflatesTo, InflateError } from './inflate.js';

export class TiffError extends Error {}

/** A directory in the form utif2's decodeImage takes: tag number -> values. */
export type TiffDirectory = Record<string, number[]> & { width: number; height: number };

/** Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ..., DOUBLE, IFD). */
const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4 };

const TAG = {
  width: 256, height: 257, bitsPerSample: 258, compression: 259, photometric: 262, fillOrder: 266, stripOffsets: 273, samplesPerPixel: 277,
  rowsPerStrip: 278, stripByteCounts: 279, planar: 284, predictor: 317, tileWidth: 322, extraSamples: 338, sampleFormat: 339,
} as const;
/** The tags read (all others are skipped unread). */
const WANTED = new Set<number>(Object.values(TAG));

/** Compressions utif2 decodes and PIL reads: none, LZW, deflate (Adobe and old), PackBits. */
const COMPRESSIONS: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'deflate', 32946: 'deflate', 32773: 'PackBits' };

/** Most values a tag may hold (strips are checked against the image's rows besides). */
const MAX_VALUES = 1 << 20;

/**
 * Reads and checks the first image directory of a TIFF file. Throws TiffError (without the file's name:
 * the caller adds it) for a damaged, truncated or unsupported file.
 */
export function readTiffDirectory(bytes: Uint8Array): TiffDirectory {
  const le = bytes[0] === 0x49;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, le);
  const u32 = (at: number) => view.getUint32(at, le);
  if (bytes.length < 8) throw new TiffError('truncated header');
  if (u16(2) === 43) throw new TiffError('BigTIFF is not supported');
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > bytes.length) throw new TiffError(`the first directory's offset ${ifd} is outside the file (${bytes.length} bytes)`);
  const entries = u16(ifd);
  if (entries === 0 || ifd + 6 + entries * 12 > bytes.length) throw new TiffError(`the first directory (${entries} entries at byte ${ifd}) does not fit in the file`);
  checkDirectoryChain(bytes.length, ifd, u16, u32);
  const tags = new Map<number, number[]>();
  for (let e = 0; e < entries; e++) {
    const at = ifd + 2 + e * 12;
    const tag = u16(at);
    if (!WANTED.has(tag)) continue;
    const type = u16(at + 2);
    const count = u32(at + 4);
    const size = TYPE_BYTES[type];
    if (!size || ![1, 3, 4].includes(type)) throw new TiffError(`tag ${tag} has type ${type}, not BYTE, SHORT or LONG`);
    if (count === 0 || count > MAX_VALUES) throw new TiffError(`tag ${tag} declares ${count} values`);
    const inline = count * size <= 4;
    const where = inline ? at + 8 : u32(at + 8);
    if (where + count * size > bytes.length) throw new TiffError(`tag ${tag}'s ${count} values at byte ${where} run past the end of the file (${bytes.length} bytes)`);
    const read = type === 1 ? (i: number) => bytes[where + i] : type === 3 ? (i: number) => u16(where + 2 * i) : (i: number) => u32(where + 4 * i);
    tags.set(tag, Array.from({ length: count }, (_, i) => read(i)));
  }
  const one = (tag: number, fallback?: number): number => {
    const v = tags.get(tag)?.[0] ?? fallback;
    if (v === undefined) throw new TiffError(`the required tag ${tag} is missing`);
    return v;
  };
  const width = one(TAG.width);
  const height = one(TAG.height);
  if (tags.has(TAG.tileWidth)) throw new TiffError('tiled images are not supported (only strips)');
  const compression = one(TAG.compression, 1);
  if (!COMPRESSIONS[compression]) throw new TiffError(`compression ${compression} is not supported (none, LZW, deflate or PackBits)`);
  const samples = one(TAG.samplesPerPixel, 1);
  const bits = tags.get(TAG.bitsPerSample) ?? [1];
  if (bits.some((b) => b !== 8)) throw new TiffError(`${bits.join(', ')} bits per sample is not supported (8 only)`);
  const photometric = one(TAG.photometric);
  const layouts: Record<number, number[]> = { 0: [1], 1: [1, 2], 2: [3, 4] };
  if (!layouts[photometric]?.includes(samples)) throw new TiffError(`photometric interpretation ${photometric} with ${samples} samples per pixel is not supported (gray, gray + alpha, RGB, RGBA)`);
  if ((tags.get(TAG.sampleFormat) ?? [1]).some((f) => f !== 1)) throw new TiffError(`sample format ${tags.get(TAG.sampleFormat)!.join(', ')} is not supported (unsigned integers only)`);
  if (one(TAG.planar, 1) !== 1) throw new TiffError('planar configuration 2 (separate planes) is not supported');
  if (one(TAG.fillOrder, 1) !== 1) throw new TiffError('fill order 2 is not supported');
  const predictor = one(TAG.predictor, 1);
  if (predictor !== 1 && predictor !== 2) throw new TiffError(`predictor ${predictor} is not supported`);
  const rowsPerStrip = Math.min(one(TAG.rowsPerStrip, height), height);
  const strips = Math.ceil(height / rowsPerStrip);
  const offsets = tags.get(TAG.stripOffsets);
  const counts = tags.get(TAG.stripByteCounts);
  if (!offsets || !counts) throw new TiffError('the strip offsets or byte counts are missing');
  if (offsets.length !== strips || counts.length !== strips) throw new TiffError(`${offsets.length} strip offsets and ${counts.length} byte counts for ${strips} strips of ${rowsPerStrip} rows`);
  const dir: Record<string, number[]> = {};
  for (const [tag, values] of tags) dir[`t${tag}`] = values;
  dir[`t${TAG.compression}`] = [compression];
  dir[`t${TAG.rowsPerStrip}`] = [rowsPerStrip];
  return Object.assign(dir, { width, height }) as TiffDirectory;
}

/** Most directories a file may chain (pages, thumbnails); only the first is decoded. */
const MAX_DIRECTORIES = 1024;

/**
 * The chain of directories after the first must stay inside the file and end: a chain that loops back
 * (which would make a reader that lists the pages run forever) or runs out of the file is damage.
 */
function checkDirectoryChain(length: number, first: number, u16: (at: number) => number, u32: (at: number) => number): void {
  const seen = new Set<number>();
  for (let ifd = first; ifd !== 0; ) {
    if (seen.has(ifd)) throw new TiffError(`the chain of directories loops back to byte ${ifd}`);
    if (seen.size >= MAX_DIRECTORIES) throw new TiffError(`more than ${MAX_DIRECTORIES} directories`);
    seen.add(ifd);
    if (ifd + 2 > length || ifd + 6 + u16(ifd) * 12 > length) throw new TiffError(`a directory at byte ${ifd} runs past the end of the file (${length} bytes)`);
    ifd = u32(ifd + 2 + u16(ifd) * 12);
  }
}

/**
 * Checks that each strip lies inside the file and holds its rows (uncompressed) or inflates to them
 * (deflate, bounded); run before decoding, once the image's size is known to be within the limit.
 */
function checkStrips(bytes: Uint8Array, dir: TiffDirectory): void {
  const { width, height } = dir;
  const compression = dir[`t${TAG.compression}`][0];
  const rowBytes = width * (dir[`t${TAG.samplesPerPixel}`]?.[0] ?? 1);
  const rowsPerStrip = dir[`t${TAG.rowsPerStrip}`][0];
  const offsets = dir[`t${TAG.stripOffsets}`];
  const counts = dir[`t${TAG.stripByteCounts}`];
  for (let s = 0; s < offsets.length; s++) {
    const [off, n] = [offsets[s], counts[s]];
    const rows = Math.min(rowsPerStrip, height - s * rowsPerStrip);
    if (off + n > bytes.length) throw new TiffError(`strip ${s} (${n} bytes at byte ${off}) runs past the end of the file (${bytes.length} bytes): truncated`);
    if (compression === 1 && n < rows * rowBytes) throw new TiffError(`strip ${s} holds ${n} bytes, its ${rows} rows need ${rows * rowBytes}: truncated`);
    if (compression === 5) checkLzwStrip(bytes.subarray(off, off + n), rowsPerStrip * rowBytes, rows * rowBytes, s);
    if (compression === 8 || compression === 32946) {
      try {
        checkInflatesTo(bytes.subarray(off, off + n), rowsPerStrip * rowBytes, `strip ${s}`, true, rows * rowBytes);
      } catch (e) {
        if (e instanceof InflateError) throw new TiffError(e.message);
        throw e;
      }
    }
  }
}

/**
 * Checks a TIFF LZW strip (codes of 9 to 12 bits, most significant bit first, 256 clears the table, 257
 * ends; the width grows one code early, as libtiff writes): every code must be in the table built so
 * far, and the strip must produce at least `min` bytes (its rows) and is stopped at `max` (a full strip).
 * utif2's decoder accepts codes that are not in the table and stops silently; libtiff (and so PIL)
 * refuses them.
 */
function checkLzwStrip(data: Uint8Array, max: number, min: number, strip: number): void {
  if (data.length >= 2 && data[0] === 0 && data[1] & 1) throw new TiffError(`strip ${strip}: old-style LZW is not supported`);
  const length = new Uint16Array(4096); // bytes each code stands for
  for (let c = 0; c < 256; c++) length[c] = 1;
  let next = 258;
  let width = 9;
  let prev = -1;
  let out = 0;
  let bit = 0;
  const bits = data.length * 8;
  while (bit + width <= bits && out < max) {
    let code = 0;
    for (let k = 0; k < width; k++, bit++) code = (code << 1) | ((data[bit >> 3] >> (7 - (bit & 7))) & 1);
    if (code === 257) break;
    if (code === 256) {
      [next, width, prev] = [258, 9, -1];
      continue;
    }
    if (prev < 0) {
      if (code > 255) throw new TiffError(`strip ${strip}: LZW code ${code} after a clear code (damaged data)`);
    } else {
      if (code > next) throw new TiffError(`strip ${strip}: LZW code ${code} is not yet in the table (damaged data)`);
      if (next >= 4096) throw new TiffError(`strip ${strip}: the LZW table overflows without a clear code (damaged data)`);
      length[next] = length[prev] + 1;
      next++;
      if (next + 1 >= 1 << width && width < 12) width++;
    }
    out += length[code];
    prev = code;
  }
  if (out < min) throw new TiffError(`strip ${strip}: the LZW data ends after ${out} of the ${min} bytes its rows need`);
}

/** 8-bit RGBA pixels of a directory read by `readTiffDirectory`. */
export function decodeTiffRgba(bytes: Uint8Array, dir: TiffDirectory): Uint8Array {
  checkStrips(bytes, dir);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const img = { ...dir } as unknown as UTIF.IFD;
  UTIF.decodeImage(buffer, img);
  const rgba = UTIF.toRGBA8(img);
  if (rgba.length < dir.width * dir.height * 4) throw new TiffError('truncated image data');
  return rgba;
}
