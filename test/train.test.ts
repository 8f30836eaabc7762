/**
 * Training end to end: a small conv net follows PyTorch's loss curve for 20 SGD steps (fixture from
 * tools/make_train_fixture.py) and 200 steps leave live GPU memory flat.
 */
import { describe, expect, it } from 'vitest';
import { backward, mean, mul, sub, SGD, type Tensor } from '../src/index.js';
import { SmallNet, type StateDict } from '../examples/small-net.js';
import { decode, loadFixture, relErr, Rng, randn, useRuntime, type FixtureTensor } from './helpers.js';

interface TrainFixture {
  lr: number;
  momentum: number;
  weight_decay: number;
  init: Record<string, FixtureTensor>;
  final: Record<string, FixtureTensor>;
  batches: FixtureTensor[];
  targets: FixtureTensor[];
  losses: number[];
}

const fx = loadFixture<TrainFixture>('small-net.json');
const ctx = useRuntime();

const toStateDict = (d: Record<string, FixtureTensor>): StateDict =>
  Object.fromEntries(Object.entries(d).map(([k, v]) => [k, { shape: v.shape, data: decode(v) }]));

function mseStep(net: SmallNet, opt: SGD, x: Tensor, t: Tensor): Tensor {
  return x.runtime.tidy(() => {
    const d = sub(net.forward(x), t);
    const loss = mean(mul(d, d));
    backward(loss);
    opt.step();
    opt.zeroGrad();
    return loss;
  });
}

describe('training a small conv net', () => {
  it('follows the PyTorch loss curve for 20 SGD steps (1e-3 relative) and ends at the same weights', async () => {
    const rt = ctx.rt;
    const net = new SmallNet(rt, toStateDict(fx.init));
    const opt = new SGD(net.parameters(), { lr: fx.lr, momentum: fx.momentum, weightDecay: fx.weight_decay });
    const xs = fx.batches.map((b) => rt.tensor(decode(b), b.shape).keep());
    const ts = fx.targets.map((b) => rt.tensor(decode(b), b.shape).keep());
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      const loss = mseStep(net, opt, xs[step % 2], ts[step % 2]);
      losses.push(await loss.item());
      loss.dispose();
    }
    console.log('loss curve (engine):', losses.map((l) => l.toFixed(5)).join(' '));
    for (let i = 0; i < 20; i++) {
      expect(Math.abs(losses[i] - fx.losses[i]) / Math.abs(fx.losses[i]), `step ${i}`).toBeLessThan(1e-3);
    }
    // Final parameters and running statistics, as a stronger check of every update.
    const named: Array<[string, Tensor]> = [
      ['conv1.weight', net.conv1.weight], ['bn1.running_mean', net.bn1.runningMean], ['bn3.running_var', net.bn3.runningVar],
      ['head.weight', net.head.weight], ['head.bias', net.head.bias!], ['bn2.weight', net.bn2.weight],
    ];
    for (const [name, t] of named) {
      expect(relErr(await t.read(), decode(fx.final[name])), name).toBeLessThan(2e-3);
    }
  });

  it('keeps live GPU memory flat over 200 steps', async () => {
    const rt = ctx.rt;
    const net = new SmallNet(rt, undefined, 3);
    const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    const rng = new Rng(5);
    const x = rt.tensor(Float32Array.from(randn(rng, 4 * 3 * 13 * 11)), [4, 3, 13, 11]).keep();
    const t = rt.tensor(Float32Array.from(randn(rng, 4 * 4 * 4 * 3)), [4, 4, 4, 3]).keep();
    const live: number[] = [];
    let last = NaN;
    for (let step = 0; step < 200; step++) {
      const loss = mseStep(net, opt, x, t);
      if (step % 50 === 49) last = await loss.item();
      loss.dispose();
      live.push(rt.memory().liveBytes);
    }
    expect(Number.isFinite(last)).toBe(true);
    const afterWarmup = live.slice(5);
    expect(Math.max(...afterWarmup)).toBe(Math.min(...afterWarmup));
    // The pool must also stop growing: buffers are recycled, not re-created.
    const pooled = rt.memory().pooledBytes;
    for (let step = 0; step < 20; step++) mseStep(net, opt, x, t).dispose();
    await rt.sync();
    expect(rt.memory().pooledBytes).toBe(pooled);
    console.log('memory after 220 steps:', rt.memory());
  });
});

describe('README example', () => {
  it('runs and the loss falls', async () => {
    const { main } = await import('../examples/quickstart.js');
    const losses = await main(10);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]).toBeLessThan(losses[0]);
  });
});
