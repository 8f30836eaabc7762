/** Runs the `dcam` CLI in-process; returns its exit code and what it printed (stdout, stderr). */
import { vi } from 'vitest';
import { main } from '../src/cli/main.js';

export async function dcam(...args: string[]): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const e = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  const l = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const w = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await main(['node', 'dcam', ...args]);
    return { code, err: err.join('\n'), out: out.join('\n') };
  } finally {
    e.mockRestore();
    l.mockRestore();
    w.mockRestore();
  }
}
