/**
 * A corpus of damaged and hostile image files, generated (never committed): for each format the classes
 * an attacker of an inspection service or a damaged transfer produces: count lies, directory loops,
 * offsets out of bounds, inflation bombs, truncations, bad checksums, headers that promise data the file
 * does not hold, layouts the format or PIL does not allow. Every one must be refused (an error naming
 * the file) within seconds and bounded memory. Used by test/hostile-images.test.ts and bench/image-probe.ts.
 */
import { deflateSync } from 'node:zlib';
import { encode as encodePng } from 'fast-png';
import { crc32 } from '../src/data/inflate.js';

export interface HostileFile {
  name: string;
  /** What is wrong with it. */
  why: string;
  bytes: Uint8Array;
}

const u32be = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];

/** A valid RGB PNG of w x h (a gradient). */
export function validPng(w = 64, h = 64): Uint8Array {
  const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7 + (i >> 5)) & 255);
  return encodePng({ width: w, height: h, data, channels: 3, depth: 8 });
}

/** A PNG chunk with its length and CRC. */
export function pngChunk(type: string, data: Uint8Array, crc?: number): Uint8Array {
  const t = new TextEncoder().encode(type);
  const out = new Uint8Array(12 + data.length);
  out.set(u32be(data.length), 0);
  out.set(t, 4);
  out.set(data, 8);
  out.set(u32be(crc ?? crc32(data, crc32(t))), 8 + data.length);
  return out;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};
const SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

/** IHDR data for an 8-bit image of a colour type. */
const ihdr = (w: number, h: number, colorType = 2, depth = 8) => new Uint8Array([...u32be(w), ...u32be(h), depth, colorType, 0, 0, 0]);

/** The chunks of a PNG: [type, data] in order. */
function chunks(png: Uint8Array): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  for (let pos = 8; pos + 12 <= png.length; ) {
    const len = ((png[pos] << 24) | (png[pos + 1] << 16) | (png[pos + 2] << 8) | png[pos + 3]) >>> 0;
    out.push([String.fromCharCode(...png.subarray(pos + 4, pos + 8)), png.slice(pos + 8, pos + 8 + len)]);
    pos += 12 + len;
  }
  return out;
}
const rebuild = (parts: Array<[string, Uint8Array]>) => concat(SIGNATURE, ...parts.map(([t, d]) => pngChunk(t, d)));

/** zlib stream of `n` zero bytes (compressed ~1000:1). */
const zeros = (n: number) => deflateSync(Buffer.alloc(n), { level: 9 });

export function hostilePngs(bombBytes = 64 << 20): HostileFile[] {
  const good = validPng();
  const parts = chunks(good);
  const idat = parts.find(([t]) => t === 'IDAT')![1];
  const flipIdat = () => {
    const d = idat.slice();
    d[Math.floor(d.length / 2)] ^= 0x55;
    return d;
  };
  const withBadCrc = good.slice();
  withBadCrc[good.length - 20] ^= 0xff; // inside the IDAT data, its CRC unchanged
  const rowBytes = 1 + 64 * 3;
  return [
    { name: 'png-bad-crc-idat.png', why: 'a byte of the image data changed, its CRC not', bytes: withBadCrc },
    { name: 'png-bad-crc-text.png', why: 'an ancillary tEXt chunk with a wrong CRC', bytes: concat(SIGNATURE, pngChunk('IHDR', parts[0][1]), pngChunk('tEXt', new TextEncoder().encode('a\0b'), 12345), ...parts.slice(1).map(([t, d]) => pngChunk(t, d))) },
    { name: 'png-broken-deflate.png', why: 'the image data damaged, the CRC recomputed (a broken deflate stream)', bytes: rebuild(parts.map(([t, d]) => [t, t === 'IDAT' ? flipIdat() : d])) },
    { name: 'png-truncated-90.png', why: 'the file cut at 90%', bytes: good.slice(0, Math.floor(good.length * 0.9)) },
    { name: 'png-truncated-50.png', why: 'the file cut at 50%', bytes: good.slice(0, Math.floor(good.length * 0.5)) },
    { name: 'png-header-only.png', why: 'signature and IHDR, nothing else', bytes: concat(SIGNATURE, pngChunk('IHDR', ihdr(64, 64))) },
    { name: 'png-no-iend.png', why: 'IEND missing', bytes: rebuild(parts.filter(([t]) => t !== 'IEND')) },
    { name: 'png-inflation-bomb.png', why: `declares 64x64 RGB (12,352 bytes of rows); its data inflates to ${bombBytes >> 20} MiB`, bytes: rebuild([['IHDR', ihdr(64, 64)], ['IDAT', zeros(bombBytes)], ['IEND', new Uint8Array()]]) },
    { name: 'png-short-data.png', why: 'declares 64x64; its data holds 32 rows', bytes: rebuild([['IHDR', ihdr(64, 64)], ['IDAT', deflateSync(Buffer.alloc(32 * rowBytes))], ['IEND', new Uint8Array()]]) },
    { name: 'png-size-lie.png', why: 'IHDR says 640x640; the data is for 64x64', bytes: rebuild(parts.map(([t, d]) => [t, t === 'IHDR' ? ihdr(640, 640) : d])) },
    { name: 'png-unknown-critical.png', why: 'an unknown critical chunk (cHNK)', bytes: rebuild([parts[0], ['CHNK', new Uint8Array(4)], ...parts.slice(1)]) },
    { name: 'png-split-idat.png', why: 'the IDAT chunks interrupted by a tEXt chunk', bytes: rebuild([parts[0], ['IDAT', idat.slice(0, 10)], ['tEXt', new TextEncoder().encode('a\0b')], ['IDAT', idat.slice(10)], ['IEND', new Uint8Array()]]) },
    { name: 'png-palette-missing.png', why: 'a palette image without PLTE', bytes: rebuild([['IHDR', ihdr(64, 64, 3)], ['IDAT', deflateSync(Buffer.alloc(64 * 65))], ['IEND', new Uint8Array()]]) },
    { name: 'png-bad-depth.png', why: 'bit depth 3', bytes: rebuild(parts.map(([t, d]) => [t, t === 'IHDR' ? ihdr(64, 64, 2, 3) : d])) },
    { name: 'png-chunk-length-lie.png', why: 'a chunk length of 0x7ffffff0', bytes: (() => { const b = good.slice(); b.set(u32be(0x7ffffff0), 33); return b; })() },
  ];
}

