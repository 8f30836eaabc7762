/**
 * One process writing a folder at a time (a run being trained, an inference's output folder):
 * `DIR/.lock` holds the owner's PID and host, created exclusively. A lock whose process is gone (same
 * host, no such PID) is stale and taken over; a live one, or one from another host, is refused with who
 * holds it. Readers of a run ask `lockHolder` whether it is still being written.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TrainingError } from './run-config.js';

export interface LockInfo {
  pid: number;
  host: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** The live process holding `dir`'s lock (not this one), or null when the folder is free. */
export function lockHolder(dir: string): LockInfo | null {
  let held: LockInfo;
  try {
    held = JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')) as LockInfo;
  } catch {
    return null;
  }
  if (held.pid === process.pid && held.host === hostname()) return null;
  return held.host !== hostname() || alive(held.pid) ? held : null;
}

/** Takes the folder's lock; returns the function that releases it. */
export function lockFolder(runDir: string): () => void {
  const path = join(runDir, '.lock');
  const me: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return () => {
        try {
          const held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
          if (held.pid === me.pid && held.host === me.host) rmSync(path, { force: true });
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new TrainingError(`cannot create ${path}: ${(e as Error).message}`);
    }
    let held: LockInfo | null = null;
    try {
      held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      held = null; // unreadable: a writer died between create and write
    }
    const stale = !held || (held.host === me.host && !alive(held.pid));
    if (!stale) {
      throw new TrainingError(`${runDir} is in use by process ${held!.pid} on ${held!.host} (since ${held!.since}); if that process is gone, remove ${path}`);
    }
    rmSync(path, { force: true });
  }
  throw new TrainingError(`cannot lock ${runDir}: ${path} keeps reappearing (another process is starting on it)`);
}
