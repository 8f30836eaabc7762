import { createDevice } from '../src/graph/device.js';
import { conv2dForward, PackedConvWeights } from '../src/kernels/conv2d.js';
const rt = await createDevice();
for (const [B, C, HW] of [[8, 64, 32], [8, 256, 8], [1, 128, 32]]) {
  const x = rt.tensor(Float32Array.from({ length: B * C * HW * HW }, (_, i) => Math.sin(i)), [B, C, HW, HW]).keep();
  const w = rt.tensor(Float32Array.from({ length: C * C * 9 }, (_, i) => Math.cos(i) * 0.05), [C, C, 3, 3]).keep();
  const p = PackedConvWeights.of(rt, w, { padding: 1 });
  conv2dForward(rt, x, p, null, { padding: 1 }).dispose(); await rt.sync();
  const { kernels } = await rt.profile(async () => { for (let i = 0; i < 3; i++) conv2dForward(rt, x, p, null, { padding: 1, relu: true }).dispose(); await rt.sync(); });
  console.log(B, C, HW, kernels.map((k) => `${k.kernel} ${k.ms.toFixed(1)}`).join(' | '));
}
rt.destroy();
