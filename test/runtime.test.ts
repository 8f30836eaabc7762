/** The runtime: buffer pool, scopes, batching, pipeline cache, and the errors users see. */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { conv2d, maxPool2d, add, relu, noGradCheck } from './runtime-helpers.js';
import { bucketSize } from '../src/graph/buffer-pool.js';
import { waitQuietly } from '../src/graph/host-wait.js';
import { ShaderCompileError } from '../src/graph/pipeline-cache.js';
import { registerShaderSources } from '../src/graph/shader-source.js';
import { backward, sum } from '../src/index.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();

describe('buffer pool', () => {
  it('buckets sizes: 256-byte multiples, then four buckets per power of two', () => {
    expect(bucketSize(1)).toBe(256);
    expect(bucketSize(1000)).toBe(1024);
    expect(bucketSize(1025)).toBe(1280);
    expect(bucketSize(5000)).toBe(5120);
    for (const n of [3000, 70_000, 1_000_003]) {
      expect(bucketSize(n)).toBeGreaterThanOrEqual(n);
      expect(bucketSize(n)).toBeLessThan(n * 1.26);
    }
  });

  it('recycles a released buffer only after the submit that used it', async () => {
    const rt = ctx.rt;
    await rt.sync();
    const a = rt.zeros([1000]);
    const buf = a.buffer;
    relu(a).dispose(); // recorded, not yet submitted, reads a
    a.dispose();
    const b = rt.empty([1000]);
    expect(b.buffer).not.toBe(buf); // a's buffer is still pending
    rt.flush();
    const c = rt.empty([1000]);
    expect(c.buffer).toBe(buf); // reusable after the submit
    b.dispose();
    c.dispose();
  });

  it('reports live and pooled bytes', async () => {
    const rt = ctx.rt;
    await rt.sync();
    const before = rt.memory();
    const t = rt.zeros([4096]);
    expect(rt.memory().liveBytes - before.liveBytes).toBe(16384);
    t.dispose();
    expect(rt.memory().liveBytes).toBe(before.liveBytes);
    expect(rt.memory().pooledBytes).toBeGreaterThanOrEqual(16384);
  });
});