export function hostileJpegs(good: Uint8Array): HostileFile[] {
  const sos = good.findIndex((b, i) => b === 0xff && good[i + 1] === 0xda);
  return [
    { name: 'jpeg-truncated-95.jpg', why: 'the file cut at 95% (no EOI, the last rows missing)', bytes: good.slice(0, Math.floor(good.length * 0.95)) },
    { name: 'jpeg-truncated-50.jpg', why: 'the file cut at 50%', bytes: good.slice(0, Math.floor(good.length * 0.5)) },
    { name: 'jpeg-header-only.jpg', why: 'the headers up to the start of scan, no image data', bytes: good.slice(0, sos + 14) },
    { name: 'jpeg-no-frame.jpg', why: 'SOI then EOI', bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]) },
    { name: 'jpeg-soi-garbage.jpg', why: 'SOI then random bytes', bytes: concat(new Uint8Array([0xff, 0xd8, 0xff]), Uint8Array.from({ length: 2000 }, (_, i) => (i * 131 + 7) & 255)) },
  ];
}

/** A 32x16 24-bit BMP (BITMAPINFOHEADER) with fields overridable: [byte offset, value, bytes]. */
export function bmp(edits: Array<[number, number, number]> = [], w = 32, h = 16, bits = 24, dataBytes?: number): Uint8Array {
  const stride = ((w * bits + 31) >> 5) << 2;
  const size = 54 + (dataBytes ?? stride * h);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b[0] = 0x42;
  b[1] = 0x4d;
  v.setUint32(2, size, true);
  v.setUint32(10, 54, true);
  v.setUint32(14, 40, true);
  v.setInt32(18, w, true);
  v.setInt32(22, h, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, bits, true);
  for (let i = 54; i < size; i++) b[i] = (i * 13) & 255;
  for (const [at, value, n] of edits) {
    if (n === 2) v.setUint16(at, value, true);
    else v.setUint32(at, value >>> 0, true);
  }
  return b;
}

