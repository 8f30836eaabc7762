/**
 * The CLI against PyTorch: `dcam infer --raw` with a PyTorch-made student reproduces PyTorch's anomaly
 * maps (model-forward fixture), and `dcam train --steps 1` reproduces PyTorch's SGD update (train-step
 * fixture), both on real bottle images from the shared folder.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { attentionTensorNames, createAttention } from '../src/model/attention.js';
import { readStateDict, toFloat32, writeSafetensors, type RawTensor } from '../src/model/weights/index.js';
import { decode, loadFixture, relErr, useRuntime, type FixtureTensor } from './helpers.js';
import { attentionValue, perturbedStudent, teacherStateDict } from './model-helpers.js';
import { itShared, sharedPath, shippedTeacher } from './shared.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-parity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const teacherFile = () => shippedTeacher;
const BOTTLE = ['data/mvtec/bottle'];

async function dcam(...args: string[]): Promise<number> {
  const spies = [vi.spyOn(console, 'log').mockImplementation(() => {}), vi.spyOn(process.stderr, 'write').mockImplementation(() => true)];
  const err = vi.spyOn(console, 'error');
  try {
    return await main(['node', 'dcam', ...args]);
  } finally {
    for (const s of spies) s.mockRestore();
    err.mockRestore();
  }
}

describe('CLI parity with PyTorch', () => {
  itShared('dcam infer --raw reproduces PyTorch maps within 1e-3', BOTTLE, async () => {
    const fx = loadFixture<{ names: string[]; map_sum: FixtureTensor; map_product: FixtureTensor }>('model-forward.json');
    const student = join(tmp, 'student.safetensors');
    writeFileSync(student, writeSafetensors([...perturbedStudent(teacherStateDict(), fx.names)]));
    const images = [sharedPath('data/mvtec/bottle/train/good/000.png'), sharedPath('data/mvtec/bottle/test/broken_large/000.png')];
    for (const [method, want] of [['dcam', fx.map_sum], ['stfpm', fx.map_product]] as const) {
      const out = join(tmp, `infer-${method}`);
      const code = await dcam('infer', '--student', student, '--teacher', teacherFile(), '--method', method, '--size', '64', '--out', out, '--raw', ...images);
      expect(code).toBe(0);
      const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Array<{ image: string }>;
      expect(scores.map((r) => r.image)).toEqual(images);
      // both inputs are named 000.png: outputs are prefixed with their folders
      ['good_000', 'broken_large_000'].forEach((stem, i) => {
        const npy = readFileSync(join(out, `${stem}.npy`));
        const got = new Float32Array(npy.buffer.slice(npy.byteOffset + npy.length - 64 * 64 * 4, npy.byteOffset + npy.length));
        expect(relErr(got, decode(want).subarray(i * 64 * 64, (i + 1) * 64 * 64)), `${method} ${stem}`).toBeLessThan(1e-3);
      });
    }
  });

  for (const method of ['stfpm', 'dcam'] as const) {
    itShared(`dcam train --steps 1 (${method}) reproduces PyTorch's update within 2e-3`, BOTTLE, async () => {
      const fx = loadFixture<{ names: string[]; selected: string[]; presets: Record<string, { selected_update: Record<string, FixtureTensor>; attention_update: FixtureTensor[] }> }>('train-step.json');
      const tsd = teacherStateDict();
      const init = perturbedStudent(tsd, fx.names);
      const initFile = join(tmp, `init-${method}.safetensors`);
      writeFileSync(initFile, writeSafetensors([...init]));
      const args = ['train', '--data', sharedPath('data/mvtec'), '--category', 'bottle', '--teacher', teacherFile(), '--method', method, '--size', '64',
        '--steps', '1', '--batch', '4', '--no-shuffle', '--lr', '0.1', '--init', initFile, '--out', join(tmp, `run-${method}`)];
      let attInit: Map<string, RawTensor> | null = null;
      if (method === 'dcam') {
        attInit = new Map();
        attentionTensorNames(createAttention(ctx.rt, 'channel', 0)).forEach(([name, t], i) => attInit!.set(name, attentionValue(i, [...t.shape])));
        const attFile = join(tmp, 'init-attention.safetensors');
        writeFileSync(attFile, writeSafetensors([...attInit]));
        args.push('--init-attention', attFile);
      }
      expect(await dcam(...args)).toBe(0);
      const after = readStateDict(readFileSync(join(tmp, `run-${method}`, 'student.safetensors')));
      const want = fx.presets[method];
      for (const name of fx.selected) {
        const a = toFloat32(after.get(name)!);
        const b = toFloat32(init.get(name)!);
        expect(relErr(Float64Array.from(a, (v, i) => v - b[i]), decode(want.selected_update[name])), name).toBeLessThan(2e-3);
      }
      if (attInit) {
        const att = readStateDict(readFileSync(join(tmp, `run-${method}`, 'attention.safetensors')));
        [...attInit.keys()].forEach((name, i) => {
          const a = toFloat32(att.get(name)!);
          const b = toFloat32(attInit!.get(name)!);
          expect(relErr(Float64Array.from(a, (v, j) => v - b[j]), decode(want.attention_update[i])), name).toBeLessThan(2e-3);
        });
      }
    });
  }
});
