/**
 * Recorded GPU sessions replayed (graph/recording.ts, train/step.ts): a replayed training step does
 * exactly what the step through autograd does (bit for bit), the buffers a recording binds are never
 * handed to other tensors, and bad replays are errors.
 */
import { describe, expect, it } from 'vitest';
import { Detector } from '../src/detector.js';
import { relu, scale, SGD } from '../src/index.js';
import { createAttention } from '../src/model/attention.js';
import { preset } from '../src/model/config.js';
import { DistillationModel } from '../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../src/model/resnet.js';
import { TrainStepper, trainStep } from '../src/train/step.js';
import { useRuntime } from './helpers.js';
import { teacherStateDict } from './model-helpers.js';

const ctx = useRuntime();

async function teacher() {
  const trunk = ResNetTrunk.fromStateDict(ctx.rt, teacherStateDict(), 'teacher', false);
  const folded = await FoldedTrunk.fromTrunk(trunk);
  trunk.dispose();
  return folded;
}

function studentModel(t: FoldedTrunk, method: 'stfpm' | 'dcam') {
  const rt = ctx.rt;
  const config = preset(method);
  const model = new DistillationModel(t, ResNetTrunk.random(rt, 7), createAttention(rt, config.attention, 3, config.reduction), config);
  const opt = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
  return { model, opt };
}

const batchOf = (step: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.013 * i + 1.7 * step));

describe('recorded training steps', () => {
  for (const method of ['stfpm', 'dcam'] as const) {
    it(`${method}: replayed steps equal steps through autograd, bit for bit`, async () => {
      const rt = ctx.rt;
      const t = await teacher();
      const replayed = studentModel(t, method);
      const plain = studentModel(t, method);
      const stepper = new TrainStepper(rt, replayed.model, replayed.opt);
      const [batch, size] = [2, 32];
      const replays: boolean[] = [];
      for (let s = 0; s < 4; s++) {
        const data = batchOf(s, batch * 3 * size * size);
        replays.push(stepper.willReplay(batch, size));
        const a = await stepper.step(data, batch, size);
        const b = await trainStep(rt, plain.model, plain.opt, data, batch, size);
        expect(a).toEqual(b);
      }
      // step 1 creates the momentum buffers, step 2 is recorded, 3 and 4 are replays
      expect(replays).toEqual([false, false, true, true]);
      const params = (m: DistillationModel) => m.parameters();
      for (const [i, p] of params(replayed.model).entries()) {
        expect(await p.read(), `parameter ${i}`).toEqual(await params(plain.model)[i].read());
      }
      const state = (o: SGD) => o.state();
      for (const [i, v] of state(replayed.opt).entries()) expect(await v!.read(), `momentum ${i}`).toEqual(await state(plain.opt)[i]!.read());
      const bn = (m: DistillationModel) => m.student.batchNormLayers();
      for (const [i, l] of bn(replayed.model).entries()) {
        expect(l.batchesTracked).toBe(bn(plain.model)[i].batchesTracked);
        expect(await l.runningMean.read()).toEqual(await bn(plain.model)[i].runningMean.read());
      }
      expect(replayed.opt.updates).toBe(4);
      // a new batch shape (an epoch's last, smaller batch) is recorded beside the first, which still replays
      const data = batchOf(9, 3 * 3 * size * size);
      expect(stepper.willReplay(3, size)).toBe(false);
      expect(await stepper.step(data, 3, size)).toEqual(await trainStep(rt, plain.model, plain.opt, data, 3, size));
      expect([stepper.willReplay(3, size), stepper.willReplay(batch, size)]).toEqual([true, true]);
      const again = batchOf(10, batch * 3 * size * size);
      expect(await stepper.step(again, batch, size)).toEqual(await trainStep(rt, plain.model, plain.opt, again, batch, size));
      stepper.dispose();
      for (const m of [replayed, plain]) (m.opt.dispose(), m.model.dispose());
      t.dispose();
    });
  }

  it('replaces a recording when the momentum buffers are replaced (a resumed run)', async () => {
    const rt = ctx.rt;
    const t = await teacher();
    const { model, opt } = studentModel(t, 'stfpm');
    const stepper = new TrainStepper(rt, model, opt);
    const data = batchOf(0, 2 * 3 * 32 * 32);
    for (let s = 0; s < 2; s++) await stepper.step(data, 2, 32);
    expect(stepper.willReplay(2, 32)).toBe(true);
    opt.loadState(await Promise.all(opt.state().map((v) => v!.read())));
    expect(stepper.willReplay(2, 32)).toBe(false);
    stepper.dispose();
    opt.dispose();
    model.dispose();
    t.dispose();
  });
});