export function hostileBmps(): HostileFile[] {
  const withMasks = (masks: number[]) => concat(bmp([[10, 66, 4], [30, 3, 4]]).subarray(0, 54), new Uint8Array(new Uint32Array(masks).buffer), bmp().subarray(54));
  return [
    { name: 'bmp-offset-past-end.bmp', why: 'the pixel data offset beyond the end of the file', bytes: bmp([[10, 1 << 20, 4]]) },
    { name: 'bmp-header-size-0.bmp', why: 'a DIB header size of 0', bytes: bmp([[14, 0, 4]]) },
    { name: 'bmp-header-size-huge.bmp', why: 'a DIB header size of 0xfffffff0', bytes: bmp([[14, 0xfffffff0, 4]]) },
    { name: 'bmp-bad-bitfields.bmp', why: '32-bit bitfields with masks PIL does not read (0xf0f0f0, ...)', bytes: (() => { const b = withMasks([0xf0f0f0, 0x0f0f0f, 0xff000000]); new DataView(b.buffer).setUint16(28, 32, true); return b; })() },
    { name: 'bmp-truncated-pixels.bmp', why: 'the header promises 16 rows, the file holds 4', bytes: bmp([], 32, 16, 24, 96 * 4) },
    { name: 'bmp-huge-claim.bmp', why: 'declares 7000 x 7000 (49 megapixels) in a 1.6 kB file', bytes: bmp([[18, 7000, 4], [22, 7000, 4]]) },
    { name: 'bmp-zero-width.bmp', why: 'width 0', bytes: bmp([[18, 0, 4]]) },
    { name: 'bmp-depth-7.bmp', why: '7 bits per pixel', bytes: bmp([[28, 7, 2]]) },
    { name: 'bmp-rle8.bmp', why: 'RLE8 compression (not supported)', bytes: bmp([[28, 8, 2], [30, 1, 4]]) },
    { name: 'bmp-palette-past-end.bmp', why: 'an 8-bit image whose 256-colour palette runs past the end', bytes: bmp([[28, 8, 2]], 4, 4, 8, 32) },
  ];
}

interface TiffEntry {
  tag: number;
  type: number;
  /** Values (written inline or after the directory), or a raw count and value field (lies). */
  values?: number[];
  raw?: { count: number; value: number };
}

/** A little-endian TIFF of one directory (entries sorted as given), with `data` appended at its end. */
export function tiff(entries: TiffEntry[], data: Uint8Array, o: { next?: number; ifd?: number } = {}): { bytes: Uint8Array; dataOffset: number } {
  const size = (t: number) => ({ 1: 1, 3: 2, 4: 4 })[t as 1 | 3 | 4] ?? 4;
  const ifd = 8;
  const ifdBytes = 2 + entries.length * 12 + 4;
  const extra = entries.reduce((s, e) => s + (e.values && e.values.length * size(e.type) > 4 ? e.values.length * size(e.type) : 0), 0);
  const dataOffset = ifd + ifdBytes + extra;
  const b = new Uint8Array(dataOffset + data.length);
  const v = new DataView(b.buffer);
  b.set([0x49, 0x49, 42, 0]);
  v.setUint32(4, o.ifd ?? ifd, true);
  v.setUint16(ifd, entries.length, true);
  let spill = ifd + ifdBytes;
  entries.forEach((e, i) => {
    const at = ifd + 2 + i * 12;
    v.setUint16(at, e.tag, true);
    v.setUint16(at + 2, e.type, true);
    if (e.raw) {
      v.setUint32(at + 4, e.raw.count, true);
      v.setUint32(at + 8, e.raw.value, true);
      return;
    }
    const vals = e.values!.map((x) => (x === -1 ? dataOffset : x));
    v.setUint32(at + 4, vals.length, true);
    const n = size(e.type);
    let where = at + 8;
    if (vals.length * n > 4) {
      v.setUint32(at + 8, spill, true);
      where = spill;
      spill += vals.length * n;
    }
    vals.forEach((x, k) => (n === 1 ? (b[where + k] = x) : n === 2 ? v.setUint16(where + 2 * k, x, true) : v.setUint32(where + 4 * k, x >>> 0, true)));
  });
  v.setUint32(ifd + 2 + entries.length * 12, o.next ?? 0, true);
  b.set(data, dataOffset);
  return { bytes: b, dataOffset };
}

/** The entries of a w x h 8-bit gray image in one strip of `count` bytes at the data (offset -1 = where the data goes). */
const grayEntries = (w: number, h: number, count: number, compression = 1): TiffEntry[] => [
  { tag: 256, type: 4, values: [w] },
  { tag: 257, type: 4, values: [h] },
  { tag: 258, type: 3, values: [8] },
  { tag: 259, type: 3, values: [compression] },
  { tag: 262, type: 3, values: [1] },
  { tag: 273, type: 4, values: [-1] },
  { tag: 277, type: 3, values: [1] },
  { tag: 278, type: 4, values: [h] },
  { tag: 279, type: 4, values: [count] },
];

/** 9-bit LZW codes packed most significant bit first, padded to 6 bytes. */
function lzwCodes(codes: number[]): Uint8Array {
  const out = new Uint8Array(6);
  let bit = 0;
  for (const c of codes) for (let k = 8; k >= 0; k--, bit++) if ((c >> k) & 1) out[bit >> 3] |= 0x80 >> (bit & 7);
  return out;
}

