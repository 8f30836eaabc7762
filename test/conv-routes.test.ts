/**
 * The routing table is what runs: every trunk conv x pass x frozen / trained, planned for this device and
 * for a GPU with the same limits (src/model/conv-routes.ts), executed with real tensors, dispatches the
 * kernels of its plan (Winograd's transforms and one GEMM per chunk of images, or the direct kernel with
 * its split-K), and computes what the direct kernel computes.
 */
import { describe, expect, it } from 'vitest';
import type { RecordedOp } from '../src/graph/recording.js';
import { adapterCaps, conv2dBackwardData, conv2dBackwardWeight, conv2dForward, PackedConvWeights } from '../src/kernels/conv2d.js';
import type { AdapterCaps } from '../src/kernels/conv-plan.js';
import { routingTable, type RouteRow } from '../src/model/conv-routes.js';
import { Rng } from '../src/nn/init.js';
import { randn, relErr, useRuntime } from './helpers.js';

const ctx = useRuntime();

/** The shaders a function dispatches. */
function dispatched(fn: () => void): string[] {
  const rt = ctx.rt;
  const ops: RecordedOp[] = [];
  rt.commands.recordingTo = ops;
  try {
    fn();
  } finally {
    rt.commands.recordingTo = null;
  }
  return ops.flatMap((o) => (o.kind === 'dispatch' ? [o.kernel] : []));
}

const count = (list: string[], name: string) => list.filter((k) => k === name).length;

/** Runs one row's pass with its plan; returns the kernels dispatched and the result against the direct kernel's. */
async function runRow(r: RouteRow, seed: number): Promise<{ kernels: string[]; err: number }> {
  const rt = ctx.rt;
  const { g } = r;
  const rng = new Rng(seed);
  const t = (n: number, shape: number[], scale = 1) => rt.tensor(Float32Array.from(randn(rng, n, scale)), shape);
  return rt.tidyAsync(async () => {
    const x = t(g.N * g.Cin * g.H * g.W, [g.N, g.Cin, g.H, g.W]);
    const w = t(g.Cout * g.Cin * g.KH * g.KW, [g.Cout, g.Cin, g.KH, g.KW], 0.1);
    const dy = t(g.N * g.Cout * g.OH * g.OW, [g.N, g.Cout, g.OH, g.OW]);
    const opts = { stride: g.stride, padding: g.pad };
    let out!: ReturnType<typeof conv2dForward>;
    let want!: ReturnType<typeof conv2dForward>;
    let kernels: string[];
    if (r.pass === 'forward' && r.weights === 'frozen') {
      const packed = PackedConvWeights.of(rt, w, opts);
      kernels = dispatched(() => (out = conv2dForward(rt, x, packed, null, { ...opts, plan: r.plan })));
      want = conv2dForward(rt, x, w, null, { ...opts, algorithm: 'direct' });
      packed.dispose();
    } else if (r.pass === 'forward') {
      kernels = dispatched(() => (out = conv2dForward(rt, x, w, null, { ...opts, plan: r.plan })));
      want = conv2dForward(rt, x, w, null, { ...opts, algorithm: 'direct' });
    } else if (r.pass === 'backward-data') {
      kernels = dispatched(() => (out = conv2dBackwardData(rt, dy, w, g, { plan: r.plan })));
      want = conv2dBackwardData(rt, dy, w, g, { algorithm: 'direct' });
    } else {
      kernels = dispatched(() => (out = conv2dBackwardWeight(rt, dy, x, g, { plan: r.plan })));
      want = conv2dBackwardWeight(rt, dy, x, g, { algorithm: 'direct' });
    }
    return { kernels, err: relErr(await out.read(), await want.read()) };
  });
}

describe('conv routing table: the plans the planner prints are what the passes run', () => {
  const gpu = (caps: AdapterCaps): AdapterCaps => ({ ...caps, isSoftware: false });
  for (const [name, size, batch] of [['64 px, batch 2', 64, 2], ['96 px, batch 3', 96, 3]] as const) {
    it(`every trunk conv x pass x frozen / trained at ${name}, planned for this device and for a GPU`, async () => {
      const caps = adapterCaps(ctx.rt);
      let seed = 0;
      const seen = new Set<string>();
      for (const c of [caps, gpu(caps)]) {
        for (const r of routingTable(c, size, batch)) {
          const { kernels, err } = await runRow(r, seed++);
          const what = `${r.conv.conv} ${r.weights} ${r.pass} (${r.plan.algorithm}, ${r.plan.imagesPerChunk} a chunk, split ${r.plan.splits})`;
          seen.add(r.plan.algorithm);
          expect(err, what).toBeLessThan(1e-4);
          if (r.plan.algorithm === 'direct') {
            const kernel = r.pass === 'forward' ? 'conv2d_forward' : r.pass === 'backward-data' ? 'conv2d_backward_data' : 'conv2d_backward_weight';
            expect(count(kernels, kernel), what).toBe(1);
            expect(kernels.some((k) => k.startsWith('winograd')), what).toBe(false);
            // a split direct pass sums its partials
            expect(count(kernels, 'sum_splits') > 0, what).toBe(r.plan.splits > 1);
          } else {
            const chunks = Math.ceil(r.g.N / r.plan.imagesPerChunk);
            expect(count(kernels, 'winograd_gemm'), what).toBe(chunks);
            expect(count(kernels, 'winograd_input'), what).toBe(chunks);
            expect(kernels.some((k) => k.startsWith('conv2d_')), what).toBe(false);
            // frozen weights bring their transform; trained ones are transformed at each call
            expect(count(kernels, 'winograd_weights'), what).toBe(r.weights === 'frozen' || r.pass === 'backward-weight' ? 0 : 1);
            if (r.pass === 'backward-weight') expect(count(kernels, 'winograd_weight_grad'), what).toBe(1);
            else expect(count(kernels, 'winograd_output'), what).toBe(chunks);
          }
        }
      }
      // the table exercises Winograd over the phases and stride-1 tiles on this device, and direct on the GPU plan
      expect([...seen].sort(), 'algorithms planned').toEqual(expect.arrayContaining(['direct', 'winograd-f3x4-phases', 'winograd-f4x3']));
    }, 240_000);
  }
});
