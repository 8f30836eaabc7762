/**
 * Optional Gaussian smoothing of anomaly maps against scipy.ndimage.gaussian_filter(sigma=4,
 * mode='reflect', truncate=4) on two 23x17 maps (fixture made with Debian's scipy:
 *   m = rng(0).random((2, 23, 17)); out = gaussian_filter(m[i], 4, mode='reflect')).
 */
import { describe, expect, it } from 'vitest';
import { gaussianSmooth } from '../src/model/anomaly-map.js';
import { decode, loadFixture, relErr, type FixtureTensor } from './helpers.js';

const fx = loadFixture<{ input: FixtureTensor; output: FixtureTensor }>('gaussian.json');

describe('gaussian smoothing', () => {
  it('matches scipy (reflect borders, sigma 4, radius 16 on a map smaller than the kernel)', () => {
    const maps = decode(fx.input);
    gaussianSmooth(maps, 2, 23, 17, 4);
    expect(relErr(maps, decode(fx.output))).toBeLessThan(1e-5);
  });
  it('sigma 0 leaves maps unchanged', () => {
    const maps = decode(fx.input);
    const copy = maps.slice();
    gaussianSmooth(maps, 2, 23, 17, 0);
    expect(Array.from(maps)).toEqual(Array.from(copy));
  });
});