describe('scopes and autograd bookkeeping', () => {
  it('tidy disposes everything but the result', async () => {
    const rt = ctx.rt;
    const x = rt.tensor([1, -2, 3, -4], [1, 1, 2, 2]).keep();
    const live0 = rt.memory().liveBytes;
    const y = rt.tidy(() => relu(add(relu(x), x)));
    expect(rt.memory().liveBytes - live0).toBe(256); // only y's buffer is left
    expect(Array.from(await y.read())).toEqual([2, 0, 6, 0]);
    y.dispose();
    x.dispose();
  });

  it('accumulates the gradient of a tensor used twice (residual) and frees the graph', async () => {
    const rt = ctx.rt;
    const x = rt.tensor([1, -2, 3, -4], [1, 1, 2, 2]).keep();
    x.requiresGrad = true;
    const live0 = rt.memory().liveBytes;
    rt.tidy(() => {
      const y = sum(add(relu(x), x)); // d/dx = [2, 1, 2, 1]
      backward(y);
    });
    expect(Array.from(await x.grad!.read())).toEqual([2, 1, 2, 1]);
    expect(rt.memory().liveBytes - live0).toBe(256); // x.grad only
    x.dispose();
  });

  it('ReLU keeps NaN (as PyTorch), so a diverging run is detected', async () => {
    const rt = ctx.rt;
    const y = rt.tidy(() => relu(rt.tensor([NaN, -1, 2, 0], [4])));
    const v = Array.from(await y.read());
    expect(Number.isNaN(v[0])).toBe(true);
    expect(v.slice(1)).toEqual([0, 2, 0]);
    y.dispose();
  });

  it('records nothing under noGrad', () => {
    expect(noGradCheck(ctx.rt)).toBe(true);
  });

  it('batches many dispatches per submit', async () => {
    const rt = ctx.rt;
    await rt.sync();
    const submits = rt.commands.submitCount;
    const dispatches = rt.commands.dispatchCount;
    rt.tidy(() => {
      let t = rt.zeros([64]);
      for (let i = 0; i < 50; i++) t = relu(t);
    });
    await rt.sync();
    expect(rt.commands.dispatchCount - dispatches).toBeGreaterThanOrEqual(50);
    expect(rt.commands.submitCount - submits).toBeLessThanOrEqual(2);
  });

  it('profiles GPU time per kernel with timestamp queries, and results are unchanged', async () => {
    const rt = ctx.rt;
    if (!rt.features.has('timestamp-query')) {
      await expect(rt.profile(() => 0)).rejects.toThrow(/timestamp-query/);
      return;
    }
    const x = rt.tensor(Float32Array.from({ length: 2 * 3 * 9 * 9 }, (_, i) => Math.sin(i)), [2, 3, 9, 9]).keep();
    const w = rt.tensor(Float32Array.from({ length: 5 * 3 * 3 * 3 }, (_, i) => Math.cos(i)), [5, 3, 3, 3]).keep();
    const plain = await rt.tidy(() => relu(conv2d(x, w, null, { padding: 1 }))).read();
    const { result, kernels } = await rt.profile(async () => {
      const y = rt.tidy(() => {
        let t = relu(conv2d(x, w, null, { padding: 1 }));
        for (let i = 0; i < 3; i++) t = relu(t);
        return t;
      });
      const data = await y.read();
      y.dispose();
      return data;
    });
    expect(Array.from(result)).toEqual(Array.from(plain));
    const byName = new Map(kernels.map((k) => [k.kernel, k]));
    expect(byName.get('unary')?.dispatches).toBe(4);
    expect(byName.get(rt.adapter.isSoftware ? 'winograd_gemm' : 'conv2d_forward')?.dispatches).toBeGreaterThanOrEqual(1);
    for (const k of kernels) expect(k.ms).toBeGreaterThanOrEqual(0);
    expect(kernels.reduce((a, k) => a + k.ms, 0)).toBeGreaterThan(0);
    // profiling is off again: one pass per batch
    expect(rt.commands.profiler).toBeNull();
    x.dispose();
    w.dispose();
  });
});

describe('pipeline cache', () => {
  it('compiles each kernel variant once', () => {
    const rt = ctx.rt;
    rt.tidy(() => relu(rt.zeros([10])));
    const n = rt.pipelines.size;
    rt.tidy(() => relu(rt.zeros([1000])));
    expect(rt.pipelines.size).toBe(n);
  });

  it('reports WGSL errors with file, line, column and the source line', async () => {
    const rt = ctx.rt;
    registerShaderSources({
      'broken_test_kernel.wgsl': '@compute @workgroup_size(WG_X)\nfn main() {\n  let a: f32 = 1.0;\n  y[0] = a + undefined_name;\n}\n',
    });
    const spec = { shader: 'broken_test_kernel', params: [], bindings: [{ name: 'y', access: 'read_write' as const }], workgroupSize: [1] as [number] };
    const err = await rt.pipelines.prepare(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/broken_test_kernel\.wgsl:4:\d+/);
    expect(msg).toContain('undefined_name');
    expect(msg).toContain('y[0] = a + undefined_name;');
  });
});

