/**
 * Every subcommand's error paths end the process: the real `dcam` binary, no terminal, stdin closed,
 * one `dcam: ...` line naming the problem, a non-zero exit within 10 s (nothing left running: no progress
 * bar timer, no GPU handle).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const bin = resolve(fileURLToPath(new URL('.', import.meta.url)), '../bin/dcam.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'dcam-exit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((done) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmp });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.stdout.resume();
    const kill = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('close', (code) => {
      clearTimeout(kill);
      done({ code, stderr, ms: Date.now() - t0 });
    });
  });
}

// a run whose data folder has gone (the case that used to hang with its progress bar redrawing)
const orphan = join(tmp, 'orphan-run');
mkdirSync(orphan);
writeFileSync(join(orphan, 'config.json'), JSON.stringify({ method: { method: 'stfpm' }, size: 32, data: join(tmp, 'gone'), categories: ['a'], teacher: { file: null, sha256: null }, seed: 0 }));
writeFileSync(join(orphan, 'student.safetensors'), 'x');
const corrupt = join(tmp, 'corrupt-run');
mkdirSync(corrupt);
writeFileSync(join(corrupt, 'config.json'), '{"method": ');
const missing = join(tmp, 'no-such-folder');
const aFile = join(tmp, 'a-file.txt');
writeFileSync(aFile, 'not a folder');
// a run being trained by a live process (this test's): eval and calibrate must not set thresholds from it
const training = join(tmp, 'training-run');
mkdirSync(training);
writeFileSync(join(training, 'config.json'), JSON.stringify({ method: { method: 'stfpm' }, size: 32, data: tmp, categories: ['a'], teacher: { file: null, sha256: null }, seed: 0 }));
writeFileSync(join(training, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-12-06T00:00:00Z' }));

const cases: Array<[string, string[], RegExp]> = [
  ['train: missing data folder', ['train', '--data', missing, '--out', join(tmp, 'r')], /data folder .*no-such-folder does not exist/],
  ['train: unknown flag with required options missing', ['train', '--frobnicate'], /unknown option '--frobnicate'/],
  ['train: bad --seed', ['train', '--data', missing, '--out', join(tmp, 'r'), '--seed', 'abc'], /--seed must be a non-negative integer, got 'abc'/],
  ['train: --size far too large', ['train', '--data', missing, '--out', join(tmp, 'r'), '--size', '100000'], /--size must be a multiple of 16 from 32 to 2048/],
  ['train: --data is a file', ['train', '--data', aFile, '--out', join(tmp, 'r')], /data folder .*a-file\.txt is a file, not a folder/],
  ['eval: a run being trained', ['eval', '--run', training], /training-run is being trained by process \d+ .*evaluate it once the training has finished/],
  ['calibrate: a run being trained', ['calibrate', '--run', training, '--good', tmp], /training-run is being trained by process \d+ .*calibrate it once/],
  ['eval: missing run', ['eval', '--run', missing], /run folder .*no-such-folder does not exist/],
  ['eval: corrupt run', ['eval', '--run', corrupt], /corrupt-run\/config\.json: damaged/],
  ['eval: the run\'s data folder is gone', ['eval', '--run', orphan], /data folder .*gone does not exist/],
  ['eval: unknown flag', ['eval', '--run', orphan, '--frobnicate'], /unknown option '--frobnicate'/],
  ['infer: missing run', ['infer', '--run', missing, '--out', join(tmp, 'o'), 'x.png'], /run folder .*no-such-folder does not exist/],
  ['infer: missing image', ['infer', '--run', orphan, '--out', join(tmp, 'o'), join(tmp, 'nope.png')], /no such file or folder: .*nope\.png/],
  ['infer: unknown flag', ['infer', '--frobnicate', 'x.png'], /unknown option '--frobnicate'/],
  ['calibrate: missing run', ['calibrate', '--run', missing, '--good', tmp], /run folder .*no-such-folder does not exist/],
  ['calibrate: corrupt run', ['calibrate', '--run', corrupt, '--good', tmp], /damaged/],
  ['calibrate: bad --fpr', ['calibrate', '--run', orphan, '--good', tmp, '--fpr', '2'], /--fpr must be a number in \[0, 1\)/],
  ['teacher fetch: bad source', ['teacher', 'fetch', '--from', 'ftp://example/x.pth'], /only http\(s\) URLs can be fetched/],
  ['teacher fetch: unknown flag', ['teacher', 'fetch', '--frobnicate'], /unknown option '--frobnicate'/],
  ['unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
];

describe('dcam errors end the process with one line', () => {
  it.each(cases)('%s', async (_, args, want) => {
    const r = await run(args);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.code).not.toBeNull(); // not killed by the 10 s guard
    expect(r.ms).toBeLessThan(10_000);
    const lines = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: '));
    expect(lines.length, r.stderr).toBe(1);
    expect(lines[0]).toMatch(/^dcam: /);
    expect(lines[0]).toMatch(want);
  });
});
