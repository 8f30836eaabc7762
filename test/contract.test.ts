/**
 * The engine's contract (DESIGN.md "Kernels" and "Lifetimes"): kernels are bound by name and checked
 * against their spec, bind groups are cached, a gradient cannot go missing whatever the caller disposes,
 * and misuse of scopes fails loudly.
 */
import { describe, expect, it } from 'vitest';
import { backward, attachBackward } from '../src/autograd/engine.js';
import { add, mul, relu, sub, sum } from '../src/autograd/ops.js';
import { compileKernel, kernelVariants, read, write, type KernelSpec } from '../src/graph/kernel.js';
import type { Tensor } from '../src/graph/tensor.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();

/** y = a * x + (HAS_B ? b : 0), with an optional buffer and an optional parameter. */
const axpb = kernelVariants((hasB: boolean): KernelSpec => ({
  shader: 'unary',
  defines: { RELU: false, SIGMOID: false, VEC4: false, UNITS: 1 },
  params: [['units', 'u32'], ['a', 'f32'], ['b', 'f32']],
  bindings: [read('x'), write('y')],
  workgroupSize: [64],
}));

const withOptional = kernelVariants((hasBias: boolean): KernelSpec => ({
  shader: 'sum_splits',
  defines: { HAS_BIAS: hasBias, RESIDUAL: false, RELU: false },
  params: [['n', 'u32'], ['splits', 'u32'], ['OHW', 'u32', 'HAS_BIAS'], ['Cout', 'u32', 'HAS_BIAS']],
  bindings: [read('partial'), read('bias', 'f32', 'HAS_BIAS'), read('res', 'f32', 'RESIDUAL'), write('out')],
  workgroupSize: [64],
}));

