/**
 * Time to first result of a fresh process (run by the benchmark as a child): from process start to the
 * first anomaly map read back, with the part spent creating the device, loading weights and compiling
 * pipelines (first map minus a second, warm one). Prints one JSON line.
 *
 *   node --import tsx bench/first-result.ts [--size 256] [--teacher FILE] [--conv3x3 direct|winograd]
 */
import { setConvPolicy } from '../src/kernels/conv2d.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createDevice } from '../src/graph/device.js';
import { preset } from '../src/model/config.js';
import { DistillationModel } from '../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../src/model/resnet.js';
import { readStateDict } from '../src/model/weights/index.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: '256' }, teacher: { type: 'string' }, conv3x3: { type: 'string' } } });
const size = Number(values.size);
const tStart = performance.now(); // ms since the process started (performance.timeOrigin)
const conv3x3 = values.conv3x3 === 'direct' || values.conv3x3 === 'winograd' ? values.conv3x3 : undefined;
const rt = await createDevice();
if (conv3x3) setConvPolicy(rt, { conv3x3 });
const tDevice = performance.now();
const f = values.teacher;
const trunk = f ? ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(f), f), f, false) : ResNetTrunk.random(rt, 7919);
const teacher = await FoldedTrunk.fromTrunk(trunk);
trunk.dispose();
const model = new DistillationModel(teacher, ResNetTrunk.random(rt, 1), [], preset('dcam', { attention: 'none' }));
await model.foldForInference();
const tWeights = performance.now();
const x = rt.tensor(new Float32Array(3 * size * size).fill(0.5), [1, 3, size, size]);
const mapOnce = async () => {
  const m = model.anomalyMap(x);
  await m.read();
  m.dispose();
};
await mapOnce();
const tFirst = performance.now();
await mapOnce();
const tSecond = performance.now();
console.log(
  JSON.stringify({
    moduleLoadMs: tStart,
    deviceMs: tDevice - tStart,
    weightsMs: tWeights - tDevice,
    firstMapMs: tFirst - tWeights,
    warmMapMs: tSecond - tFirst,
    toFirstResultMs: tFirst,
  }),
);
rt.destroy();
