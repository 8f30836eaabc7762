/**
 * dcam-webgpu in Node: everything the browser entry has, plus file paths. `loadDetector({ run })` takes a
 * run folder (its last committed checkpoint, checked) and `teacher` a weights file (default: the shipped
 * one, or $DCAM_TEACHER); the training, evaluation and teacher tools of the `dcam` command are here too.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DetectorError, detectorFrom, fetchBytes, loadDetector as loadDetectorFromSources, type Detector, type LoadDetectorOptions, type TeacherSource } from './detector.js';
import type { Runtime } from './graph/runtime.js';
import type { Tiling } from './data/tiles.js';
import { preset } from './model/config.js';
import type { RunConfig } from './train/run-config.js';
import { readRunConfig, runStudent } from './train/run.js';
import { findTeacher } from './train/teacher.js';
import { runTeacherFile } from './train/trainer.js';

export * from './index.js';
export { train, type TrainOptions, type TrainResult } from './train/trainer.js';
export { evaluate, type EvalResult, type EvalOptions } from './eval/evaluate.js';
export { findTeacher, fetchTeacher, SHIPPED_TEACHER, TEACHER_SOURCES, type FetchOptions } from './train/teacher.js';

const isUrl = (s: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s) && !s.startsWith('file:');

/**
 * As the browser's, with `run` a folder path and `teacher` a file path also accepted. A run folder is
 * loaded as every `dcam` command loads it: the student of its last committed checkpoint (checked against
 * checkpoint.json; a published student.safetensors that differs is refused), the teacher it was trained
 * with (its recorded file if unchanged, else the default; a random teacher for a run trained with one).
 */
export async function loadDetector(o: LoadDetectorOptions): Promise<Detector> {
  const pathRun = typeof o.run === 'string' && !isUrl(o.run);
  const teacher = o.teacher === undefined ? undefined : await teacherSource(o.teacher);
  if (!pathRun) return loadDetectorFromSources({ ...o, teacher: teacher && 'bytes' in teacher ? teacher.bytes : o.teacher });
  const dir = o.run as string;
  const config = readRunConfig(dir);
  const student = runStudent(dir).bytes;
  return detectorFrom({ config, student, name: dir }, teacher ?? runTeacher(config), o);
}

/** The teacher a run records (its file if still there unchanged, else the default one), or its random teacher. */
function runTeacher(config: RunConfig): TeacherSource {
  const file = runTeacherFile(config);
  return file ? { bytes: readFileSync(file), name: file } : { randomSeed: config.seed };
}

/** A teacher given as bytes, a URL, or a file path. */
async function teacherSource(t: Uint8Array | string | URL): Promise<TeacherSource> {
  if (t instanceof Uint8Array) return { bytes: t, name: 'teacher' };
  if (t instanceof URL && t.protocol !== 'file:') return { bytes: await fetchBytes(t), name: t.href };
  if (typeof t === 'string' && isUrl(t)) return { bytes: await fetchBytes(t), name: t };
  const file = findTeacher(t instanceof URL ? fileURLToPath(t) : t);
  return { bytes: readFileSync(file), name: file };
}

/**
 * A detector from loose files rather than a run folder (`dcam infer --student FILE --method M --size S`):
 * no thresholds, no teacher check (no run records one).
 */
export async function loadDetectorFromFiles(o: { student: string; method: string; size: number; teacher?: string; runtime?: Runtime; batch?: number; tiling?: Tiling }): Promise<Detector> {
  if (o.tiling && o.tiling.tile !== o.size) throw new DetectorError(`tiles of ${o.tiling.tile} for a network of ${o.size}: the tile is the network's size`);
  const config = { method: preset(o.method), size: o.size, teacher: { file: null, sha256: null }, ...(o.tiling ? { tiling: o.tiling } : {}) } as unknown as RunConfig;
  return detectorFrom({ config, student: readFileSync(o.student), name: o.student }, await teacherSource(o.teacher ?? findTeacher()), { ...o, tiling: undefined });
}
