#!/usr/bin/env node
// The package as a user gets it (npm run test:package; run by CI): `npm pack`, install the tarball into an
// empty project with --ignore-scripts (no tsx there), then plain `node` imports dcam-webgpu, loads a run
// trained by the CLI and inspects an image; its score must equal `dcam infer`'s within 1e-5 relative, and
// the installed `dcam` binary (compiled code) must work too. Uses the MVTec AD bottle image when the
// shared folder is there (required under CI=true), else a synthetic one.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServeWorker } from '../serve-worker.mjs';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'dcam-package-'));
const run = (cmd, args, cwd = repo) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
let passed = 0;
let failed = 0;
const check = (what, ok, detail = '') => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
  ok ? passed++ : failed++;
};

/** Starts `dcam serve` from `bin`, posts one image, stops it with SIGTERM. */
async function serveOnce(bin, runDir, image, cwd) {
  const w = await startServeWorker(bin, runDir, [], { cwd });
  const r = await fetch(`${w.url}/v1/inspect`, { method: 'POST', body: readFileSync(image), headers: { 'content-type': 'image/png' } });
  const body = await r.json();
  w.proc.kill('SIGTERM');
  return { status: r.status, score: body.score, exit: await w.exit };
}

try {
  // 1. pack (prepack builds dist/; the repository's .npmrc turns scripts off, so they are turned on here)
  const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts=false', '--json', '--pack-destination', work]))[0];
  const files = packed.files.map((f) => f.path);
  console.log(`tarball ${packed.filename}: ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${(packed.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${files.length} files`);
  check('the tarball holds dist, the teacher and its licence', ['dist/index.js', 'dist/node.js', 'dist/cli/main.js', 'weights/resnet18-imagenet-layer1to3.safetensors', 'weights/LICENSE-torchvision.txt', 'LICENSE', 'bin/dcam.mjs'].every((f) => files.includes(f)));
  const stray = files.filter((f) => /^(test|tools|bench|demo|src|scripts)\//.test(f) || /fixtures/.test(f));
  check('the tarball holds no tests, fixtures, tools, sources or benchmarks', stray.length === 0, stray.slice(0, 5).join(', '));

  // 2. an empty project that installs it, without running any install script
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed.filename)], app);
  check('tsx is not installed with the package', !existsSync(join(app, 'node_modules', 'tsx')));

  // 3. a run trained by the CLI of the checkout, and its infer score
  const shared = process.env.DCAM_SHARED ?? resolve(repo, '..', 'shared');
  const bottle = join(shared, 'data/mvtec/bottle');
  let data;
  let category;
  let image;
  if (existsSync(bottle)) {
    [data, category, image] = [join(shared, 'data/mvtec'), 'bottle', join(bottle, 'test/broken_large/000.png')];
  } else {
    if (process.env.CI === 'true') throw new Error(`CI=true but the shared data is missing: ${bottle}`);
    console.log(`note: ${bottle} is absent: a synthetic image instead`);
    const { generateSyntheticDataset } = await import(join(repo, 'dist/data/synthetic.js'));
    data = join(work, 'data');
    generateSyntheticDataset(data, { seed: 1, size: 64, train: 4, testGood: 1, testPerDefect: 1, categories: { parts: 'object' } });
    [category, image] = ['parts', join(data, 'parts/test/good/000.png')];
  }
  const runDir = join(work, 'run');
  const dcam = (...args) => run(process.execPath, [join(repo, 'bin/dcam.mjs'), ...args]);
  dcam('train', '--data', data, '--category', category, '--out', runDir, '--size', '32', '--steps', '2', '--batch', '4', '--method', 'stfpm');
  dcam('infer', '--run', runDir, '--out', join(work, 'infer'), image);
  const cli = JSON.parse(readFileSync(join(work, 'infer/scores.json'), 'utf8'))[0].score;

  // 4. plain node, the installed package
  writeFileSync(join(app, 'inspect.mjs'), `import { readFileSync } from 'node:fs';
import { loadDetector } from 'dcam-webgpu';
const det = await loadDetector({ run: ${JSON.stringify(runDir)} });
const r = await det.inspect(readFileSync(${JSON.stringify(image)}));
det.dispose();
console.log(JSON.stringify({ score: r.score, size: r.size, mapLength: r.map.length }));
`);
  const out = JSON.parse(run(process.execPath, ['inspect.mjs'], app).trim().split('\n').pop());
  const rel = Math.abs(out.score - cli) / Math.abs(cli);
  check('plain node: import dcam-webgpu, loadDetector + inspect gives dcam infer\'s score', rel < 1e-5 && out.mapLength === 32 * 32, `${out.score} vs ${cli} (relative ${rel.toExponential(2)})`);

  // 5. the installed binary runs the compiled code
  const help = run(process.execPath, [join(app, 'node_modules/dcam-webgpu/bin/dcam.mjs'), 'teacher', 'show'], app);
  check('the installed dcam binary (compiled) finds the shipped teacher', /shipped/.test(help) && help.includes(join('node_modules', 'dcam-webgpu', 'weights')), help.trim().split('\n')[0]);

  // 6. the installed `dcam serve` (what deploy/Dockerfile runs) answers an inspection with infer's score
  const served = await serveOnce(join(app, 'node_modules/dcam-webgpu/bin/dcam.mjs'), runDir, image, app);
  const relServe = Math.abs(served.score - cli) / Math.abs(cli);
  check("the installed dcam serve answers POST /v1/inspect with dcam infer's score, and stops on SIGTERM", served.status === 200 && relServe < 1e-5 && served.exit === 0, `${served.status} ${served.score} (exit ${served.exit})`);
} catch (e) {
  check('package test', false, `${e.message}\n${e.stderr ?? ''}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
