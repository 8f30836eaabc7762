import { renameSync, writeFileSync } from 'node:fs';

/** Writes a temporary file, then renames it: an interrupted write never leaves a broken file behind. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
