/** Where the project's shared data lives: $DCAM_SHARED, else ../shared beside the repository. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const sharedDir = process.env.DCAM_SHARED ?? resolve(fileURLToPath(new URL('.', import.meta.url)), '../../shared');

/** Path of a file in the shared folder; under CI a missing file is a failure, never a skip. */
export function sharedPath(rel: string): string {
  const p = resolve(sharedDir, rel);
  if (!existsSync(p)) {
    throw new Error(`shared file ${p} is missing: set DCAM_SHARED to the project's shared folder (weights/, data/)`);
  }
  return p;
}
