/** Image decoding (every PNG colour type, JPEG, BMP, TIFF) and resizing, against PIL (tools/make_*_fixtures.py). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeGray, decodeImage, limits } from '../src/data/image.js';
import { resizeBilinear, resizeNearest } from '../src/data/resize.js';
import { loadFixture } from './helpers.js';
import { itShared, sharedPath } from './shared.js';

interface ImageFixture {
  convert: Record<string, { mode: string; rgb: string }>;
  resize: Record<string, string>;
  bottle_64: string;
  bottle_mask_64: string;
}
const fx = loadFixture<ImageFixture>('images.json');
const codecs = loadFixture<{ images: Record<string, { mode: string; width: number; height: number; rgb: string }> }>('codecs.json');
const codec = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/codecs/${name}`, import.meta.url)));
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
const png = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/images/${name}.png`, import.meta.url)));

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('image decoding', () => {
  for (const name of Object.keys(fx.convert)) {
    it(`${name} PNG (PIL mode ${fx.convert[name].mode}) decodes to PIL's RGB`, () => {
      const img = decodeImage(png(name), `${name}.png`);
      expect([img.width, img.height]).toEqual([37, 29]);
      expect(maxDiff(img.data, bytes(fx.convert[name].rgb))).toBe(0);
    });
  }

  it('a corrupt or foreign file gives an error naming the file', () => {
    const good = png('rgb');
    const cut = good.slice(0, good.length - 40);
    cut[cut.length - 100] ^= 0xff;
    expect(() => decodeImage(cut, 'broken.png')).toThrow(/broken\.png: corrupt PNG/);
    expect(() => decodeImage(new TextEncoder().encode('not an image at all'), 'notes.txt')).toThrow(/notes\.txt: not a PNG, JPEG, BMP or TIFF image/);
    const jpg = codec('baseline-420.jpg');
    expect(() => decodeImage(jpg.subarray(0, 400), 'cut.jpg')).toThrow(/^cut\.jpg: corrupt JPEG \(.+\)$/);
    expect(() => decodeImage(jpg.subarray(0, 30), 'head.jpg')).toThrow(/head\.jpg: corrupt JPEG/);
    // the decoder stays usable after a failure
    expect(decodeImage(jpg, 'again.jpg').width).toBe(37);
    expect(() => decodeImage(codec('rgb24.bmp').subarray(0, 200), 'cut.bmp')).toThrow(/cut\.bmp: corrupt or unsupported BMP \(truncated/);
    expect(() => decodeImage(codec('rgb.tif').subarray(0, 100), 'cut.tif')).toThrow(/cut\.tif: corrupt or unsupported TIFF/);
  });
});

describe('JPEG, BMP and TIFF decode bit for bit as PIL (tools/make_codec_fixtures.py)', () => {
  for (const [name, want] of Object.entries(codecs.images)) {
    it(`${name} (PIL mode ${want.mode})`, () => {
      const img = decodeImage(codec(name), name);
      expect([img.width, img.height]).toEqual([want.width, want.height]);
      expect(maxDiff(img.data, bytes(want.rgb))).toBe(0);
    });
  }
});

describe('decompression bombs are refused from the header, before decoding', () => {
  it('PNG, JPEG, BMP and TIFF over the pixel limit name the file and the size', () => {
    const saved = limits.maxPixels;
    limits.maxPixels = 300; // every image used here is larger
    try {
      expect(() => decodeImage(png('rgb'), 'big.png')).toThrow(/big\.png: PNG of 37x29 = 0\.0 megapixels is over the limit/);
      for (const name of ['baseline-420.jpg', 'rgb24.bmp', 'rgb-lzw.tif']) {
        expect(() => decodeImage(codec(name), name)).toThrow(new RegExp(`${name.replace('.', '\\.')}: (JPEG|BMP|TIFF) of \\d+x\\d+ .* over the limit`));
      }
    } finally {
      limits.maxPixels = saved;
    }
    // a 60-byte PNG declaring 100000 x 100000 pixels
    const bomb = png('rgb').slice(0, 60);
    new DataView(bomb.buffer).setUint32(16, 100000);
    new DataView(bomb.buffer).setUint32(20, 100000);
    expect(() => decodeImage(bomb, 'bomb.png')).toThrow(/bomb\.png: PNG of 100000x100000 = 10000\.0 megapixels is over the limit of 50\.0/);
  });
});

describe('resizing matches PIL', () => {
  for (const [size, want] of Object.entries(fx.resize)) {
    it(`bilinear (antialiased) 37x29 -> ${size}`, () => {
      const [w, h] = size.split('x').map(Number);
      const out = resizeBilinear(decodeImage(png('rgb')), w, h);
      expect(maxDiff(out.data, bytes(want))).toBe(0);
    });
  }

  itShared('a real 900x900 MVTec image to 64x64, and its mask (nearest)', ['data/mvtec/bottle'], () => {
    const img = decodeImage(readFileSync(sharedPath('data/mvtec/bottle/test/broken_large/000.png')));
    expect(maxDiff(resizeBilinear(img, 64, 64).data, bytes(fx.bottle_64))).toBe(0);
    const mask = decodeGray(readFileSync(sharedPath('data/mvtec/bottle/ground_truth/broken_large/000_mask.png')));
    expect(maxDiff(resizeNearest(mask, 64, 64), bytes(fx.bottle_mask_64))).toBe(0);
  });

  it('an image already at the size passes unchanged', () => {
    const img = decodeImage(png('rgb'));
    expect(resizeBilinear(img, 37, 29).data).toBe(img.data);
  });
});
