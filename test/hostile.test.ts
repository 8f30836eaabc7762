/**
 * Hostile files through the real CLI, in a process of their own: a .pth zip bomb, a .pth of stride-0
 * views and a PNG declaring 50000 x 50000 pixels are refused with one line; `dcam infer` on a folder of
 * damaged and hostile images (test/hostile-images.ts) reports each as an error and scores none; the
 * process's peak RSS (GPU runtime included) stays under 700 MB.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { hostileBmps, hostileJpegs, hostilePngs, hostileTiffs } from './hostile-images.js';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'dcam-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const data = join(tmp, 'data');
generateSyntheticDataset(data, { seed: 2, size: 32, train: 2, testGood: 1, testPerDefect: 1, categories: { a: 'object' } });
const hostile = (f: string) => join(repo, 'test', 'fixtures', 'hostile', f);

/** Runs `dcam ...args` in a fresh Node process; returns its exit code, stderr and peak RSS in MiB. */
function dcamProcess(args: string[]): { code: number; err: string; peakMiB: number } {
  const script = `const { main } = await import(${JSON.stringify(join(repo, 'src/cli/main.ts'))});
const code = await main(['node', 'dcam', ...${JSON.stringify(args)}]);
process.stdout.write(JSON.stringify({ code, maxRSS: process.resourceUsage().maxRSS }));
process.exit(0);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
  const out = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{'))) as { code: number; maxRSS: number };
  return { code: out.code, err: r.stderr, peakMiB: out.maxRSS / 1024 };
}

describe('hostile files are refused within bounded memory', () => {
  it('a .pth zip bomb and a .pth of stride-0 views as the teacher', () => {
    for (const [file, want] of [['zipbomb.pth', /zip declares more than 512 MiB/], ['stride0.pth', /has 67108864 elements but its storage only 1/]] as const) {
      const r = dcamProcess(['train', '--data', data, '--out', join(tmp, `run-${file}`), '--teacher', hostile(file), '--size', '32', '--steps', '1']);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(want);
      console.log(`${file}: refused, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
      expect(r.peakMiB).toBeLessThan(700);
    }
  });

  it('a PNG declaring 50000 x 50000 pixels in the training folder', () => {
    const png = readFileSync(join(data, 'a', 'train', 'good', '000.png'));
    png.writeUInt32BE(50000, 16);
    png.writeUInt32BE(50000, 20);
    writeFileSync(join(data, 'a', 'train', 'good', '001.png'), png);
    const r = dcamProcess(['train', '--data', data, '--out', join(tmp, 'run-png'), '--random-teacher', '--size', '32', '--steps', '1']);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/001\.png: PNG of 50000x50000 = 2500\.0 megapixels is over the limit of 50\.0/);
    console.log(`PNG bomb: refused, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
    expect(r.peakMiB).toBeLessThan(700);
  });

  it('dcam infer on a folder of damaged and hostile images: each listed as an error, none scored, exit 1, within a minute', () => {
    const run = join(tmp, 'run-infer');
    const clean = join(tmp, 'data-clean'); // the test above left a bomb in the shared folder
    generateSyntheticDataset(clean, { seed: 2, size: 32, train: 2, testGood: 1, testPerDefect: 1, categories: { a: 'object' } });
    expect(dcamProcess(['train', '--data', clean, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '2']).code).toBe(0);
    const folder = join(tmp, 'hostile');
    mkdirSync(folder, { recursive: true });
    const jpeg = readFileSync(join(repo, 'test', 'fixtures', 'codecs', 'baseline-420.jpg'));
    const files = [...hostilePngs(256 << 20), ...hostileJpegs(jpeg), ...hostileBmps(), ...hostileTiffs(256 << 20)];
    for (const f of files) writeFileSync(join(folder, f.name), f.bytes);
    const t0 = Date.now();
    const r = dcamProcess(['infer', '--run', run, '--out', join(tmp, 'inferred'), folder]);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(new RegExp(`${files.length} image\\(s\\) could not be read`));
    const scores = JSON.parse(readFileSync(join(tmp, 'inferred', 'scores.json'), 'utf8')) as Array<{ image: string; score: number | null; error?: string }>;
    expect(scores).toHaveLength(files.length);
    for (const s of scores) expect(s.score, `${s.image} was scored`).toBeNull();
    console.log(`dcam infer on ${files.length} hostile images (two 256 MiB inflation bombs among them): all refused in ${seconds.toFixed(1)} s, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
    expect(seconds).toBeLessThan(60);
    expect(r.peakMiB).toBeLessThan(700);
  }, 120_000);
});
