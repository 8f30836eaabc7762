/**
 * The README example: a device, tensors, a small conv net, a loss, backward, SGD steps, readback.
 * Run: npm run example
 */
import { backward, createDevice, describeAdapter, mean, mul, sub, SGD } from '../src/index.js';
import { Rng } from '../src/nn/init.js';
import { SmallNet } from './small-net.js';

export async function main(steps = 20): Promise<number[]> {
  const rt = await createDevice();
  console.log(`adapter: ${describeAdapter(rt)}`);

  // Tensors are NCHW float32 on the GPU; keep() makes them outlive tidy() scopes.
  const rng = new Rng(0);
  const x = rt.tensor(Float32Array.from({ length: 4 * 3 * 13 * 11 }, () => rng.normal()), [4, 3, 13, 11]).keep();
  const target = rt.tensor(Float32Array.from({ length: 4 * 4 * 4 * 3 }, () => rng.normal()), [4, 4, 4, 3]).keep();

  const net = new SmallNet(rt); // conv -> BN -> ReLU -> max pool -> residual block -> strided 1x1 conv
  const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });

  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    // Everything created inside tidy() is freed at its end, except the returned loss.
    const loss = rt.tidy(() => {
      const diff = sub(net.forward(x), target);
      const l = mean(mul(diff, diff)); // mean squared error
      backward(l); // gradients land in each parameter's .grad
      opt.step();
      opt.zeroGrad();
      return l;
    });
    losses.push(await loss.item()); // readback (waits for the GPU)
    loss.dispose();
  }
  console.log(`loss: ${losses[0].toFixed(4)} -> ${losses[losses.length - 1].toFixed(4)} in ${steps} steps`);
  console.log(`GPU memory: ${JSON.stringify(rt.memory())}`);
  rt.destroy();
  return losses;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
