/** Shared test helpers: one real WebGPU device per test file, comparisons, fixtures, finite differences. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { createDevice, describeAdapter, type Runtime, type CreateDeviceOptions } from '../src/index.js';
import { Rng } from '../src/nn/init.js';
import { setConvPolicy } from '../src/kernels/conv2d.js';
import type { ConvPolicy } from '../src/kernels/conv-plan.js';

/**
 * Creates the device before the file's tests (printing the adapter) and destroys it after. The runtime
 * poisons every new buffer with NaN, so an element a kernel forgets to write fails the comparison.
 */
export function useRuntime(options: CreateDeviceOptions = {}, convPolicy?: ConvPolicy): { rt: Runtime } {
  const holder = {} as { rt: Runtime };
  beforeAll(async () => {
    holder.rt = await createDevice({ poison: true, ...options });
    if (convPolicy) setConvPolicy(holder.rt, convPolicy);
    console.log(`[webgpu] ${describeAdapter(holder.rt)}`);
  });
  afterAll(() => holder.rt?.destroy());
  return holder;
}

/** max |got - want| / max |want| (the acceptance metric). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= maxErr)) maxErr = Number.isNaN(e) ? Infinity : e;
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return maxRef === 0 ? maxErr : maxErr / maxRef;
}

export function randn(rng: Rng, n: number, scale = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.fround(rng.normal() * scale);
  return a;
}

export interface FixtureTensor {
  shape: number[];
  f32: string;
}

export function decode(t: FixtureTensor): Float32Array {
  const buf = Buffer.from(t.f32, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

export function loadFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

/**
 * Central finite differences in float64 of L(x) = sum(f(inputs) * gradOut) with respect to inputs[k].
 */
export function finiteDifference(
  f: (inputs: Float64Array[]) => ArrayLike<number>,
  inputs: Float64Array[],
  k: number,
  gradOut: ArrayLike<number>,
  h = 1e-6,
): Float64Array {
  const loss = () => {
    const y = f(inputs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * gradOut[i];
    return s;
  };
  const x = inputs[k];
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + h;
    const lp = loss();
    x[i] = v - h;
    const lm = loss();
    x[i] = v;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

export { Rng };
