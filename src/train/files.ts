/**
 * File writes that survive a crash or a full disk: flushed before they count, replaced by rename so that
 * readers see the old or the new file, errors naming the file (and saying when the disk is full).
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { TrainingError } from './run-config.js';

/** Suffix of this process's temporaries (`*.tmp-PID`; cleanTemporaries removes those of dead processes). */
export const tmpSuffix = () => `.tmp-${process.pid}`;

/** Writes and flushes a file; errors name the file (and say when the disk is full). */
export function writeDurable(path: string, data: Uint8Array | string): void {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'w');
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new TrainingError(`cannot write ${path}: ${err.code === 'ENOSPC' ? 'no space left on the device' : err.message}`);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Writes a temporary file, flushes it, then renames it over `path`: readers see the old or the new file. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}${tmpSuffix()}`;
  try {
    writeDurable(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
