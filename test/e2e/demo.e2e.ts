/**
 * The browser demo, end to end, in headless Chromium from the system (Debian's `chromium`, driven by
 * playwright-core; never a downloaded browser) on its software WebGPU adapter (SwiftShader):
 *  1. the CLI trains a small run and scores one image (`dcam infer` -> scores.json);
 *  2. the built demo, served over HTTP, loads the same teacher and run, inspects the same image, and its
 *     score must equal the CLI's within 1e-3 relative;
 *  3. the webcam: one frame, and the live mode over 20+ frames (Chromium's synthetic camera);
 *  4. a few training steps in the page at a tiny size: the loss falls and a heatmap is drawn.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../../src/data/synthetic.js';
import { shippedTeacher } from '../shared.js';
import { dcam, openBrowser, repo, serveStatic } from './browser.js';

const SIZE = 32;

const tmp = mkdtempSync(join(tmpdir(), 'dcam-e2e-'));
const data = join(tmp, 'data');
const run = join(tmp, 'run');
const inferOut = join(tmp, 'infer');
let server: Server;
let base = '';
let browser: Browser;
let page: Page;
let teacher = '';
let testImage = '';

beforeAll(async () => {
  teacher = shippedTeacher;
  await build({ configFile: join(repo, 'demo/vite.config.ts'), logLevel: 'warn' });

  generateSyntheticDataset(data, { seed: 3, size: SIZE, train: 8, testGood: 2, testPerDefect: 2, categories: { synth_disc: 'object' } });
  dcam('train', '--data', data, '--out', run, '--method', 'dcam', '--size', String(SIZE), '--steps', '3', '--batch', '4', '--teacher', teacher);
  const defects = join(data, 'synth_disc', 'test');
  const kind = readdirSync(defects).find((d) => d !== 'good')!;
  testImage = join(defects, kind, readdirSync(join(defects, kind)).sort()[0]);
  dcam('eval', '--run', run); // thresholds: the page shows the run's verdict
  dcam('infer', '--run', run, '--out', inferOut, testImage);

  ({ server, base } = await serveStatic([['/files/teacher/', join(teacher, '..')], ['/files/run/', run], ['/files/data/', data], ['/', join(repo, 'demo/dist')]]));
  ({ browser, page } = await openBrowser());
});

afterAll(async () => {
  await browser?.close();
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('browser demo (headless Chromium, WebGPU)', () => {
  it("scores an image and gives the verdict as the CLI does, with the shipped teacher (the page's default) and the CLI's run", async () => {
    await page.goto(`${base}/?run=/files/run/`);
    await page.waitForFunction(() => {
      const s = document.getElementById('status')!;
      return s.dataset.state === 'error' || (s.dataset.state === 'ready' && s.textContent!.includes('model ready'));
    }, undefined, { timeout: 300_000 });
    expect(await page.textContent('#status')).toContain('model ready');

    await page.setInputFiles('#inspect-input', testImage);
    const card = page.locator('.result-card').first();
    await card.waitFor({ timeout: 300_000 });
    const pageScore = Number(await card.getAttribute('data-score'));
    const cli = (JSON.parse(readFileSync(join(inferOut, 'scores.json'), 'utf8')) as Array<{ image: string; score: number; label: string }>).find((r) => r.image === testImage)!;
    expect(Number.isFinite(cli.score)).toBe(true);
    expect(Math.abs(pageScore - cli.score) / Math.abs(cli.score)).toBeLessThan(1e-3);
    expect(await card.getAttribute('data-label')).toBe(cli.label);
    // the slider starts at the run's image threshold
    const runThreshold = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).thresholds.image;
    expect(Number(await page.inputValue('#threshold'))).toBeCloseTo(runThreshold, 4);
  });

  it('inspects a webcam frame (Chromium\'s synthetic camera)', async () => {
    const before = await page.locator('.result-card').count();
    await page.click('#webcam');
    await expect.poll(() => page.locator('.result-card').count(), { timeout: 120_000 }).toBe(before + 1);
    const card = page.locator('.result-card[data-name^="webcam"]');
    expect(Number.isFinite(Number(await card.getAttribute('data-score')))).toBe(true);
  });

  it('live camera: 20+ consecutive frames inspected, frames per second shown, GPU memory flat, busy frames dropped', async () => {
    type Demo = { dcamDemo: { live: { frames: number; dropped: number; running: boolean; busy: boolean; gpuBytesAfterFrame: number } } };
    const state = () => page.evaluate(() => (window as unknown as Demo).dcamDemo.live);
    await page.click('#live');
    try {
      await expect.poll(async () => (await state()).frames, { timeout: 300_000 }).toBeGreaterThanOrEqual(3);
      const early = await state();
      await expect.poll(async () => (await state()).frames, { timeout: 600_000, interval: 500 }).toBeGreaterThanOrEqual(early.frames + 20);
      const late = await state();
      // compared between frames, not at a random moment (mid-frame the frame's input and map are live too)
      expect(late.gpuBytesAfterFrame).toBeGreaterThan(0);
      expect(late.gpuBytesAfterFrame).toBe(early.gpuBytesAfterFrame);
      expect(await page.textContent('#live-fps')).toMatch(/^\d+ fps$/);
      expect(await page.textContent('#live-latency')).toMatch(/^\d+ ms$/);
      expect(await page.textContent('#live-verdict')).toMatch(/^(OK|DEFECT) \d\.\d\d$/);
      console.log(`live: ${late.frames} frames inspected, ${late.dropped} dropped while the GPU was busy, ${await page.textContent('#live-fps')}, ${await page.textContent('#live-latency')}`);
    } finally {
      if ((await state()).running) await page.click('#live'); // stop
      await expect.poll(async () => (await state()).busy, { timeout: 60_000 }).toBe(false); // the last frame finishes
    }
    expect((await state()).running).toBe(false);
  });

  it('releases the GPU memory of a model it replaces', async () => {
    const bytes = () => page.evaluate(() => (window as unknown as { dcamDemo: { session: { gpuBytes(): number } } }).dcamDemo.session.gpuBytes());
    const before = await bytes(); // idle: the live view's last frame has finished (previous test)
    for (let i = 0; i < 2; i++) {
      await page.setInputFiles('#run-input', [join(run, 'config.json'), join(run, 'student.safetensors')]);
      await page.waitForFunction(() => document.getElementById('status')!.dataset.state !== 'busy');
    }
    expect(await page.textContent('#status')).toContain('model ready');
    expect(await bytes()).toBe(before);
  });

  it('rejects a file that is not an image with a clear message', async () => {
    await page.setInputFiles('#inspect-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
    await expect.poll(() => page.textContent('#inspect-message'), { timeout: 60_000 }).toContain('notes.txt: not an image');
  });

  it('trains in the page: the loss falls and a heatmap is drawn', async () => {
    const good = join(data, 'synth_disc', 'train', 'good');
    const images = readdirSync(good).sort().slice(0, 6).map((f) => join(good, f));
    await page.setInputFiles('#train-input', images);
    await page.selectOption('#train-size', String(SIZE));
    await page.selectOption('#train-method', 'dcam'); // not the default (stfpm): exercises the attention export too
    await page.fill('#train-epochs', '4');
    await page.fill('#train-batch', '3');
    await page.click('#train-start');
    await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('train-status')!.dataset.state!), undefined, { timeout: 480_000 });
    expect(await page.getAttribute('#train-status', 'data-state')).toBe('done');
    const losses = await page.evaluate(() => [...((window as unknown as { dcamDemo: { session: { losses: number[] } } }).dcamDemo.session.losses)]);
    expect(losses.length).toBe(8);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);

    await page.setInputFiles('#inspect-input', [testImage, images[0]]);
    await page.locator('.result-card').nth(1).waitFor({ timeout: 300_000 });
    // The overlay canvas (second of each card) holds a heatmap: many distinct colours, not a blank.
    const colours = await page.evaluate(() => {
      const c = document.querySelectorAll<HTMLCanvasElement>('.result-card canvas')[1];
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return seen.size;
    });
    expect(colours).toBeGreaterThan(50);
  });

  it('exports the model trained in the page as a run that `dcam infer` accepts', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#train-download')]);
    const zip = join(tmp, 'page-run.zip');
    await download.saveAs(zip);
    const files = unzipSync(readFileSync(zip));
    const dir = join(tmp, 'page-run');
    mkdirSync(join(dir, 'run'), { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    expect(Object.keys(files).sort()).toEqual(['run/attention.safetensors', 'run/config.json', 'run/student.safetensors']);
    const out = join(tmp, 'page-run-infer');
    dcam('infer', '--run', join(dir, 'run'), '--teacher', teacher, '--out', out, testImage);
    const score = (JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Array<{ image: string; score: number }>).find((r) => r.image === testImage)!.score;
    expect(Number.isFinite(score)).toBe(true);
  });
});
