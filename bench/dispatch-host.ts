/**
 * Host cost per dispatch: the CPU time the engine spends recording one kernel dispatch (spec lookup,
 * parameter packing, bind group, encoder calls), measured on the synchronous part of three workloads,
 * GPU waits excluded. This is what decides a step's wall time on a fast GPU, where the kernels
 * themselves take less time than recording them. The last case replays a recorded step (graph/recording.ts),
 * which includes its submit.
 *
 *   npx tsx bench/dispatch-host.ts [--repeats 30] [--out bench/results/dispatch-host.json]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { backward } from '../src/autograd/engine.js';
import { add } from '../src/autograd/ops.js';
import { createDevice } from '../src/graph/device.js';
import type { Runtime } from '../src/graph/runtime.js';
import { preset } from '../src/model/config.js';
import { DistillationModel } from '../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../src/model/resnet.js';
import { Rng } from '../src/nn/init.js';
import { SGD } from '../src/optim/sgd.js';

interface Case {
  name: string;
  dispatches: number;
  /** Median over repeats of the recording time, and per dispatch. */
  hostMs: number;
  usPerDispatch: number;
}

/** Median host time of `record` (synchronous), with the GPU drained between repeats. */
async function measure(rt: Runtime, name: string, repeats: number, record: () => void, fixedDispatches?: number): Promise<Case> {
  const times: number[] = [];
  let dispatches = 0;
  for (let i = 0; i < repeats + 2; i++) {
    await rt.sync();
    const d0 = rt.commands.dispatchCount;
    const t0 = performance.now();
    record();
    const t1 = performance.now();
    dispatches = fixedDispatches ?? rt.commands.dispatchCount - d0;
    if (i >= 2) times.push(t1 - t0); // two warm-up rounds compile the pipelines
  }
  await rt.sync();
  times.sort((a, b) => a - b);
  const hostMs = times[Math.floor(times.length / 2)];
  return { name, dispatches, hostMs, usPerDispatch: (1000 * hostMs) / dispatches };
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--repeats <n>', 'timed repeats per case', '30')
    .option('--out <file>', 'JSON results', 'bench/results/dispatch-host.json')
    .parse()
    .opts<{ repeats: string; out: string }>();
  const repeats = Number(opts.repeats);
  // No submit while recording (but when the 64 KB parameter arena fills): on a software adapter the
  // GPU work of a submitted batch runs on the same CPU cores and would be counted as host time.
  const rt = await createDevice({ dispatchesPerSubmit: 1_000_000 });
  const cases: Case[] = [];

  const a = rt.tensor(new Float32Array(1024).fill(1), [1024]).keep();
  const b = rt.tensor(new Float32Array(1024).fill(2), [1024]).keep();
  cases.push(await measure(rt, '1000 elementwise adds (1024 values)', repeats, () => rt.tidy(() => {
    for (let i = 0; i < 1000; i++) add(a, b).dispose();
  })));

  const teacherTrunk = ResNetTrunk.random(rt, 3);
  const teacher = FoldedTrunk.fromArrays(rt, await teacherTrunk.arrays());
  teacherTrunk.dispose();
  const x = rt.tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [2, 3, 32, 32]).keep();
  cases.push(await measure(rt, 'folded ResNet18 trunk forward, batch 2, 32 px', repeats, () => rt.tidy(() => teacher.forward(x).forEach((f) => f.dispose()))));

  const config = preset('stfpm');
  const model = new DistillationModel(teacher, ResNetTrunk.random(rt, 1), [], config);
  const opt = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
  const rng = new Rng(5);
  const data = Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.normal());
  const trainingStep = () => rt.tidy(() => {
    const input = rt.tensor(data, [2, 3, 32, 32]);
    const { loss } = model.trainLoss(input);
    backward(loss);
    opt.step();
    opt.zeroGrad();
  });
  cases.push(await measure(rt, 'stfpm training step (loss, backward, SGD), batch 2, 32 px', repeats, trainingStep));

  // The same step recorded once and replayed (train/step.ts does this from a run's third step on): the
  // replay re-encodes the recorded dispatches and submits them; no autograd, no parameter packing.
  const { recording } = await rt.record(async () => trainingStep());
  const input = recording.inputs()[0];
  cases.push(await measure(rt, 'the same step, recorded and replayed', repeats, () => recording.replay([[input, data]]), recording.dispatchCount));
  recording.dispose();

  // An inspection's GPU part (anomaly map of the teacher and the folded student), as Detector.inspect
  // records it on first use of a batch size and replays it after
  const inspect = new DistillationModel(teacher, ResNetTrunk.random(rt, 2), [], config);
  await inspect.foldForInference();
  const pixels = data.subarray(0, 3 * 32 * 32);
  const image = rt.tensor(pixels, [1, 3, 32, 32]).keep();
  cases.push(await measure(rt, 'anomaly map (teacher, folded student, map), batch 1, 32 px', repeats, () => rt.tidy(() => inspect.anomalyMap(image).dispose())));
  const inspection = await rt.record(async () => rt.tidy(() => inspect.anomalyMap(rt.tensor(pixels, [1, 3, 32, 32])).dispose()));
  const imageInput = inspection.recording.inputs()[0];
  cases.push(await measure(rt, 'the same map, recorded and replayed', repeats, () => inspection.recording.replay([[imageInput, pixels]]), inspection.recording.dispatchCount));
  inspection.recording.dispose();

  const bg = rt.commands.bindGroups;
  const bindGroups = { hits: bg.hits, misses: bg.misses };
  console.log(`bind groups over all cases: ${bg.hits} cache hits, ${bg.misses} created`);
  const result = { adapter: rt.adapter.description || rt.adapter.device, date: new Date().toISOString(), repeats, cases, bindGroups };
  for (const c of cases) console.log(`${c.name}: ${c.dispatches} dispatches, ${c.hostMs.toFixed(2)} ms host, ${c.usPerDispatch.toFixed(1)} us/dispatch`);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
  rt.destroy();
}

await main();
