/** Loading a trained run (or loose checkpoint files) for evaluation and inference. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../graph/runtime.js';
import { preset, type MethodConfig } from '../model/config.js';
import { DistillationModel } from '../model/distill.js';
import { ResNetTrunk } from '../model/resnet.js';
import { readStateDict } from '../model/weights/index.js';
import { readCheckpoint } from './checkpoint-store.js';
import { readRunConfig, TrainingError, type RunConfig } from './run-config.js';
import { lockHolder } from './run-lock.js';
import { loadTeacher, openRunTeacher } from './trainer.js';

export { readRunConfig, runDataDir } from './run-config.js';

/** Who is training the run right now, as a phrase ("RUN is being trained by ..."), or null. */
export function trainingInProgress(runDir: string): string | null {
  const held = lockHolder(runDir);
  return held ? `${runDir} is being trained by process ${held.pid} on ${held.host} (since ${held.since})` : null;
}

export interface LoadedModel {
  model: DistillationModel;
  size: number;
  config: MethodConfig;
  run: RunConfig | null;
}

/**
 * The run's student: from its last committed checkpoint (checked against the manifest), or, for a run
 * without checkpoints (one exported by the browser demo), its student.safetensors.
 */
export function runStudent(runDir: string): { bytes: Uint8Array; file: string } {
  const c = readCheckpoint(runDir);
  if (c) return { bytes: c.student, file: c.studentFile };
  const published = join(runDir, 'student.safetensors');
  if (!existsSync(published)) throw new TrainingError(`${runDir} has no student weights yet (training did not finish an epoch)`);
  return { bytes: readFileSync(published), file: published };
}

export async function loadRun(rt: Runtime, runDir: string, teacherOverride?: string, force = false): Promise<LoadedModel> {
  const run = readRunConfig(runDir);
  const s = runStudent(runDir);
  const teacher = await openRunTeacher(rt, run, runDir, teacherOverride, force);
  let student: ResNetTrunk;
  try {
    student = ResNetTrunk.fromStateDict(rt, readStateDict(s.bytes, s.file), s.file, false);
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
