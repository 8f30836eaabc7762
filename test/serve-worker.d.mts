import type { ChildProcess } from 'node:child_process';

export interface ServeWorker {
  proc: ChildProcess;
  url: string;
  exit: Promise<number | null>;
  /** What the worker has printed so far (stdout and stderr). */
  log(): string;
}

export function startServeWorker(bin: string, run: string, args?: string[], options?: { cwd?: string; timeoutMs?: number }): Promise<ServeWorker>;
