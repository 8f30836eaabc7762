/** Image decoding (every PNG colour type) and resizing, against PIL (tools/make_image_fixtures.py). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeGray, decodeImage } from '../src/data/image.js';
import { resizeBilinear, resizeNearest } from '../src/data/resize.js';
import { loadFixture } from './helpers.js';
import { itShared, sharedPath } from './shared.js';

interface ImageFixture {
  convert: Record<string, { mode: string; rgb: string }>;
  resize: Record<string, string>;
  bottle_64: string;
  bottle_mask_64: string;
  jpeg: string;
}
const fx = loadFixture<ImageFixture>('images.json');
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

  it('JPEG (4:4:4) decodes as libjpeg does, within IDCT rounding', () => {
    const img = decodeImage(new Uint8Array(readFileSync(new URL('./fixtures/images/smooth.jpg', import.meta.url))), 'smooth.jpg');
    expect([img.width, img.height]).toEqual([37, 29]);
    const ref = bytes(fx.jpeg);
    let sum = 0;
    for (let i = 0; i < ref.length; i++) sum += Math.abs(img.data[i] - ref[i]);
    console.log(`JPEG vs libjpeg: mean |diff| ${(sum / ref.length).toFixed(3)}, max ${maxDiff(img.data, ref)}`);
    expect(sum / ref.length).toBeLessThan(1);
    expect(maxDiff(img.data, ref)).toBeLessThanOrEqual(3);
  });

  it('a corrupt or foreign file gives an error naming the file', () => {
    const good = png('rgb');
    const cut = good.slice(0, good.length - 40);
    cut[cut.length - 100] ^= 0xff;
    expect(() => decodeImage(cut, 'broken.png')).toThrow(/broken\.png: corrupt PNG/);
    expect(() => decodeImage(new TextEncoder().encode('not an image at all'), 'notes.txt')).toThrow(/notes\.txt: not a PNG or JPEG image/);
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
