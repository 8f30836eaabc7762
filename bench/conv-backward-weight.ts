/**
 * Backward-weight of every ResNet18 conv1..layer3 convolution at batch 8, 128 px: median of 5 after a
 * warm-up, GPU drained around each; and the whole trunk weighted by how many convs share a shape.
 *
 *   npx tsx bench/conv-backward-weight.ts
 */
import { createDevice } from '../src/graph/device.js';
import { conv2dBackwardWeight, conv2dMacs } from '../src/kernels/conv2d.js';
import { time } from './lib/timing.js';
import { geometryOf, resnetConvShapes } from './sections/kernels.js';

const rt = await createDevice();
const B = 8;
const S = 128;
let total = 0;
let flops = 0;
for (const c of resnetConvShapes(S)) {
  const g = geometryOf(c, B);
  const x = rt.tensor(Float32Array.from({ length: B * c.cin * c.hw * c.hw }, (_, i) => Math.sin(i)), [B, c.cin, c.hw, c.hw]).keep();
  const dy = rt.tensor(Float32Array.from({ length: B * c.cout * g.OH * g.OW }, (_, i) => Math.cos(i)), [B, c.cout, g.OH, g.OW]).keep();
  const { median: ms } = await time(() => conv2dBackwardWeight(rt, dy, x, g).dispose(), () => rt.sync(), { warmup: 1, runs: 5 });
  console.log(`${c.name}: ${ms.toFixed(1)} ms ${((2 * conv2dMacs(g)) / (ms * 1e6)).toFixed(2)} GFLOP/s`);
  total += ms * c.count;
  flops += 2 * conv2dMacs(g) * c.count;
  x.dispose();
  dy.dispose();
}
console.log(`trunk backward-weight: ${total.toFixed(0)} ms, ${(flops / (total * 1e6)).toFixed(2)} GFLOP/s`);
rt.destroy();
