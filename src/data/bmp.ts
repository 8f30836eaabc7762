/**
 * BMP decoding to 8-bit RGB as PIL's BmpImagePlugin reads it: Windows v3-v5 and OS/2 headers, 1/4/8-bit
 * palettes, 16-bit 5-5-5 and 5-6-5, 24-bit, 32-bit with PIL's bitfield layouts, bottom-up and top-down
 * rows, pixels from the file header's data offset. Every size is checked against the file before
 * anything is read: a header, palette or pixel array that the file does not hold is an error, as are
 * layouts PIL refuses (other header sizes, bitfields and depths). RLE compression is refused too.
 * (The npm decoders at hand either ignore the data offset, compression and row order, icons being their
 * job, or need Node's Buffer; this format is small enough to read here.)
 */
export class BmpError extends Error {}

export interface BmpHeader {
  width: number;
  height: number;
}

interface Layout extends BmpHeader {
  bits: number;
  topDown: boolean;
  offset: number;
  stride: number;
  /** Palette entries as RGB, for 1/4/8 bits. */
  palette: Uint8Array | null;
  /** Byte positions of R, G, B in a 32-bit pixel (little-endian), or the 16-bit format. */
  pixel32: [number, number, number] | null;
  pixel16: '555' | '565' | null;
}

/** The 32-bit bitfield layouts PIL reads (masks R, G, B, A) and where each colour's byte is. */
const MASKS_32: Array<[number[], [number, number, number]]> = [
  [[0xff0000, 0xff00, 0xff, 0], [2, 1, 0]],
  [[0xff000000, 0xff0000, 0xff00, 0], [3, 2, 1]],
  [[0xff000000, 0xff00, 0xff, 0], [3, 1, 0]],
  [[0xff000000, 0xff0000, 0xff00, 0xff], [3, 2, 1]],
  [[0xff, 0xff00, 0xff0000, 0xff000000], [0, 1, 2]],
  [[0xff0000, 0xff00, 0xff, 0xff000000], [2, 1, 0]],
  [[0xff000000, 0xff00, 0xff, 0xff0000], [3, 1, 0]],
  [[0, 0, 0, 0], [2, 1, 0]],
];

function layout(bytes: Uint8Array): Layout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (end: number, what: string) => {
    if (end > bytes.length) throw new BmpError(`truncated: the ${what} ends at byte ${end}, the file has ${bytes.length}`);
  };
  need(18, 'file header');
  let offset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (![12, 40, 52, 56, 64, 108, 124].includes(headerSize)) throw new BmpError(`unsupported header size ${headerSize}`);
  need(14 + headerSize, 'info header');
  let width: number;
  let height: number;
  let bits: number;
  let compression = 0;
  let colors = 0;
  let topDown = false;
  let masks: number[] | null = null;
  if (headerSize === 12) {
    [width, height, bits] = [view.getUint16(18, true), view.getUint16(20, true), view.getUint16(24, true)];
  } else {
    width = view.getInt32(18, true);
    height = view.getInt32(22, true);
    if (height < 0) [height, topDown] = [-height, true];
    bits = view.getUint16(28, true);
    compression = view.getUint32(30, true);
    colors = view.getUint32(46, true);
    if (compression === 3) {
      // masks in the header from v2 on, else the three words after a 40-byte header
      const at = 54;
      need(at + (headerSize >= 56 ? 16 : 12), 'bitfield masks');
      masks = [view.getUint32(at, true), view.getUint32(at + 4, true), view.getUint32(at + 8, true), headerSize >= 56 ? view.getUint32(at + 12, true) : 0];
    }
  }
  if (!(width > 0 && height > 0)) throw new BmpError(`invalid size ${width}x${height}`);
  if (![1, 4, 8, 16, 24, 32].includes(bits)) throw new BmpError(`unsupported pixel depth ${bits}`);
  if (compression === 1 || compression === 2) throw new BmpError('RLE-compressed BMP is not supported');
  if (compression !== 0 && compression !== 3) throw new BmpError(`unsupported compression ${compression}`);
  let pixel32: Layout['pixel32'] = bits === 32 ? [2, 1, 0] : null;
  let pixel16: Layout['pixel16'] = bits === 16 ? '555' : null;
  if (masks) {
    const same = (a: number[], b: number[]) => a.every((v, i) => v === b[i]);
    const hit32 = bits === 32 ? MASKS_32.find(([m]) => same(masks!, m)) : undefined;
    if (hit32) pixel32 = hit32[1];
    else if (bits === 24 && same(masks.slice(0, 3), [0xff0000, 0xff00, 0xff])) pixel32 = null;
    else if (bits === 16 && same(masks.slice(0, 3), [0xf800, 0x7e0, 0x1f])) pixel16 = '565';
    else if (bits === 16 && same(masks.slice(0, 3), [0x7c00, 0x3e0, 0x1f])) pixel16 = '555';
    else throw new BmpError(`unsupported bitfields layout (${bits} bits, masks ${masks.map((m) => `0x${m.toString(16)}`).join(', ')})`);
  }
  let palette: Uint8Array | null = null;
  if (bits <= 8) {
    const entries = colors || 1 << bits;
    if (entries > 65536) throw new BmpError(`unsupported palette size ${entries}`);
    const entryBytes = headerSize === 12 ? 3 : 4;
    const at = 14 + headerSize;
    need(at + entries * entryBytes, 'palette');
    palette = new Uint8Array(256 * 3); // indices past the palette read black, as in PIL
    for (let i = 0; i < Math.min(entries, 256); i++) {
      const p = at + i * entryBytes;
      palette.set([bytes[p + 2], bytes[p + 1], bytes[p]], 3 * i);
    }
    // a data offset pointing at the palette means "after it" (as PIL reads such files)
    if (offset === 14 + headerSize) offset += 4 * entries;
  }
  const stride = (((width * bits + 31) >>> 5) << 2) >>> 0;
  if (offset < 14 + headerSize) throw new BmpError(`the pixel data offset ${offset} points into the headers`);
  need(offset + stride * height, `pixel data (${height} rows of ${stride} bytes from byte ${offset})`);
  return { width, height, bits, topDown, offset, stride, palette, pixel32, pixel16 };
}