describe('errors name the op, the shapes and the limit', () => {
  it('conv2d with mismatched channels', () => {
    const rt = ctx.rt;
    rt.tidy(() => {
      expect(() => conv2d(rt.zeros([1, 3, 5, 5]), rt.zeros([4, 2, 3, 3]))).toThrow(/conv2d: input \[1, 3, 5, 5\] has 3 channels but weight \[4, 2, 3, 3\] expects 2/);
      expect(() => conv2d(rt.zeros([1, 3, 2, 2]), rt.zeros([4, 3, 5, 5]))).toThrow(/conv2d: kernel 5x5 .* does not fit input \[1, 3, 2, 2\]/);
      expect(() => conv2d(rt.zeros([3, 5, 5]), rt.zeros([4, 3, 3, 3]))).toThrow(/conv2d: input must have rank 4/);
      expect(() => add(rt.zeros([1, 3, 5, 5]), rt.zeros([1, 4, 1, 1]))).toThrow(/add: shapes \[1, 3, 5, 5\] and \[1, 4, 1, 1\] do not broadcast/);
      expect(() => maxPool2d(rt.zeros([1, 1, 1, 1]), { kernel: 3, stride: 2, padding: 0 })).toThrow(/maxpool2d: window 3 does not fit/);
    });
  });

  it('a tensor over the binding limit', () => {
    const rt = ctx.rt;
    const limit = rt.limits.maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1024;
    if (n * 4 > rt.limits.maxBufferSize) return; // adapter cannot even allocate it; covered below
    const big = rt.empty([n]);
    expect(() => relu(big)).toThrow(new RegExp(`relu: kernel unary: buffer 'x' of shape \\[${n}\\] needs \\d+ bytes, over the device limit maxStorageBufferBindingSize = ${limit}`));
    big.dispose();
  });

  it('a buffer over maxBufferSize', () => {
    const rt = ctx.rt;
    const n = Math.ceil(rt.limits.maxBufferSize / 4) + 1;
    expect(() => rt.empty([n], 'f32', 'huge test tensor')).toThrow(/huge test tensor: a buffer of \d+ bytes exceeds the device limit maxBufferSize/);
  });

  it('wrong data length and bad reshape', () => {
    const rt = ctx.rt;
    expect(() => rt.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
    const t = rt.zeros([2, 3]);
    expect(() => t.reshape([4])).toThrow(/cannot view \[2, 3\] \(6 elements\) as \[4\]/);
    t.dispose();
    expect(() => t.buffer).toThrow(/disposed/);
  });
});

describe('waiting for the GPU', () => {
  /** CPU time of the calling thread in ms (Linux: the scheduler's nanosecond count), or null elsewhere. */
  const threadCpuMs = (): number | null => {
    if (!existsSync('/proc/thread-self/schedstat')) return null;
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  };

  it("a device from Dawn's Node binding sleeps between polls", () => {
    expect(ctx.rt.hostWait).toBe('sleep');
  });

  it('the Node thread sleeps while a read waits for a long GPU job', async (t) => {
    const rt = ctx.rt;
    if (threadCpuMs() === null) t.skip(); // no per-thread CPU clock outside Linux
    // About 1.2 G multiply-adds: 0.2-0.6 s on lavapipe, a few ms on a GPU (then the bound is the 10 ms).
    const x = rt.full([1, 64, 64, 64], 0.01);
    const w = rt.full([64, 64, 3, 3], 0.01);
    await rt.sync();
    let y = x;
    for (let i = 0; i < 8; i++) {
      const next = conv2d(y, w, null, { stride: 1, padding: 1 });
      if (y !== x) y.dispose();
      y = next;
    }
    rt.flush();
    const cpu0 = threadCpuMs()!;
    const t0 = performance.now();
    const out = await y.read();
    const wallMs = performance.now() - t0;
    const cpuMs = threadCpuMs()! - cpu0;
    console.log(`[host wait] read after 8 convs: ${wallMs.toFixed(0)} ms waited, ${cpuMs.toFixed(1)} ms of the Node thread's CPU`);
    // Spinning, as Dawn's Node binding waits, costs 80-100% of the wait.
    expect(cpuMs).toBeLessThan(0.2 * wallMs + 10);
    // Each conv sums 576 products of 0.01 x (the previous value): the values stay finite and positive.
    expect(out.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    for (const tensor of [x, w, y]) tensor.dispose();
  });

  it('waitQuietly settles as the promise does', async () => {
    await expect(waitQuietly(Promise.resolve(42))).resolves.toBe(42);
    await expect(waitQuietly(Promise.reject(new Error('lost')))).rejects.toThrow('lost');
    const slow = new Promise((r) => setTimeout(() => r('late'), 30));
    await expect(Promise.all([waitQuietly(slow), waitQuietly(Promise.resolve(1))])).resolves.toEqual(['late', 1]);
  });
});
