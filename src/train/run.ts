/**
 * A trained run on disk, as readers take it: its config, its student weights (verified), whether it is
 * still being trained. Loading it for inspection is `loadDetector` (node.ts), for every command alike.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint } from './checkpoint-store.js';
import { TrainingError } from './run-config.js';
import { lockHolder } from './run-lock.js';

export { readRunConfig, runDataDir } from './run-config.js';

/** Who is training the run right now, as a phrase ("RUN is being trained by ..."), or null. */
export function trainingInProgress(runDir: string): string | null {
  const held = lockHolder(runDir);
  return held ? `${runDir} is being trained by process ${held.pid} on ${held.host} (since ${held.since})` : null;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * The run's student: the one its last committed checkpoint holds (checked against checkpoint.json). The
 * published `student.safetensors` beside it is a copy of that one (what PyTorch, the browser and a copy of
 * the folder read), so a published file that differs is refused by name rather than served by some
 * readers and not others. A run without checkpoints (exported by the browser demo) has only the published file.
 */
export function runStudent(runDir: string): { bytes: Uint8Array; file: string } {
  const c = readCheckpoint(runDir);
  const published = join(runDir, 'student.safetensors');
  if (c) {
    if (existsSync(published) && published !== c.studentFile) {
      const got = sha256(readFileSync(published));
      if (got !== sha256(c.student)) {
        throw new TrainingError(
          `${published} is not the student of the run's last committed checkpoint (${c.studentFile}, step ${c.step}; sha256 ${got}): it was replaced or damaged, ` +
            `or a training stopped while publishing it. Copy ${c.studentFile} over it (dcam train --resume does), or remove it`,
        );
      }
    }
    return { bytes: c.student, file: c.studentFile };
  }
  if (!existsSync(published)) throw new TrainingError(`${runDir} has no student weights yet (training did not finish an epoch)`);
  return { bytes: readFileSync(published), file: published };
}