describe('Runtime.record and Recording.replay', () => {
  it('replays with new inputs; the buffers it binds are never handed to other tensors', async () => {
    const rt = ctx.rt;
    const { result: y, recording } = await rt.record(async () =>
      rt.tidy(() => {
        const x = rt.tensor([1, -2, 3, -4], [4]);
        return scale(relu(scale(x, 2)), 0.5).keep();
      }),
    );
    expect(Array.from(await y.read())).toEqual([1, 0, 3, 0]);
    const input = recording.inputs()[0];
    // tensors made after the recording hold other buffers: a replay leaves them alone
    const others = Array.from({ length: 8 }, (_, i) => rt.full([4], 100 + i).keep());
    recording.replay([[input, new Float32Array([-1, 5, -3, 7])]]);
    expect(Array.from(await y.read())).toEqual([0, 5, 0, 7]);
    for (const [i, o] of others.entries()) expect(Array.from(await o.read())).toEqual([100 + i, 100 + i, 100 + i, 100 + i]);
    // the output disposed while the recording lives is kept for it, not reused
    y.dispose();
    const after = Array.from({ length: 8 }, (_, i) => rt.full([4], 200 + i).keep());
    recording.replay([[input, new Float32Array([1, 1, 1, 1])]]);
    for (const [i, o] of after.entries()) expect(Array.from(await o.read())).toEqual([200 + i, 200 + i, 200 + i, 200 + i]);
    expect(() => recording.replay([[input, new Float32Array(5)]])).toThrow(/has 20 bytes, the recorded session wrote 16/);
    expect(() => recording.replay([[others[0].buffer, new Float32Array(4)]])).toThrow(/was not written from the host .* not an input/);
    recording.dispose();
    expect(() => recording.replay()).toThrow(/disposed/);
    for (const o of [...others, ...after]) o.dispose();
  });

  it('refuses nested recordings and recordings inside a profile', async () => {
    const rt = ctx.rt;
    await expect(rt.record(() => rt.record(async () => 1))).rejects.toThrow(/a recording is already open/);
    if (rt.features.has('timestamp-query')) await expect(rt.profile(() => rt.record(async () => 1))).rejects.toThrow(/not while a profile is open/);
  });
});

  it('a replay under a profile times every dispatch it replays, and computes the same', async () => {
    const rt = ctx.rt;
    if (!rt.features.has('timestamp-query')) return; // reported by the profiler tests
    const session = () => rt.tidy(() => scale(relu(scale(rt.tensor([1, -2, 3, -4], [4]), 2)), 0.5).keep());
    const direct = await rt.profile(session);
    const { result: y, recording } = await rt.record(async () => session());
    // more dispatches than one query set holds: the replay spreads them over several command buffers
    const replays = Math.ceil(1100 / recording.dispatchCount);
    const { kernels } = await rt.profile(() => {
      for (let i = 0; i < replays; i++) recording.replay([[recording.inputs()[0], new Float32Array([-1, 5, -3, 7])]]);
    });
    const counts = (ks: typeof kernels) => Object.fromEntries(ks.map((k) => [k.kernel, k.dispatches]));
    expect(counts(kernels)).toEqual(Object.fromEntries(direct.kernels.map((k) => [k.kernel, k.dispatches * replays])));
    expect(kernels.every((k) => Number.isFinite(k.ms) && k.ms >= 0)).toBe(true);
    expect(Array.from(await y.read())).toEqual([0, 5, 0, 7]);
    recording.dispose();
    y.dispose();
    direct.result.dispose();
  });

describe('recorded inspections', () => {
  it('a detector replays each chunk size: the same maps as through the model; two sizes kept', async () => {
    const rt = ctx.rt;
    const t = await teacher();
    const make = async (replay: boolean) => {
      const d = await Detector.create(rt, t, ResNetTrunk.random(rt, 5), preset('stfpm'), 32, null, { runtime: false, teacher: false }, 4);
      d.replay = replay;
      return d;
    };
    const [replayed, plain] = [await make(true), await make(false)];
    const image = (k: number) => ({ width: 40, height: 36, data: Uint8Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 7 + k * 31) % 256) });
    // chunks of 4, 1, then 4 and 1 replayed, 2 (the recording of 4 is dropped), 1 replayed
    for (const images of [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9], [10, 11], [12]]) {
      const a = await replayed.inspect(images.map(image));
      const b = await plain.inspect(images.map(image));
      expect(a.map((r) => r.score)).toEqual(b.map((r) => r.score));
      a.forEach((r, i) => expect(r.map).toEqual(b[i].map));
    }
    expect((replayed as unknown as { recorded: Map<number, unknown> }).recorded.size).toBe(2);
    replayed.dispose();
    plain.dispose();
    t.dispose();
  });
});
