/**
 * dcam-webgpu as a browser app gets it: the packed tarball installed into an empty Vite app, which imports
 * `loadDetector` (nothing registered, nothing copied: the shaders, the JPEG decoder and the teacher come
 * with the package), is built with `vite build` and loaded in headless Chromium. Its score and verdict for
 * an image equal `dcam infer`'s.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../../src/data/synthetic.js';
import { dcam, openBrowser, repo, serveStatic } from './browser.js';

const tmp = mkdtempSync(join(tmpdir(), 'dcam-app-'));
const app = join(tmp, 'app');
const run = join(tmp, 'run');
let server: Server;
let base = '';
let browser: Browser;
let page: Page;
let cli: { score: number; label: string };

const MAIN = `import { loadDetector } from 'dcam-webgpu';
const out = document.getElementById('out');
try {
  const det = await loadDetector({ run: '/run/' });
  const image = new Uint8Array(await (await fetch('/files/image.png')).arrayBuffer());
  const r = await det.inspect(image);
  Object.assign(out.dataset, { score: String(r.score), label: String(r.label), regions: String(r.regions.length) });
  out.textContent = 'done';
  det.dispose();
} catch (e) {
  out.dataset.error = String(e && e.message);
  out.textContent = 'error';
}
`;

beforeAll(async () => {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts=false', '--json', '--pack-destination', tmp], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))[0];
  mkdirSync(join(app, 'src'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(join(app, 'index.html'), '<!doctype html><html><body><div id="out">loading</div><script type="module" src="/src/main.js"></script></body></html>');
  writeFileSync(join(app, 'src', 'main.js'), MAIN);
  execFileSync('npm', ['install', '--ignore-scripts', '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, packed.filename)], { cwd: app, stdio: 'ignore' });
  await build({ root: app, configFile: false, logLevel: 'warn', build: { target: 'es2022', outDir: join(app, 'dist') } });

  const data = join(tmp, 'data');
  generateSyntheticDataset(data, { seed: 6, size: 48, train: 4, testGood: 2, testPerDefect: 2, categories: { parts: 'object' } });
  dcam('train', '--data', data, '--out', run, '--method', 'stfpm', '--size', '32', '--steps', '3', '--batch', '4');
  dcam('eval', '--run', run);
  const image = join(data, 'parts', 'test', 'spot', '000.png');
  dcam('infer', '--run', run, '--out', join(tmp, 'infer'), image);
  cli = JSON.parse(readFileSync(join(tmp, 'infer', 'scores.json'), 'utf8'))[0];
  const files = join(tmp, 'files');
  mkdirSync(files);
  copyFileSync(image, join(files, 'image.png'));
  ({ server, base } = await serveStatic([['/run/', run], ['/files/', files], ['/', join(app, 'dist')]]));
  ({ browser, page } = await openBrowser());
});

afterAll(async () => {
  await browser?.close();
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package in a Vite app', () => {
  it('builds without registration or copying, and inspects as dcam infer does', async () => {
    const bundle = readdirSync(join(app, 'dist', 'assets'));
    expect(bundle.some((f) => f.endsWith('.safetensors'))).toBe(true); // the teacher, as an asset
    expect(bundle.some((f) => f.endsWith('.wasm'))).toBe(true); // libjpeg-turbo
    await page.goto(`${base}/`);
    await page.waitForFunction(() => document.getElementById('out')!.textContent !== 'loading', undefined, { timeout: 300_000 });
    const out = page.locator('#out');
    expect(await out.getAttribute('data-error')).toBeNull();
    const score = Number(await out.getAttribute('data-score'));
    expect(Math.abs(score - cli.score) / Math.abs(cli.score)).toBeLessThan(1e-3);
    expect(await out.getAttribute('data-label')).toBe(cli.label);
  });
});
