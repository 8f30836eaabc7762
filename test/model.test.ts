/**
 * The ResNet18 trunk and the anomaly maps against PyTorch (tools/make_model_fixtures.py): teacher from the
 * shipped ImageNet weights, a student with non-trivial BN statistics, two real bottle images at 64x64.
 */
import { describe, expect, it } from 'vitest';
import { anomalyMap } from '../src/model/anomaly-map.js';
import { FoldedTrunk, ResNetTrunk, trunkTensorShapes } from '../src/model/resnet.js';
import { fromFloat32, type RawTensor } from '../src/model/weights/index.js';
import { decode, loadFixture, relErr, useRuntime, type FixtureTensor } from './helpers.js';
import { perturbedStudent, teacherStateDict } from './model-helpers.js';

interface ModelFixture {
  size: number;
  names: string[];
  input: FixtureTensor;
  teacher: FixtureTensor[];
  student_f3: FixtureTensor;
  map_sum: FixtureTensor;
  map_product: FixtureTensor;
}

const fx = loadFixture<ModelFixture>('model-forward.json');
const ctx = useRuntime();
const studentStateDict = (teacher: Map<string, RawTensor>) => perturbedStudent(teacher, fx.names);

describe('ResNet18 trunk and anomaly maps match PyTorch', () => {
  it('teacher features (eval BN, and BN folded into the convs)', async () => {
    const rt = ctx.rt;
    const teacher = ResNetTrunk.fromStateDict(rt, teacherStateDict(), 'teacher', false);
    teacher.setTraining(false);
    const folded = await FoldedTrunk.fromTrunk(teacher);
    await rt.tidyAsync(async () => {
      const x = rt.tensor(decode(fx.input), fx.input.shape);
      const feats = rt.noGrad(() => teacher.forward(x));
      const foldedFeats = folded.forward(x);
      for (let k = 0; k < 3; k++) {
        expect(feats[k].shape).toEqual(fx.teacher[k].shape);
        expect(relErr(await feats[k].read(), decode(fx.teacher[k])), `level ${k + 1}`).toBeLessThan(1e-3);
        expect(relErr(await foldedFeats[k].read(), decode(fx.teacher[k])), `folded level ${k + 1}`).toBeLessThan(1e-3);
      }
    });
    folded.dispose();
    teacher.dispose();
  });

  it('anomaly maps, sum (dcam) and product (stfpm), and the student features', async () => {
    const rt = ctx.rt;
    const tsd = teacherStateDict();
    const teacher = await FoldedTrunk.fromTrunk(ResNetTrunk.fromStateDict(rt, tsd, 'teacher', false));
    const student = ResNetTrunk.fromStateDict(rt, studentStateDict(tsd), 'student');
    student.setTraining(false);
    await rt.tidyAsync(async () => {
      const x = rt.tensor(decode(fx.input), fx.input.shape);
      const ft = teacher.forward(x);
      const fs = rt.noGrad(() => student.forward(x));
      expect(relErr(await fs[2].read(), decode(fx.student_f3))).toBeLessThan(1e-3);
      for (const [agg, want] of [['sum', fx.map_sum], ['product', fx.map_product]] as const) {
        const map = anomalyMap(ft, fs, [fx.size, fx.size], agg);
        expect(map.shape).toEqual(want.shape);
        expect(relErr(await map.read(), decode(want)), agg).toBeLessThan(1e-3);
      }
    });
    teacher.dispose();
    student.dispose();
  });

  it('a state_dict with missing or wrongly shaped tensors is refused with every problem listed', () => {
    const rt = ctx.rt;
    const sd = teacherStateDict();
    sd.delete('layer2.0.downsample.0.weight');
    sd.set('layer3.1.conv2.weight', fromFloat32(new Float32Array(9), [1, 1, 3, 3]));
    expect(() => ResNetTrunk.fromStateDict(rt, sd, 'broken.safetensors')).toThrow(
      /broken\.safetensors: not a ResNet18 \(conv1\.\.layer3\) state_dict: 2 problem\(s\):\n {2}missing layer2\.0\.downsample\.0\.weight \[128,64,1,1\]\n {2}layer3\.1\.conv2\.weight: expected \[256,256,3,3\], found \[1,1,3,3\]/,
    );
  });

  it('saves a state_dict with torchvision names, running statistics and num_batches_tracked', async () => {
    const rt = ctx.rt;
    const trunk = ResNetTrunk.random(rt, 0);
    const sd = await trunk.stateDict();
    const names = sd.map(([n]) => n);
    expect(names).toContain('layer2.0.downsample.1.running_var');
    expect(names).toContain('layer3.1.bn2.num_batches_tracked');
    expect(names.filter((n) => !n.endsWith('num_batches_tracked'))).toEqual(trunkTensorShapes().map(([n]) => n));
    trunk.dispose();
  });
});