/** Width and height from the headers (checked as for decoding, but no pixel is read). */
export function bmpSize(bytes: Uint8Array): BmpHeader {
  const { width, height } = layout(bytes);
  return { width, height };
}

/** Interleaved 8-bit RGB, as PIL's `Image.open(f).convert('RGB')`. */
export function decodeBmp(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const L = layout(bytes);
  const { width, height, bits, stride, palette } = L;
  const out = new Uint8Array(width * height * 3);
  // 5- and 6-bit channels to 8 bits as PIL's unpackers: v * 255 / max, rounded down
  const five = Uint8Array.from({ length: 32 }, (_, v) => Math.floor((v * 255) / 31));
  const six = Uint8Array.from({ length: 64 }, (_, v) => Math.floor((v * 255) / 63));
  for (let y = 0; y < height; y++) {
    const row = L.offset + (L.topDown ? y : height - 1 - y) * stride;
    let o = y * width * 3;
    for (let x = 0; x < width; x++, o += 3) {
      if (palette) {
        const bit = x * bits;
        const index = bits === 8 ? bytes[row + x] : (bytes[row + (bit >> 3)] >> (8 - bits - (bit & 7))) & ((1 << bits) - 1);
        out[o] = palette[3 * index];
        out[o + 1] = palette[3 * index + 1];
        out[o + 2] = palette[3 * index + 2];
      } else if (bits === 24) {
        const p = row + 3 * x;
        [out[o], out[o + 1], out[o + 2]] = [bytes[p + 2], bytes[p + 1], bytes[p]];
      } else if (bits === 32) {
        const p = row + 4 * x;
        const [r, g, b] = L.pixel32!;
        [out[o], out[o + 1], out[o + 2]] = [bytes[p + r], bytes[p + g], bytes[p + b]];
      } else {
        const v = bytes[row + 2 * x] | (bytes[row + 2 * x + 1] << 8);
        if (L.pixel16 === '565') [out[o], out[o + 1], out[o + 2]] = [five[v >> 11], six[(v >> 5) & 63], five[v & 31]];
        else [out[o], out[o + 1], out[o + 2]] = [five[(v >> 10) & 31], five[(v >> 5) & 31], five[v & 31]];
      }
    }
  }
  return { width, height, data: out };
}
