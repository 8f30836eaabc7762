/**
 * Where the project's shared data lives ($DCAM_SHARED, else ../shared beside the repository), and tests
 * that need it: on a clone without it they are skipped with the reason; under CI=true a missing file
 * is a failure, never a skip. The teacher ships with the repository (weights/), so only data lives there.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it, type TestFunction } from 'vitest';
import { SHIPPED_TEACHER } from '../src/train/teacher.js';

export const sharedDir = process.env.DCAM_SHARED ?? resolve(fileURLToPath(new URL('.', import.meta.url)), '../../shared');
export const shippedTeacher = SHIPPED_TEACHER.file;
const underCI = process.env.CI === 'true';

/** Path of a file in the shared folder; a missing one is an error naming it. */
export function sharedPath(rel: string): string {
  const p = resolve(sharedDir, rel);
  if (!existsSync(p)) {
    throw new Error(`shared file ${p} is missing: set DCAM_SHARED to the project's shared folder (weights/, data/)`);
  }
  return p;
}

/** The shared files among `rels` that are missing ([] under CI, where the test must run and fail instead). */
export function missingShared(rels: readonly string[]): string[] {
  if (underCI) return [];
  return rels.filter((r) => !existsSync(resolve(sharedDir, r)));
}

/** `it` for a test that needs shared files: skipped, with the reason in its name and on stderr, when they are absent. */
export function itShared(name: string, rels: readonly string[], fn: TestFunction, timeout?: number): void {
  const missing = missingShared(rels);
  if (missing.length === 0) {
    it(name, fn, timeout);
    return;
  }
  const reason = `needs ${missing.join(', ')} in ${sharedDir} (absent; set DCAM_SHARED)`;
  console.warn(`skipped: ${name}: ${reason}`);
  it.skip(`${name} [skipped: ${reason}]`, fn);
}
