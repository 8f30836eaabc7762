/** Loading a trained run (or loose checkpoint files) for evaluation and inference. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../graph/runtime.js';
import { preset, type MethodConfig } from '../model/config.js';
import { DistillationModel } from '../model/distill.js';
import { ResNetTrunk } from '../model/resnet.js';
import { readStateDict } from '../model/weights/index.js';
import { readRunConfig, TrainingError, type RunConfig } from './run-config.js';
import { loadTeacher, openRunTeacher } from './trainer.js';

export { readRunConfig, runDataDir } from './run-config.js';

export interface LoadedModel {
  model: DistillationModel;
  size: number;
  config: MethodConfig;
  run: RunConfig | null;
}

export async function loadRun(rt: Runtime, runDir: string, teacherOverride?: string, force = false): Promise<LoadedModel> {
  const run = readRunConfig(runDir);
  const studentPath = join(runDir, 'student.safetensors');
  if (!existsSync(studentPath)) throw new TrainingError(`${runDir} has no student.safetensors yet (training did not finish an epoch)`);
  const teacher = await openRunTeacher(rt, run, runDir, teacherOverride, force);
  let student: ResNetTrunk;
  try {
    student = ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(studentPath), studentPath), studentPath, false);
  } catch (e) {
    teacher.dispose();
    throw e;
  }
  const model = new DistillationModel(teacher, student, [], { ...run.method, attention: 'none' });
  await model.foldForInference();
  return { model, size: run.size, config: run.method, run };
}

export async function loadFiles(rt: Runtime, studentPath: string, teacherPath: string, method: string, size: number): Promise<LoadedModel> {
  const config = preset(method);
  const teacher = await loadTeacher(rt, teacherPath, 0);
  const student = ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(studentPath), studentPath), studentPath, false);
  const model = new DistillationModel(teacher, student, [], { ...config, attention: 'none' });
  await model.foldForInference();
  return { model, size, config, run: null };
}
