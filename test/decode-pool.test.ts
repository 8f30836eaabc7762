/**
 * The decode pool of `dcam serve` (src/serve/decode-pool.ts): images decoded in worker threads equal
 * the in-process decoder's, refusals keep their status, a deadline costs only the worker (replaced, the
 * next image decodes), workers that cannot start make the pool fail clearly instead of respawning forever.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../src/data/image.js';
import { DecodePool, DecodeRefusedError } from '../src/serve/decode-pool.js';
import { bmp, hostilePngs, validPng, validTiff } from './hostile-images.js';

const jpeg = new Uint8Array(readFileSync(new URL('./fixtures/codecs/baseline-420.jpg', import.meta.url)));

describe('decode pool', () => {
  it('decodes as the decoder does, several at once; refusals keep their status', async () => {
    const pool = new DecodePool({ workers: 2, timeoutMs: 10_000, heapMb: 256 });
    try {
      await pool.ready();
      const files = [validPng(), jpeg, bmp(), validTiff(), validPng(40, 24)];
      const got = await Promise.all(files.map((f) => pool.decode(f, 1e8)));
      got.forEach((img, i) => expect(img).toEqual(decodeImage(files[i])));
      const bomb = hostilePngs(4 << 20).find((f) => f.name === 'png-inflation-bomb.png')!;
      await expect(pool.decode(bomb.bytes, 1e8)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/inflates to more than/) });
      await expect(pool.decode(validPng(), 100)).rejects.toMatchObject({ status: 413 });
      expect(pool.replaced).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('an image past the deadline is refused and its worker replaced; the next image decodes', async () => {
    const pool = new DecodePool({ workers: 1, timeoutMs: 20, heapMb: 256 });
    try {
      await pool.ready();
      const err = await pool.decode(validPng(2400, 2400), 1e8).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DecodeRefusedError);
      expect(err).toMatchObject({ status: 400, message: expect.stringMatching(/not decoded within 20 ms/) });
      expect(pool.replaced).toBe(1);
      expect(await pool.decode(bmp(), 1e8)).toMatchObject({ width: 32, height: 16 });
    } finally {
      await pool.close();
    }
  });

  it('workers that cannot start (a heap too small to load the decoders) fail the pool with a clear error', async () => {
    const pool = new DecodePool({ workers: 1, timeoutMs: 1000, heapMb: 1 });
    await expect(pool.ready()).rejects.toThrow(/cannot start.*--decode-heap-mb/);
    await expect(pool.decode(bmp(), 1e8)).rejects.toThrow(/cannot start/);
    expect(pool.replaced).toBe(3);
    await pool.close();
  });
});
