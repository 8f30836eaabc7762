/** `dcam export --format onnx`: onnxruntime-node runs the exported model to the engine's maps within 1e-4. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { loadImage } from '../src/data/mvtec.js';
import { dcam } from './cli-helpers.js';
import { relErr, useRuntime } from './helpers.js';

useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('dcam export --format onnx', () => {
  for (const method of ['stfpm', 'dcam'] as const) {
    it(`${method}: the ONNX model's maps match dcam infer --raw, and it carries the thresholds`, async () => {
      const data = join(tmp, `data-${method}`);
      generateSyntheticDataset(data, { seed: 8, size: 48, train: 4, testGood: 1, testPerDefect: 1, categories: { parts: 'object' } });
      const run = join(tmp, `run-${method}`);
      expect((await dcam('train', '--data', data, '--out', run, '--method', method, '--size', '32', '--steps', '2', '--batch', '2')).code).toBe(0);
      expect((await dcam('eval', '--run', run)).code).toBe(0);
      const r = await dcam('export', '--run', run, '--format', 'onnx');
      expect(r.code, r.err).toBe(0);
      const images = [join(data, 'parts/test/good/000.png'), join(data, 'parts/test/spot/000.png')];
      const out = join(tmp, `infer-${method}`);
      expect((await dcam('infer', '--run', run, '--out', out, '--raw', ...images)).code).toBe(0);

      const ort = await import('onnxruntime-node');
      const session = await ort.InferenceSession.create(readFileSync(join(run, 'model.onnx')));
      const x = new Float32Array(2 * 3 * 32 * 32);
      images.forEach((p, i) => loadImage(p, 32, x, i * 3 * 32 * 32));
      const got = (await session.run({ image: new ort.Tensor('float32', x, [2, 3, 32, 32]) })).map.data as Float32Array;
      ['good_000', 'spot_000'].forEach((stem, i) => {
        const npy = readFileSync(join(out, `${stem}.npy`));
        const want = new Float32Array(npy.buffer.slice(npy.byteOffset + npy.length - 32 * 32 * 4, npy.byteOffset + npy.length));
        expect(relErr(got.subarray(i * 1024, (i + 1) * 1024), want), stem).toBeLessThan(1e-4);
      });
      const bytes = readFileSync(join(run, 'model.onnx')).toString('latin1');
      const thresholds = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).thresholds;
      expect(bytes).toContain('dcam.thresholds');
      expect(bytes).toContain(JSON.stringify(thresholds));
      await session.release();
    });
  }
});