describe('kernels bound by name', () => {
  it('runs a kernel with named parameters and buffers', async () => {
    const rt = ctx.rt;
    await rt.tidyAsync(async () => {
      const x = rt.tensor([1, 2, 3], [3]);
      const y = rt.empty([3]);
      rt.dispatch('test', axpb(false), { units: 3, a: 2, b: 0.5 }, { x, y }, [1]);
      expect(Array.from(await y.read())).toEqual([2.5, 4.5, 6.5]);
    });
  });

  it('names a misspelled, missing or mistyped parameter', () => {
    const rt = ctx.rt;
    rt.tidy(() => {
      const x = rt.zeros([3]);
      const y = rt.empty([3]);
      expect(() => rt.dispatch('test', axpb(false), { units: 3, a: 2, bb: 0 }, { x, y }, [1])).toThrow(/test: kernel unary: missing parameter 'b' \(takes units, a, b\)/);
      expect(() => rt.dispatch('test', axpb(false), { units: 3, a: 2, b: 0, scale: 1 }, { x, y }, [1])).toThrow(/unknown parameter 'scale'/);
      expect(() => rt.dispatch('test', axpb(false), { units: -3, a: 2, b: 0 }, { x, y }, [1])).toThrow(/parameter 'units' must be a u32, got -3/);
      expect(() => rt.dispatch('test', axpb(false), { units: 1.5, a: 2, b: 0 }, { x, y }, [1])).toThrow(/parameter 'units' must be a u32/);
    });
  });

  it('names a misspelled, missing, mistyped or aliased buffer', () => {
    const rt = ctx.rt;
    rt.tidy(() => {
      const x = rt.zeros([3]);
      const y = rt.empty([3]);
      const p = { units: 3, a: 1, b: 0 };
      expect(() => rt.dispatch('test', axpb(false), p, { x, out: y }, [1])).toThrow(/test: kernel unary: missing buffer 'y' \(takes x, y\)/);
      expect(() => rt.dispatch('test', axpb(false), p, { x, y, z: y }, [1])).toThrow(/unknown buffer 'z' \(takes x, y\)/);
      const idx = rt.empty([3], 'u32');
      expect(() => rt.dispatch('test', axpb(false), p, { x: idx, y }, [1])).toThrow(/buffer 'x' holds f32 values, got a u32 tensor of shape \[3\]/);
      expect(() => rt.dispatch('test', axpb(false), p, { x, y: x }, [1])).toThrow(/buffers 'x' and 'y' are the same storage, and one of them is written/);
    });
  });

  it('buffers and parameters exist per variant: required where their define is on, refused where it is off', async () => {
    const rt = ctx.rt;
    await rt.tidyAsync(async () => {
      const partial = rt.tensor([1, 2, 3, 4], [2, 2]); // 2 splits of 2 values, 1 channel of 2 pixels
      const bias = rt.tensor([10], [1]);
      const out = rt.empty([2]);
      rt.dispatch('test', withOptional(false), { n: 2, splits: 2 }, { partial, out }, [1]);
      expect(Array.from(await out.read())).toEqual([4, 6]);
      rt.dispatch('test', withOptional(true), { n: 2, splits: 2, OHW: 2, Cout: 1 }, { partial, bias, res: null, out }, [1]);
      expect(Array.from(await out.read())).toEqual([14, 16]);
      expect(() => rt.dispatch('test', withOptional(false), { n: 2, splits: 2 }, { partial, bias, out }, [1])).toThrow(
        /buffer 'bias' is given, but this variant of the kernel does not have it \(takes partial, out\)/,
      );
      expect(() => rt.dispatch('test', withOptional(true), { n: 2, splits: 2, OHW: 2, Cout: 1 }, { partial, out }, [1])).toThrow(/missing buffer 'bias'/);
      expect(() => rt.dispatch('test', withOptional(false), { n: 2, splits: 2, OHW: 2 }, { partial, out }, [1])).toThrow(/unknown parameter 'OHW' \(not in this variant\)/);
    });
  });

  it('computes a spec variant once: the same object, the same derived key', () => {
    expect(withOptional(true)).toBe(withOptional(true));
    expect(withOptional(true)).not.toBe(withOptional(false));
    expect(compileKernel(withOptional(true))).toBe(compileKernel(withOptional(true)));
    expect(compileKernel(withOptional(false)).bindings.map((b) => b.name)).toEqual(['partial', 'out']);
    expect(compileKernel(withOptional(true)).layoutSignature).toBe('16:r,r,w');
  });

  it('caches bind groups: repeating the same dispatches creates none, and a destroyed buffer leaves the cache', async () => {
    const rt = ctx.rt;
    const cache = rt.commands.bindGroups;
    const run = () => rt.tidy(() => {
      const x = rt.zeros([64]);
      relu(add(x, x)).dispose();
    });
    // Buffers released in one round are reused by the next, as in a training loop; the pool hands out
    // its oldest free buffer first, so from the second round on each tensor gets the same buffer.
    const round = () => {
      run();
      rt.flush();
    };
    for (let i = 0; i < 2; i++) round();
    const misses = cache.misses;
    for (let i = 0; i < 6; i++) round();
    expect(cache.misses).toBe(misses);
    const before = cache.size;
    rt.pool.trim(); // destroys every free buffer
    expect(cache.size).toBeLessThan(before);
    run(); // new buffers: new groups, and no group of a destroyed buffer is ever bound
    await rt.sync();
  });
});