export function validTiff(w = 32, h = 16): Uint8Array {
  return tiff(grayEntries(w, h, w * h), Uint8Array.from({ length: w * h }, (_, i) => i & 255)).bytes;
}

export function hostileTiffs(bombBytes = 64 << 20): HostileFile[] {
  const pixels = Uint8Array.from({ length: 32 * 16 }, (_, i) => i & 255);
  const replace = (tag: number, e: Partial<TiffEntry>) => grayEntries(32, 16, 512).map((x) => (x.tag === tag ? { ...x, ...e } : x));
  const good = validTiff();
  const bomb = zeros(bombBytes);
  return [
    { name: 'tiff-strip-counts-count-lie.tif', why: 'StripByteCounts declares 0x7fffffff values', bytes: tiff(replace(279, { raw: { count: 0x7fffffff, value: 200 } }), pixels).bytes },
    { name: 'tiff-strip-offsets-count-lie.tif', why: 'StripOffsets declares 0xffffffff values', bytes: tiff(replace(273, { raw: { count: 0xffffffff, value: 200 } }), pixels).bytes },
    { name: 'tiff-ifd-self-loop.tif', why: "the next-directory offset points at the directory itself", bytes: tiff(grayEntries(32, 16, 512), pixels, { next: 8 }).bytes },
    { name: 'tiff-ifd-loop-2.tif', why: 'a second directory that points back at the first', bytes: (() => {
      const t = tiff(grayEntries(32, 16, 512), pixels).bytes;
      const second = new Uint8Array(18);
      const v = new DataView(second.buffer);
      v.setUint16(0, 1, true);
      v.setUint16(2, 256, true);
      v.setUint16(4, 4, true);
      v.setUint32(6, 1, true);
      v.setUint32(10, 32, true);
      v.setUint32(14, 8, true); // back to the first
      const out = concat(t, second);
      new DataView(out.buffer).setUint32(8 + 2 + 9 * 12, t.length, true);
      return out;
    })() },
    { name: 'tiff-lzw-offset-past-end.tif', why: 'an LZW strip at an offset past the end of the file', bytes: tiff(grayEntries(32, 16, 512, 5).map((x) => (x.tag === 273 ? { ...x, values: [1 << 24] } : x)), pixels).bytes },
    { name: 'tiff-deflate-bomb.tif', why: `a 32x16 deflate strip that inflates to ${bombBytes >> 20} MiB`, bytes: tiff(grayEntries(32, 16, bomb.length, 8), bomb).bytes },
    { name: 'tiff-truncated-5.tif', why: 'the file cut to 5% (the directory, not the pixels)', bytes: good.slice(0, Math.max(130, Math.floor(good.length * 0.05))) },
    { name: 'tiff-truncated-60.tif', why: 'the file cut at 60% (part of the strip)', bytes: good.slice(0, Math.floor(good.length * 0.6)) },
    { name: 'tiff-huge-claim.tif', why: 'declares 7000 x 7000 8-bit gray (49 MB of pixels) in a 0.7 kB file', bytes: tiff(grayEntries(7000, 7000, 512), pixels).bytes },
    { name: 'tiff-float-samples.tif', why: 'sample format 3 (floating point)', bytes: tiff([...grayEntries(32, 16, 512), { tag: 339, type: 3, values: [3] }], pixels).bytes },
    { name: 'tiff-first-ifd-past-end.tif', why: 'the first directory offset past the end', bytes: tiff(grayEntries(32, 16, 512), pixels, { ifd: 1 << 30 }).bytes },
    { name: 'tiff-entry-count-lie.tif', why: 'the directory declares 65535 entries', bytes: (() => { const t = good.slice(); new DataView(t.buffer).setUint16(8, 65535, true); return t; })() },
    { name: 'tiff-value-offset-past-end.tif', why: "BitsPerSample's three values stored past the end of the file", bytes: tiff(replace(258, { raw: { count: 3, value: 1 << 28 } }), pixels).bytes },
    { name: 'tiff-16-bit.tif', why: '16 bits per sample (not supported)', bytes: tiff(replace(258, { values: [16] }), pixels).bytes },
    { name: 'tiff-lzw-bad-code.tif', why: 'an LZW strip with a code not yet in the table', bytes: tiff(grayEntries(32, 16, 6, 5), lzwCodes([256, 65, 300, 257])).bytes },
    { name: 'tiff-lzw-short.tif', why: 'an LZW strip that ends after 2 of its 512 bytes', bytes: tiff(grayEntries(32, 16, 6, 5), lzwCodes([256, 65, 66, 257])).bytes },
  ];
}
