/** Loading a trained run (or loose checkpoint files) for evaluation and inference. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../graph/runtime.js';
import { preset, type MethodConfig } from '../model/config.js';
import { DistillationModel } from '../model/distill.js';
import { ResNetTrunk } from '../model/resnet.js';
import { readStateDict } from '../model/weights/index.js';
import { findTeacher, loadTeacher, TrainingError, type RunConfig } from './trainer.js';

export interface LoadedModel {
  model: DistillationModel;
  size: number;
  config: MethodConfig;
  run: RunConfig | null;
}

/**
 * The run's teacher: `override` if given, else the file recorded in config.json if it is still there,
 * else the default teacher (DCAM_TEACHER, ../shared/weights); a run trained with a random teacher gets it back.
 */
function runTeacher(run: RunConfig, runDir: string, override?: string): string | null {
  if (override) return override;
  if (!run.teacher.file) return null;
  if (existsSync(run.teacher.file)) return run.teacher.file;
  const found = findTeacher();
  if (!found) {
    throw new TrainingError(`${runDir}: its teacher ${run.teacher.file} is not on this machine; pass --teacher FILE (the same ImageNet ResNet18)`);
  }
  return found;
}

export async function loadRun(rt: Runtime, runDir: string, teacherOverride?: string): Promise<LoadedModel> {
  const cfgPath = join(runDir, 'config.json');
  const studentPath = join(runDir, 'student.safetensors');
  if (!existsSync(cfgPath)) throw new TrainingError(`${runDir} is not a training run (no config.json)`);
  if (!existsSync(studentPath)) throw new TrainingError(`${runDir} has no student.safetensors yet (training did not finish an epoch)`);
  const run = JSON.parse(readFileSync(cfgPath, 'utf8')) as RunConfig;
  const teacher = await loadTeacher(rt, runTeacher(run, runDir, teacherOverride), run.seed);
  const student = ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(studentPath), studentPath), studentPath, false);
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
