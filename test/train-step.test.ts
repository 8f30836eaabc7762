/**
 * One SGD step of both presets against PyTorch (tools/make_train_step_fixture.py), on two batches: the
 * loss terms, and the update (new - init) of student weights, BN running statistics and attention
 * weights, within 2e-3.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../src/index.js';
import { attentionTensorNames, createAttention, loadAttention } from '../src/model/attention.js';
import { preset } from '../src/model/config.js';
import { createOptimizer, DistillationModel } from '../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../src/model/resnet.js';
import { toFloat32, type RawTensor } from '../src/model/weights/index.js';
import { decode, loadFixture, relErr, useRuntime, type FixtureTensor } from './helpers.js';
import { attentionValue, perturbedStudent, teacherStateDict } from './model-helpers.js';

interface PresetResult {
  loss: number;
  terms: Record<string, number>;
  selected_update: Record<string, FixtureTensor>;
  update_sum: Record<string, number>;
  update_norm: Record<string, number>;
  attention_update: FixtureTensor[];
}
interface StepFixture {
  names: string[];
  input: FixtureTensor;
  presets: Record<'stfpm' | 'dcam', PresetResult>;
}

// two batches of 4 bottle images at 64 px: training images, and three defect images with one training image
// (tools/make_train_step_fixture.py --images test/broken_large/000,test/contamination/001,test/broken_small/002,train/good/100)
const FIXTURES = [['train-step.json', '4 training images'], ['train-step-defects.json', '3 defect images and a training image']] as const;
// the fixtures' maps (16x16 and less at 64 px) take F(2x2, 3x3) in the trained forward by default; the second
// runtime takes F(3x3, 3x3) there in every layer, as maps of 32 and more do (conv-plan.ts: RULES.trainedForwardTile)
const RUNTIMES = [['default tiles', useRuntime()], ['F(3x3, 3x3) in every trained forward', useRuntime({}, { trainedForwardTile: 3 })]] as const;
const CASES = FIXTURES.flatMap(([file, what]) => RUNTIMES.map(([tiles, ctx]) => [file, what, tiles, ctx] as const));
const TOL = 2e-3;

/**
 * One step of `method` from the fixture's initial weights, compared with PyTorch's. `attentionLrScale`: the
 * attention steps at that fraction of the lr, so its first update (SGD's is linear in the lr) is that
 * fraction of PyTorch's and the student's is unchanged.
 */
async function stepAndCompare(ctx: ReturnType<typeof useRuntime>, fx: StepFixture, method: 'stfpm' | 'dcam', attentionLrScale = 1): Promise<void> {
  const rt = ctx.rt;
  const want = fx.presets[method];
  const tsd = teacherStateDict();
  const teacherTrunk = ResNetTrunk.fromStateDict(rt, tsd, 'teacher', false);
  const teacher = await FoldedTrunk.fromTrunk(teacherTrunk);
  teacherTrunk.dispose();
  const studentInit = perturbedStudent(tsd, fx.names);
  const student = ResNetTrunk.fromStateDict(rt, studentInit, 'student');
  const config = preset(method, { lr: 0.1, attentionLrScale });
  const attention = createAttention(rt, config.attention, 0);
  const attInit = new Map<string, RawTensor>();
  attentionTensorNames(attention).forEach(([name, t], i) => attInit.set(name, attentionValue(i, [...t.shape])));
  loadAttention(attention, attInit);
  const model = new DistillationModel(teacher, student, attention, config);
  const opt = createOptimizer(model);

  const terms = await rt.tidyAsync(async () => {
    const x = rt.tensor(decode(fx.input), fx.input.shape);
    const { loss, terms } = model.trainLoss(x);
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(terms)) values[k] = await v.item();
    values.loss = await loss.item();
    backward(loss);
    opt.step();
    opt.zeroGrad();
    return values;
  });
  expect(Math.abs(terms.loss - want.loss) / want.loss).toBeLessThan(1e-4);
  for (const [k, v] of Object.entries(want.terms)) expect(Math.abs(terms[k] - v) / Math.abs(v), k).toBeLessThan(1e-4);

  const after = new Map(await student.stateDict());
  for (const name of fx.names) {
    const init = toFloat32(studentInit.get(name)!);
    const now = toFloat32(after.get(name)!);
    const upd = Float64Array.from(now, (v, i) => v - init[i]);
    const norm = Math.sqrt(upd.reduce((a, v) => a + v * v, 0));
    const sum = upd.reduce((a, v) => a + v, 0);
    const wantNorm = want.update_norm[name];
    expect(Math.abs(norm - wantNorm) / wantNorm, `${name} |update|`).toBeLessThan(TOL);
    expect(Math.abs(sum - want.update_sum[name]), `${name} sum(update)`).toBeLessThan(TOL * wantNorm * Math.sqrt(upd.length));
    const sel = want.selected_update[name];
    if (sel) expect(relErr(upd, decode(sel)), `${name} update`).toBeLessThan(TOL);
  }
  const attNow = attentionTensorNames(attention);
  for (let i = 0; i < attNow.length; i++) {
    const [name, t] = attNow[i];
    const init = toFloat32(attInit.get(name)!);
    const now = await t.read();
    expect(relErr(Float64Array.from(now, (v, j) => v - init[j]), decode(want.attention_update[i]).map((v) => v * attentionLrScale)), `${name} update`).toBeLessThan(TOL);
  }
  expect(attNow.length).toBe(want.attention_update.length);
  opt.dispose();
  student.dispose();
  teacher.dispose();
  for (const [, t] of attNow) t.dispose();
}

describe.each(CASES)('one training step matches PyTorch (%s: %s; %s)', (file, _what, _tiles, ctx) => {
  const fx = loadFixture<StepFixture>(file);
  for (const method of ['stfpm', 'dcam'] as const) {
    it(`${method}: loss terms and the update of every student and attention tensor`, () => stepAndCompare(ctx, fx, method));
  }
});

describe('the attention at its own lr (attentionLrScale)', () => {
  it('dcam: the attention\'s update scales by it, the student\'s does not', () => stepAndCompare(RUNTIMES[0][1], loadFixture<StepFixture>(FIXTURES[0][0]), 'dcam', 0.25));
});
