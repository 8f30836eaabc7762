/**
 * A run's checkpoints on disk, written as one unit. Each checkpoint is a folder
 * `checkpoints/step-NNNNNNN/` (student, attention, optimizer), written complete under a temporary name
 * and renamed; then `checkpoint.json`, the manifest naming that folder with the sha256 of every file, is
 * replaced atomically: that rename is the commit point. A crash or a full disk at any moment leaves the
 * previous manifest and its folder intact, so a resume gets either the old or the new checkpoint, never a
 * mix; files that do not match the manifest are refused by name. After the commit the student and
 * attention are published as `student.safetensors` / `attention.safetensors` (what PyTorch and the demo
 * read) and older checkpoint folders are removed.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpSuffix, writeDurable, writeFileAtomic } from './files.js';
import { TrainingError } from './run-config.js';

export interface CheckpointState {
  /** Optimiser steps done. */
  step: number;
  /** Next batch to run: epoch and index within it. */
  epoch: number;
  index: number;
}

export interface CheckpointFiles {
  student: Uint8Array;
  attention: Uint8Array | null;
  optimizer: Uint8Array;
}

interface Manifest extends CheckpointState {
  folder: string;
  files: Record<string, { sha256: string; bytes: number }>;
}

/** Stages of a checkpoint write, in order (tests inject failures at each). */
export type CheckpointStage = 'student' | 'attention' | 'optimizer' | 'folder' | 'manifest' | 'published' | 'pruned';

const MANIFEST = 'checkpoint.json';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Removes temporaries a killed process left (any `*.tmp-PID`), in the run folder and its checkpoints. */
export function cleanTemporaries(runDir: string): void {
  for (const dir of [runDir, join(runDir, 'checkpoints')]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) if (/\.tmp-\d+$/.test(name)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

export function writeCheckpoint(runDir: string, state: CheckpointState, files: CheckpointFiles, fault?: (stage: CheckpointStage) => void): void {
  const folder = `step-${String(state.step).padStart(7, '0')}`;
  const root = join(runDir, 'checkpoints');
  const tmp = join(root, folder + tmpSuffix());
  mkdirSync(root, { recursive: true });
  const entries: Array<[string, Uint8Array]> = [['student.safetensors', files.student], ['optimizer.safetensors', files.optimizer]];
  if (files.attention) entries.push(['attention.safetensors', files.attention]);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    writeDurable(join(tmp, 'student.safetensors'), files.student);
    fault?.('student');
    if (files.attention) writeDurable(join(tmp, 'attention.safetensors'), files.attention);
    fault?.('attention');
    writeDurable(join(tmp, 'optimizer.safetensors'), files.optimizer);
    fault?.('optimizer');
    rmSync(join(root, folder), { recursive: true, force: true }); // an uncommitted earlier attempt at this step
    renameSync(tmp, join(root, folder));
    fault?.('folder');
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const manifest: Manifest = { ...state, folder: `checkpoints/${folder}`, files: Object.fromEntries(entries.map(([n, b]) => [n, { sha256: sha256(b), bytes: b.length }])) };
  writeFileAtomic(join(runDir, MANIFEST), JSON.stringify(manifest, null, 2));
  fault?.('manifest');
  // Committed. The published copies and the pruning may fail (full disk) without harming the checkpoint;
  // finishCheckpoint() completes them at the next start.
  publish(runDir, files.student, files.attention);
  fault?.('published');
  prune(runDir, folder);
  fault?.('pruned');
}

function publish(runDir: string, student: Uint8Array, attention: Uint8Array | null): void {
  writeFileAtomic(join(runDir, 'student.safetensors'), student);
  if (attention) writeFileAtomic(join(runDir, 'attention.safetensors'), attention);
}

function prune(runDir: string, keep: string): void {
  const root = join(runDir, 'checkpoints');
  for (const old of readdirSync(root)) if (old !== keep && /^step-\d+$/.test(old)) rmSync(join(root, old), { recursive: true, force: true });
  rmSync(join(runDir, 'state.json'), { force: true }); // the layout before manifests
}

/**
 * The run's last committed checkpoint (as readCheckpoint), after completing what a checkpoint write
 * interrupted past its commit: the published student / attention are made the committed ones again and
 * older checkpoint folders removed. Nothing changes on a tidy run.
 */
export function finishCheckpoint(runDir: string): LoadedCheckpoint | null {
  const c = readCheckpoint(runDir);
  if (!c?.folder) return c;
  const same = (file: string, bytes: Uint8Array | null) => !bytes || (existsSync(file) && sha256(readFileSync(file)) === sha256(bytes));
  if (!same(join(runDir, 'student.safetensors'), c.student) || !same(join(runDir, 'attention.safetensors'), c.attention)) publish(runDir, c.student, c.attention);
  prune(runDir, c.folder);
  return c;
}

export interface LoadedCheckpoint extends CheckpointState {
  /** The checkpoint's folder under checkpoints/ (null for a run from before manifests). */
  folder: string | null;
  student: Uint8Array;
  studentFile: string;
  attention: Uint8Array | null;
  attentionFile: string;
  optimizer: Uint8Array;
  optimizerFile: string;
}

/**
 * The run's last committed checkpoint, every file checked against the manifest; null when none was ever
 * written. Runs from before manifests (state.json beside the files) are read as they were written.
 */
export function readCheckpoint(runDir: string): LoadedCheckpoint | null {
  const manifestPath = join(runDir, MANIFEST);
  if (!existsSync(manifestPath)) return readLegacyCheckpoint(runDir);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new TrainingError(`${manifestPath}: damaged (${(e as Error).message}); the run cannot be resumed`);
  }
  const read = (name: string): Uint8Array | null => {
    const want = m.files?.[name];
    if (!want) return null;
    const path = join(runDir, m.folder, name);
    if (!existsSync(path)) throw new TrainingError(`${path} is missing but ${manifestPath} lists it: the checkpoint is incomplete; the run cannot be resumed`);
    const bytes = readFileSync(path);
    const got = sha256(bytes);
    if (got !== want.sha256) throw new TrainingError(`${path} does not match ${manifestPath} (sha256 ${got}, expected ${want.sha256}): the checkpoint is torn or damaged; the run cannot be resumed`);
    return bytes;
  };
  const student = read('student.safetensors');
  const optimizer = read('optimizer.safetensors');
  if (!student || !optimizer || !Number.isInteger(m.step)) throw new TrainingError(`${manifestPath}: not a checkpoint manifest`);
  return {
    step: m.step, epoch: m.epoch, index: m.index, folder: m.folder.replace(/^checkpoints\//, ''),
    student, studentFile: join(runDir, m.folder, 'student.safetensors'),
    attention: read('attention.safetensors'), attentionFile: join(runDir, m.folder, 'attention.safetensors'),
    optimizer, optimizerFile: join(runDir, m.folder, 'optimizer.safetensors'),
  };
}

function readLegacyCheckpoint(runDir: string): LoadedCheckpoint | null {
  const statePath = join(runDir, 'state.json');
  if (!existsSync(statePath)) return null;
  const s = JSON.parse(readFileSync(statePath, 'utf8')) as CheckpointState;
  const file = (n: string) => join(runDir, n);
  return {
    ...s,
    folder: null,
    student: readFileSync(file('student.safetensors')), studentFile: file('student.safetensors'),
    attention: existsSync(file('attention.safetensors')) ? readFileSync(file('attention.safetensors')) : null, attentionFile: file('attention.safetensors'),
    optimizer: readFileSync(file('optimizer.safetensors')), optimizerFile: file('optimizer.safetensors'),
  };
}
