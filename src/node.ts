/**
 * dcam-webgpu in Node: everything the browser entry has, plus file paths. `loadDetector({ run })` takes a
 * run folder (its last committed checkpoint, checked) and `teacher` a weights file (default: the shipped
 * one, or $DCAM_TEACHER); the training, evaluation and teacher tools of the `dcam` command are here too.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { detectorFrom, loadDetector as loadDetectorFromSources, type Detector, type LoadDetectorOptions } from './detector.js';
import { readRunConfig, runStudent } from './train/run.js';
import { findTeacher } from './train/teacher.js';

export * from './index.js';
export { train, type TrainOptions, type TrainResult } from './train/trainer.js';
export { evaluate, type EvalResult, type EvalOptions } from './eval/evaluate.js';
export { findTeacher, fetchTeacher, SHIPPED_TEACHER, TEACHER_SOURCES, type FetchOptions } from './train/teacher.js';

const isUrl = (s: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s) && !s.startsWith('file:');

/** As the browser's, with `run` a folder path and `teacher` a file path also accepted. */
export async function loadDetector(o: LoadDetectorOptions): Promise<Detector> {
  const pathRun = typeof o.run === 'string' && !isUrl(o.run);
  const pathTeacher = o.teacher === undefined || (typeof o.teacher === 'string' && !isUrl(o.teacher)) || (o.teacher instanceof URL && o.teacher.protocol === 'file:');
  if (!pathRun && !pathTeacher) return loadDetectorFromSources(o);
  const teacherFile = o.teacher === undefined ? findTeacher() : o.teacher instanceof URL ? fileURLToPath(o.teacher) : typeof o.teacher === 'string' && pathTeacher ? findTeacher(o.teacher) : null;
  const teacherBytes = teacherFile ? readFileSync(teacherFile) : undefined;
  if (!pathRun) return loadDetectorFromSources({ ...o, teacher: teacherBytes ?? o.teacher });
  const dir = o.run as string;
  const config = readRunConfig(dir);
  const student = runStudent(dir).bytes;
  if (!teacherBytes) return loadDetectorFromSources({ ...o, run: { config, student } });
  return detectorFrom({ config, student, name: dir }, teacherBytes, teacherFile!, o);
}
