/**
 * The benchmark's network, the same in Node (bench/sections/model.ts) and in the browser page
 * (bench/browser/main.ts): the teacher (real weights when given, else a seeded random one), a seeded
 * random student, and seeded inputs, so every case and every peer computes the same thing.
 */
import type { Runtime } from '../../src/graph/runtime.js';
import { preset } from '../../src/model/config.js';
import { DistillationModel } from '../../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../../src/model/resnet.js';
import { readStateDict } from '../../src/model/weights/index.js';
import { Rng } from '../../src/nn/init.js';

/** The benchmark's student: seeded, so every case and every peer starts from the same weights. */
export const STUDENT_SEED = 1;
/** The random teacher's seed, when no weights are given. */
const RANDOM_TEACHER_SEED = 7919;

/** The teacher and the seeded student, as GPU trunks and as arrays. */
export interface Weights {
  teacher: FoldedTrunk;
  teacherSd: Map<string, Float32Array>;
  studentSd: Map<string, Float32Array>;
  source: string;
}

/** Weights from a teacher file's bytes (null: a seeded random teacher). */
export async function benchWeights(rt: Runtime, teacherFile: { bytes: Uint8Array; name: string } | null): Promise<Weights> {
  const trunk = teacherFile ? ResNetTrunk.fromStateDict(rt, readStateDict(teacherFile.bytes, teacherFile.name), teacherFile.name, false) : ResNetTrunk.random(rt, RANDOM_TEACHER_SEED);
  const teacherSd = await trunk.arrays();
  const teacher = FoldedTrunk.fromArrays(rt, teacherSd);
  trunk.dispose();
  const student = ResNetTrunk.random(rt, STUDENT_SEED);
  const studentSd = await student.arrays();
  student.dispose();
  return { teacher, teacherSd, studentSd, source: teacherFile?.name ?? 'random teacher (no weights file found)' };
}

/** The inference network: teacher + the seeded student (BN folded) + the dcam preset's anomaly map. */
export async function inferenceModel(rt: Runtime, w: Weights): Promise<DistillationModel> {
  const model = new DistillationModel(w.teacher, ResNetTrunk.random(rt, STUDENT_SEED), [], preset('dcam', { attention: 'none' }));
  await model.foldForInference();
  return model;
}

/** `n` seeded standard-normal values: an input batch every engine gets alike. */
export function benchInputs(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}
