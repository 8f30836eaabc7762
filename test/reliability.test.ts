/**
 * Nothing lost, nothing trusted: a checkpoint is one unit (a failure injected at every stage of its write,
 * and a full disk, still resume to the uninterrupted weights, or refuse a torn set by name); a run folder
 * is locked and never overwritten by accident; a resume refuses changed settings; infer never writes over
 * an input or over another output.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { readStateDict, toFloat32 } from '../src/model/weights/index.js';
import type { CheckpointStage } from '../src/train/checkpoint-store.js';
import { train, type TrainOptions } from '../src/train/trainer.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-reliability-'));
const data = join(tmp, 'data');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  generateSyntheticDataset(data, { seed: 21, size: 32, train: 4, testGood: 1, testPerDefect: 1, categories: { parts: 'object' } });
});

// 4 images, batch 2: 2 steps an epoch, checkpoints after steps 2 and 4
const common = (out: string): TrainOptions => ({ data, out, teacher: null, randomTeacher: true, size: 32, epochs: 2, batch: 2, seed: 5, method: 'stfpm' });
const weights = (run: string) => {
  const sd = readStateDict(readFileSync(join(run, 'student.safetensors')));
  return [...sd].filter(([k]) => !k.endsWith('num_batches_tracked')).map(([k, t]) => [k, Array.from(toFloat32(t))] as const);
};
const leftovers = (run: string) => [...readdirSync(run), ...(existsSync(join(run, 'checkpoints')) ? readdirSync(join(run, 'checkpoints')) : [])].filter((n) => /\.tmp-\d+$/.test(n));

let reference: ReturnType<typeof weights>;

describe('a checkpoint is one unit', () => {
  beforeAll(async () => {
    await train(ctx.rt, common(join(tmp, 'full')));
    reference = weights(join(tmp, 'full'));
  });

  const stages: CheckpointStage[] = ['student', 'optimizer', 'folder', 'manifest', 'published', 'pruned'];
  for (const stage of stages) {
    it(`a crash after the '${stage}' stage of the last checkpoint resumes to the uninterrupted weights`, async () => {
      const run = join(tmp, `crash-${stage}`);
      await expect(train(ctx.rt, { ...common(run), checkpointFault: (s, step) => { if (s === stage && step === 4) throw new Error(`crash at ${s}`); } })).rejects.toThrow(`crash at ${stage}`);
      // what a killed process would leave besides: temporaries of another PID
      writeFileSync(join(run, 'student.safetensors.tmp-4194301'), 'partial');
      mkdirSync(join(run, 'checkpoints', 'step-0000004.tmp-4194301'), { recursive: true });
      const r = await train(ctx.rt, { ...common(run), resume: true });
      expect(r.steps).toBe(4);
      expect(weights(run)).toEqual(reference);
      expect(leftovers(run)).toEqual([]);
      expect(readdirSync(join(run, 'checkpoints'))).toEqual(['step-0000004']);
    });
  }

  it('a torn or damaged checkpoint is refused by name, never resumed silently', async () => {
    const run = join(tmp, 'torn');
    cpSync(join(tmp, 'full'), run, { recursive: true });
    const opt = join(run, 'checkpoints', 'step-0000004', 'optimizer.safetensors');
    const bytes = readFileSync(opt);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(opt, bytes);
    const r = await dcam('train', '--out', run, '--data', data, '--resume', '--epochs', '3');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: .*step-0000004\/optimizer\.safetensors does not match .*checkpoint\.json \(sha256 [0-9a-f]+, expected [0-9a-f]+\): the checkpoint is torn or damaged/m);
    rmSync(opt);
    expect((await dcam('eval', '--run', run)).err).toMatch(/optimizer\.safetensors is missing but .*checkpoint\.json lists it/);
  });

  it('a full disk (tmpfs) stops with the path named, keeps the last checkpoint, and the run resumes elsewhere', async (t) => {
    const mnt = join(tmp, 'small-disk');
    mkdirSync(mnt);
    try {
      // student and optimizer are 11 MB each: the first checkpoint (and its published student) fits, the second does not
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      console.warn('skipped: the full-disk test needs to mount a tmpfs (root); not permitted here');
      t.skip();
      return;
    }
    try {
      const run = join(mnt, 'run');
      await expect(train(ctx.rt, common(run))).rejects.toThrow(/cannot write .*checkpoints\/step-0000004\.tmp-\d+\/\w+\.safetensors: no space left on the device/);
      expect(leftovers(run)).toEqual([]);
      expect(JSON.parse(readFileSync(join(run, 'checkpoint.json'), 'utf8')).step).toBe(2);
      const moved = join(tmp, 'moved-from-full-disk');
      cpSync(run, moved, { recursive: true });
      await train(ctx.rt, { ...common(moved), resume: true });
      expect(weights(moved)).toEqual(reference);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('a run folder is protected', () => {
  it('train onto an existing run refuses without --resume or --overwrite, and leaves it as it was', async () => {
    const run = join(tmp, 'kept');
    cpSync(join(tmp, 'full'), run, { recursive: true });
    const before = readFileSync(join(run, 'config.json'), 'utf8');
    let r = await dcam('train', '--data', data, '--out', run, '--random-teacher', '--size', '64', '--steps', '1');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: .*kept already holds a run \(config\.json\): --resume continues it, --overwrite replaces it, or choose another --out$/m);
    expect(readFileSync(join(run, 'config.json'), 'utf8')).toBe(before);
    r = await dcam('train', '--data', data, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '2', '--overwrite');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).steps).toBe(1);
    expect(readdirSync(join(run, 'checkpoints'))).toEqual(['step-0000001']);
  });

  it('one process per run: a live lock is refused with its owner, a stale one is taken over', async () => {
    const run = join(tmp, 'locked');
    mkdirSync(run);
    writeFileSync(join(run, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00Z' }));
    let r = await dcam('train', '--data', data, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '2');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^dcam: .*locked is in use by process ${process.pid} on ${hostname()} \\(since 2026-01-01T00:00:00Z\\); if that process is gone, remove .*\\.lock$`, 'm'));
    writeFileSync(join(run, '.lock'), JSON.stringify({ pid: 4194302, host: hostname(), since: '2026-01-01T00:00:00Z' })); // no such process
    r = await dcam('train', '--data', data, '--out', run, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '2');
    expect(r.code, r.err).toBe(0);
    expect(existsSync(join(run, '.lock'))).toBe(false); // released at the end
  });

  it('--resume refuses a missing run and changed settings by name; --steps may grow; a finished run says so', async () => {
    let r = await dcam('train', '--data', data, '--out', join(tmp, 'never-made'), '--resume');
    expect(r.err).toMatch(/^dcam: nothing to resume in .*never-made \(no config\.json\): start the run without --resume$/m);
    const run = join(tmp, 'resumable');
    cpSync(join(tmp, 'full'), run, { recursive: true });
    r = await dcam('train', '--data', data, '--out', run, '--resume', '--size', '64', '--method', 'dcam', '--lr', '0.5');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--resume keeps the run's settings, but these differ: --method "dcam" \(the run has "stfpm"\); --size 64 \(the run has 32\); --lr 0\.5 \(the run has 0\.4\)\. Only --steps or --epochs may change/);
    r = await dcam('train', '--data', data, '--out', run, '--resume');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/already complete at step 4 \(last loss \d+\.\d{4}\); pass a larger --steps or --epochs/);
    r = await dcam('train', '--data', data, '--out', run, '--resume', '--epochs', '3');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/trained 6 steps/);
    expect(readFileSync(join(run, 'train.jsonl'), 'utf8').trim().split('\n').length).toBe(6);
  });
});

describe('infer never overwrites', () => {
  it('an --out that would replace an input is refused before anything is written; x.png and x.jpg give two overlays', async () => {
    const run = join(tmp, 'full');
    const imgs = join(tmp, 'images');
    mkdirSync(join(imgs, 'sub'), { recursive: true });
    copyFileSync(join(data, 'parts', 'test', 'good', '000.png'), join(imgs, 'sub', 'a.png'));
    copyFileSync(join(data, 'parts', 'test', 'good', '000.png'), join(imgs, 'x.png'));
    writeFileSync(join(imgs, 'x.jpg'), readFileSync(new URL('./fixtures/codecs/baseline-420.jpg', import.meta.url)));
    const before = readFileSync(join(imgs, 'sub', 'a.png'));
    let r = await dcam('infer', '--run', run, '--out', join(imgs, 'sub'), join(imgs, 'sub', 'a.png'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: the output .*sub\/a\.png would overwrite the input image .*sub\/a\.png: choose an --out outside the input folders$/m);
    expect(readdirSync(join(imgs, 'sub'))).toEqual(['a.png']);
    expect(readFileSync(join(imgs, 'sub', 'a.png')).equals(before)).toBe(true);
    r = await dcam('infer', '--run', run, '--out', join(tmp, 'two'), join(imgs, 'x.png'), join(imgs, 'x.jpg'));
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(join(tmp, 'two')).filter((f) => f.endsWith('.png')).sort()).toEqual(['x_jpg.png', 'x_png.png']);
  });
});

describe('flags are validated before anything starts', () => {
  it('--size below the trunk minimum, above 2048 or not a multiple of 16; a repeated --category counts once', async () => {
    for (const size of ['1', '7', '16', '40', '2064', '100000']) {
      const r = await dcam('train', '--data', data, '--out', join(tmp, 'x'), '--size', size);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/--size must be a multiple of 16 from 32 to 2048/);
    }
    const run = join(tmp, 'dedup');
    const r = await dcam('train', '--data', data, '--out', run, '--category', 'parts', '--category', 'parts', '--random-teacher', '--size', '32', '--steps', '1', '--batch', '2');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'))).toMatchObject({ categories: ['parts'], trainImages: 4 });
  });
});