describe('autograd cannot lose a gradient', () => {
  it('an intermediate the caller disposes keeps its node until backward has used it', async () => {
    const rt = ctx.rt;
    await rt.tidyAsync(async () => {
      const a = rt.tensor([1, 2], [2]);
      const b = rt.tensor([3, 5], [2]);
      a.requiresGrad = b.requiresGrad = true;
      const d = sub(a, b); // a - b
      const e = sub(b, a);
      const y = sum(mul(d, e)); // -(a - b)^2
      d.dispose();
      e.dispose();
      backward(y);
      // d/da = -2 (a - b), d/db = 2 (a - b)
      expect(Array.from(await a.grad!.read())).toEqual([4, 6]);
      expect(Array.from(await b.grad!.read())).toEqual([-4, -6]);
    });
  });

  it('the sub case of the issue: sum((a - b) * (b - a)) gives 8 and -8 for a = 1, b = 5 (it gave 4 and -4)', async () => {
    const rt = ctx.rt;
    await rt.tidyAsync(async () => {
      const a = rt.tensor([1], [1]);
      const b = rt.tensor([5], [1]);
      a.requiresGrad = b.requiresGrad = true;
      backward(sum(mul(sub(a, b), sub(b, a)))); // -(a - b)^2: d/da = -2 (a - b) = 8, d/db = -8
      expect(await a.grad!.item()).toBe(8);
      expect(await b.grad!.item()).toBe(-8);
    });
  });

  it('a graph whose intermediates were disposed and never backpropagated frees everything', async () => {
    const rt = ctx.rt;
    await rt.sync();
    const live = rt.memory().liveBytes;
    rt.tidy(() => {
      const a = rt.tensor([1, 2, 3], [3]);
      a.requiresGrad = true;
      let h: Tensor = a;
      for (let i = 0; i < 50; i++) {
        const next = relu(add(h, a));
        if (h !== a) h.dispose();
        h = next;
      }
      sum(h); // never backpropagated
    });
    expect(rt.memory().liveBytes).toBe(live);
  });

  it('a parameter disposed before backward is an error naming the op that needed it', () => {
    const rt = ctx.rt;
    rt.tidy(() => {
      const a = rt.tensor([1, 2], [2]);
      const w = rt.tensor([3, 4], [2]);
      w.requiresGrad = true;
      const y = sum(mul(a, w));
      w.dispose();
      expect(() => backward(y)).toThrow(/backward: a tensor \[2\] that requires a gradient \(input 1 of mul\) was disposed before backward/);
    });
  });

  it("a backward rule's results are checked: count, shapes and where gradients are needed", () => {
    const rt = ctx.rt;
    const bad = (rule: (g: Tensor) => Array<Tensor | null>, needB = true) => () =>
      rt.tidy(() => {
        const a = rt.tensor([1, 2], [2]);
        const b = rt.tensor([1, 2], [2]);
        a.requiresGrad = true;
        b.requiresGrad = needB;
        const y = attachBackward('badop', [a, b], rt.zeros([2]), (g) => rule(g));
        backward(y, rt.zeros([2]));
      });
    expect(bad((g) => [g.reshape([2])])).toThrow(/the backward rule of badop returned 1 gradient\(s\) for 2 input\(s\)/);
    expect(bad((g) => [g.reshape([2]), g.reshape([1, 2])])).toThrow(/badop returned a gradient of shape \[1, 2\] for input 1 of shape \[2\]/);
    expect(bad((g) => [g.reshape([2]), null])).toThrow(/badop returned no gradient for input 1, which requires one/);
    expect(bad((g) => [g.reshape([2]), g.reshape([2])], false)).toThrow(/badop returned a gradient for input 1, which does not require one/);
  });
});

describe('scopes fail loudly', () => {
  it('a tensor returned inside a class instance is an error, not a silent dispose', () => {
    const rt = ctx.rt;
    class Holder {
      constructor(readonly t: Tensor) {}
    }
    expect(() => rt.tidy(() => new Holder(rt.zeros([2])))).toThrow(/tidy: the result holds a tensor \[2\] inside a Holder/);
    const kept = rt.tidy(() => new Holder(rt.zeros([2]).keep())); // kept: fine
    kept.t.dispose();
  });

  it('tensors returned in arrays, plain objects, Maps and Sets survive the scope', async () => {
    const rt = ctx.rt;
    const r = rt.tidy(() => ({ list: [rt.zeros([1])], map: new Map([['m', rt.zeros([1])]]), set: new Set([rt.zeros([1])]) }));
    for (const t of [r.list[0], r.map.get('m')!, ...r.set]) {
      expect(t.isDisposed).toBe(false);
      t.dispose();
    }
  });

  it('two async scopes interleaved on one runtime are an error; Runtime.exclusive runs them one after another', async () => {
    const rt = ctx.rt;
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const session = (v: number) => rt.tidyAsync(async () => {
      const t = rt.full([2], v);
      await tick();
      return t.read();
    });
    const both = Promise.allSettled([session(1), session(2)]);
    const settled = await both;
    expect(settled.some((s) => s.status === 'rejected' && /tidyAsync scopes interleaved on one runtime/.test(String(s.reason)))).toBe(true);
    const [x, y] = await Promise.all([rt.exclusive(() => session(1)), rt.exclusive(() => session(2))]);
    expect(Array.from(x)).toEqual([1, 1]);
    expect(Array.from(y)).toEqual([2, 2]);
  });
});
