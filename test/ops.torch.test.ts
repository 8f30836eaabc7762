/**
 * Every op against PyTorch 1.13 (fixtures from tools/make_op_fixtures.py): forward output and the
 * gradient of sum(output * grad_out) with respect to each input, within 1e-4 relative.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../src/autograd/ops.js';
import { backward } from '../src/autograd/engine.js';
import { SGD } from '../src/optim/sgd.js';
import type { Runtime, Tensor } from '../src/index.js';
import { decode, loadFixture, relErr, useRuntime, type FixtureTensor } from './helpers.js';

interface Case {
  op: string;
  config: Record<string, unknown>;
  inputs: Record<string, FixtureTensor>;
  grad_out: FixtureTensor;
  output: FixtureTensor;
  grads: Record<string, FixtureTensor>;
  [extra: string]: unknown;
}

const fixture = loadFixture<{ cases: Case[] }>('ops.json');
const TOL = 1e-4;
const ctx = useRuntime();

function upload(rt: Runtime, t: FixtureTensor, requiresGrad: boolean): Tensor {
  const x = rt.tensor(decode(t), t.shape);
  x.requiresGrad = requiresGrad;
  return x;
}

/** Runs the op on the GPU given the uploaded inputs. */
function run(c: Case, x: Record<string, Tensor>, rt: Runtime): Tensor {
  const cfg = c.config as Record<string, never>;
  switch (c.op) {
    case 'conv2d': return ops.conv2d(x.x, x.weight, x.bias ?? null, { stride: cfg.stride, padding: cfg.padding });
    case 'batchnorm2d': {
      const state = {
        weight: x.weight, bias: x.bias,
        runningMean: rt.tensor(decode(c.running_mean_in as FixtureTensor), [x.weight.size]),
        runningVar: rt.tensor(decode(c.running_var_in as FixtureTensor), [x.weight.size]),
      };
      (c as { _state?: unknown })._state = state;
      return ops.batchNorm2d(x.x, state, { training: cfg.training, momentum: cfg.momentum, eps: cfg.eps });
    }
    case 'relu': return ops.relu(x.x);
    case 'sigmoid': return ops.sigmoid(x.x);
    case 'maxpool2d': return ops.maxPool2d(x.x, { kernel: cfg.kernel, stride: cfg.stride, padding: cfg.padding });
    case 'add': return ops.add(x.a, x.b);
    case 'mul': return ops.mul(x.a, x.b);
    case 'global_avg_pool': return ops.globalAvgPool2d(x.x);
    case 'global_max_pool': return ops.globalMaxPool2d(x.x);
    case 'channel_mean': return ops.channelMean(x.x);
    case 'channel_max': return ops.channelMax(x.x);
    case 'channel_mean_max': return ops.channelMeanMax(x.x);
    case 'linear': return ops.linear(x.x, x.weight);
    case 'cosine': return ops.cosineSimilarity(x.a, x.b, cfg.axis, cfg.eps);
    case 'softmax': return ops.softmaxSpatial(x.x);
    case 'log_softmax': return ops.logSoftmaxSpatial(x.x);
    case 'kl_spatial': return ops.klDivSpatial(x.t, x.s, cfg.T);
    case 'sum': return ops.sum(x.x);
    case 'mean': return ops.mean(x.x);
    case 'upsample_bilinear': return ops.upsampleBilinear(x.x, cfg.size);
    default: throw new Error(`no runner for ${c.op}`);
  }
}

describe('ops match PyTorch (forward and gradients)', () => {
  fixture.cases.filter((c) => c.op !== 'sgd').forEach((c, i) => {
    const shapes = Object.entries(c.inputs).map(([k, v]) => `${k}[${v.shape}]`).join(' ');
    it(`${c.op} #${i} ${JSON.stringify(c.config)} ${shapes}`, async () => {
      const rt = ctx.rt;
      await rt.tidyAsync(async () => {
        const x: Record<string, Tensor> = {};
        for (const [k, v] of Object.entries(c.inputs)) x[k] = upload(rt, v, k in c.grads);
        const y = run(c, x, rt);
        expect(y.shape).toEqual(c.output.shape);
        const out = await y.read();
        expect(relErr(out, decode(c.output))).toBeLessThan(TOL);
        if (c.op === 'batchnorm2d') {
          const st = (c as unknown as { _state: { runningMean: Tensor; runningVar: Tensor } })._state;
          expect(relErr(await st.runningMean.read(), decode(c.running_mean_out as FixtureTensor))).toBeLessThan(TOL);
          expect(relErr(await st.runningVar.read(), decode(c.running_var_out as FixtureTensor))).toBeLessThan(TOL);
        }
        const g = rt.tensor(decode(c.grad_out), c.grad_out.shape);
        backward(y, g);
        for (const [k, want] of Object.entries(c.grads)) {
          const got = x[k].grad;
          expect(got, `gradient of ${k}`).not.toBeNull();
          expect(got!.shape).toEqual(want.shape);
          const err = relErr(await got!.read(), decode(want));
          expect(err, `gradient of ${k}`).toBeLessThan(TOL);
        }
        for (const t of Object.values(x)) t.grad?.dispose();
      });
    });
  });

  it('sgd: three steps match torch.optim.SGD (momentum, weight decay)', async () => {
    const c = fixture.cases.find((k) => k.op === 'sgd')!;
    const rt = ctx.rt;
    const cfg = c.config as { lr: number; momentum: number; weight_decay: number };
    const p = upload(rt, c.inputs.param, true).keep();
    const opt = new SGD([p], { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weight_decay });
    const steps = c.steps as FixtureTensor[];
    const traj = c.trajectory as FixtureTensor[];
    for (let s = 0; s < steps.length; s++) {
      p.grad = rt.tensor(decode(steps[s]), steps[s].shape).keep();
      opt.step();
      opt.zeroGrad();
      expect(relErr(await p.read(), decode(traj[s]))).toBeLessThan(TOL);
    }
    opt.dispose();
    p.dispose();
  });
});
