/**
 * Bounded decompression for image decoders: a zlib or raw deflate stream is inflated in small pieces and
 * stopped as soon as it produces more than the bytes its image can need, so a small file that inflates
 * to gigabytes (an inflation bomb) costs a few megabytes and milliseconds; a stream that ends early, is
 * malformed, or fails its checksum is an error. Also the CRC-32 and Adler-32 checksums the formats use.
 */
import { Inflate, Unzlib } from 'fflate';

export class InflateError extends Error {}

/** Compressed bytes fed per push: one push can produce at most ~1032x this (deflate's largest ratio). */
const PIECE = 4096;

/**
 * Checks that `data` (zlib-wrapped with `zlib`, else raw deflate) inflates to `expected` bytes (at
 * least `min` of them, when fewer are acceptable), keeping none of them (the decoder inflates again once
 * the stream is known to be sound). Throws InflateError when it would produce more (`what` names the
 * stream in the message), ends short, is corrupt, or (zlib) fails its Adler-32 check.
 */
export function checkInflatesTo(data: Uint8Array, expected: number, what: string, zlib = true, min = expected): void {
  let n = 0;
  let adler = 1;
  const sink = (chunk: Uint8Array) => {
    n += chunk.length;
    if (n > expected) throw new InflateError(`${what} inflates to more than the ${expected} bytes the image needs`);
    if (zlib) adler = adler32(chunk, adler);
  };
  if (zlib) {
    if (data.length < 6) throw new InflateError(`${what}: the zlib stream is truncated`);
    const [cmf, flg] = [data[0], data[1]];
    if ((cmf & 15) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0) throw new InflateError(`${what}: not a zlib stream (header ${cmf}, ${flg})`);
    if (flg & 32) throw new InflateError(`${what}: the zlib stream asks for a preset dictionary`);
  }
  const stream = zlib ? new Unzlib(sink) : new Inflate(sink);
  try {
    // the last push says the input ends: a stream without its final block is then an error
    for (let i = 0; i < data.length; i += PIECE) stream.push(data.subarray(i, i + PIECE), i + PIECE >= data.length);
  } catch (e) {
    if (e instanceof InflateError) throw e;
    throw new InflateError(`${what}: corrupt compressed data (${(e as Error).message})`);
  }
  if (n < min) throw new InflateError(`${what}: the compressed data ends after ${n} of the ${min} bytes the image needs`);
  if (zlib && adler !== u32be(data, data.length - 4)) throw new InflateError(`${what}: the zlib checksum (Adler-32) does not match the data`);
}

const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

/** Adler-32 of bytes, continuing from `adler` (a running checksum of what came before). */
export function adler32(data: Uint8Array, adler = 1): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  // 5552 bytes at most between reductions keep b within 2^53 (zlib's NMAX)
  for (let i = 0; i < data.length; ) {
    const end = Math.min(data.length, i + 5552);
    for (; i < end; i++) {
      a += data[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (ISO 3309, as PNG and zip use) of bytes. */
export function crc32(data: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}
