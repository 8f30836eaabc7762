/** Closed-form students and attention weights shared with the fixture generators under tools/. */
import { readFileSync } from 'node:fs';
import { fromFloat32, readStateDict, type RawTensor } from '../src/model/weights/index.js';
import { shippedTeacher } from './shared.js';

export const teacherStateDict = () =>
  readStateDict(readFileSync(shippedTeacher), 'teacher');

/** The student of tools/make_model_fixtures.py `perturb`: the teacher's tensors perturbed, non-trivial BN stats. */
export function perturbedStudent(teacher: Map<string, RawTensor>, names: string[]): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  names.forEach((name, j) => {
    const t = teacher.get(name)!;
    const v = new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.byteLength));
    const p = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      if (name.endsWith('running_mean')) p[i] = 0.1 * Math.sin(0.11 * i + j);
      else if (name.endsWith('running_var')) p[i] = 1 + 0.5 * Math.abs(Math.cos(0.13 * i + j));
      else p[i] = v[i] * (1 + 0.25 * Math.sin(0.37 * i + 1.3 * j));
    }
    out.set(name, fromFloat32(p, t.shape));
  });
  return out;
}

/** Attention tensor number t (attention.safetensors order) of tools/make_train_step_fixture.py. */
export function attentionValue(t: number, shape: number[]): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return fromFloat32(Float32Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + 2.1 * t) / Math.sqrt(fanIn)), shape);
}
