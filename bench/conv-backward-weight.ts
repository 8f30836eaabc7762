/**
 * Backward-weight of every ResNet18 conv1..layer3 convolution at batch 8, 128 px: median of 5 after a
 * warm-up, GPU drained around each; and the whole trunk weighted by how many convs share a shape.
 *
 *   npx tsx bench/conv-backward-weight.ts
 */
import { createDevice } from '../src/graph/device.js';
import { conv2dBackwardWeight, conv2dMacs, convGeometryOf } from '../src/kernels/conv2d.js';
import { resnetConvShapes } from './sections/kernels.js';
const rt = await createDevice();
const B = 8, S = 128;
let total = 0, flops = 0;
const rows: string[] = [];
for (const c of resnetConvShapes(S)) {
  const g = convGeometryOf([B, c.cin, c.hw, c.hw], [c.cout, c.cin, c.k, c.k], { stride: c.stride, padding: c.pad });
  const x = rt.tensor(Float32Array.from({ length: B * c.cin * c.hw * c.hw }, (_, i) => Math.sin(i)), [B, c.cin, c.hw, c.hw]).keep();
  const dy = rt.tensor(Float32Array.from({ length: B * c.cout * g.OH * g.OW }, (_, i) => Math.cos(i)), [B, c.cout, g.OH, g.OW]).keep();
  conv2dBackwardWeight(rt, dy, x, g).dispose(); await rt.sync();
  const ts: number[] = [];
  for (let r = 0; r < 5; r++) { const t0 = performance.now(); conv2dBackwardWeight(rt, dy, x, g).dispose(); await rt.sync(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  const ms = ts[2];
  const gf = (2 * conv2dMacs(g)) / (ms * 1e6);
  rows.push(`${c.name}: ${ms.toFixed(1)} ms ${gf.toFixed(2)} GFLOP/s`);
  total += ms * c.count; flops += 2 * conv2dMacs(g) * c.count;
  x.dispose(); dy.dispose();
}
console.log(rows.join('\n'));
console.log(`trunk backward-weight: ${total.toFixed(0)} ms, ${(flops / (total * 1e6)).toFixed(2)} GFLOP/s`);
rt.destroy();
